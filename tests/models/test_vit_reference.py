"""The ViT block as in the S5 code: LayerNorm eps 1e-5, stochastic depth on the FFN branch only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from s5geo.models import build_model
from s5geo.models.vit import ViTBlock


def test_block_norms_use_eps_1e5_by_default_and_keep_an_option() -> None:
    model = build_model("upernet_vit_tiny", num_classes=2)
    norms = [m for n, m in model.encoder.vit.named_modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(m.eps == 1e-5 for m in norms)
    assert model.encoder.neck.fpn1[1].eps == 1e-6  # the neck's Norm2d keeps 1e-6, as in the S5 code
    model = build_model("upernet_vit_tiny", num_classes=2, norm_eps=1e-6)
    assert all(m.eps == 1e-6 for m in model.encoder.vit.modules() if isinstance(m, nn.LayerNorm))


def _branch_outputs(block: ViTBlock, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    attn = block.ls1(block.attn(block.norm1(x)))
    return attn, block.ls2(block.mlp(block.norm2(x + attn)))


@pytest.mark.parametrize("drop_path_attn", [False, True])
def test_drop_path_only_on_the_ffn_branch_by_default(drop_path_attn: bool) -> None:
    torch.manual_seed(0)
    kwargs = {} if not drop_path_attn else {"drop_path_attn": True}
    model = build_model("upernet_vit_tiny", num_classes=2, drop_path_rate=0.99, **kwargs)
    block = model.encoder.vit.blocks[-1]
    assert isinstance(block, ViTBlock) and block.drop_path_attn is drop_path_attn
    block.train()
    x = torch.randn(64, 5, 64)
    with torch.no_grad():
        out = block(x)
        attn, ffn = _branch_outputs(block, x)
    # per sample, with p=0.99: each branch is either dropped (0) or kept and scaled by 1/0.01
    kept_attn = torch.isclose(out, x + attn + ffn / 0.01, atol=1e-3).flatten(1).all(1)
    only_ffn_dropped = torch.isclose(out, x + attn, atol=1e-5).flatten(1).all(1)
    if drop_path_attn:
        assert not only_ffn_dropped.all()  # some samples lose their attention branch
    else:
        assert (kept_attn | only_ffn_dropped).all()
        assert only_ffn_dropped.any()


def test_block_choice_keeps_keys_and_eval_output() -> None:
    torch.manual_seed(1)
    a = build_model("upernet_vit_tiny", num_classes=2, drop_path_rate=0.3).eval()
    b = build_model("upernet_vit_tiny", num_classes=2, drop_path_rate=0.3, drop_path_attn=True).eval()
    assert list(a.state_dict()) == list(b.state_dict())
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
