"""RVSA ViT (MTP / S5 ``vit_win_rvsa_v3_wsz7_mtp.py``): checkpoint layout and attention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from _model_helpers import assert_onnx_agrees, export_metadata, rename_prefixes
from torch import Tensor

from s5geo.models import build_model, load_pretrained
from s5geo.models.rvsa import GlobalAttention, RotatedWindowAttention


def rvsa_shapes(
    dim: int = 64, depth: int = 4, heads: int = 4, interval: int = 2, grid: int = 7, ws: int = 7
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the ``RVSA_MTP`` backbone's state dict, read from its code (unprefixed)."""
    hd = dim // heads
    s: dict[str, tuple[int, ...]] = {
        "patch_embed.proj.weight": (dim, 3, 16, 16),
        "patch_embed.proj.bias": (dim,),
        "pos_embed": (1, grid * grid, dim),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        s |= {p + "norm1.weight": (dim,), p + "norm1.bias": (dim,)}
        if (i + 1) % interval:
            s |= {p + "attn.rel_pos_h": (2 * ws - 1, hd), p + "attn.rel_pos_w": (2 * ws - 1, hd)}
            for name, out in (("offsets", 2 * heads), ("scales", 2 * heads), ("angles", heads)):
                s |= {
                    p + f"attn.sampling_{name}.2.weight": (out, dim, 1, 1),
                    p + f"attn.sampling_{name}.2.bias": (out,),
                }
            s |= {p + "attn.relative_position_bias_table": ((2 * ws - 1) ** 2, heads)}
            s |= {p + "attn.relative_position_index": (ws * ws, ws * ws)}
        else:
            s |= {
                p + "attn.full_attn_rel_pos_h": (2 * grid - 1, hd),
                p + "attn.full_attn_rel_pos_w": (2 * grid - 1, hd),
            }
        s |= {p + "attn.qkv.weight": (3 * dim, dim), p + "attn.qkv.bias": (3 * dim,)}
        s |= {p + "attn.proj.weight": (dim, dim), p + "attn.proj.bias": (dim,)}
        s |= {p + "norm2.weight": (dim,), p + "norm2.bias": (dim,)}
        s |= {p + "mlp.fc1.weight": (4 * dim, dim), p + "mlp.fc1.bias": (4 * dim,)}
        s |= {p + "mlp.fc2.weight": (dim, 4 * dim), p + "mlp.fc2.bias": (dim,)}
    s |= {"fpn1.0.weight": (dim, dim, 2, 2), "fpn1.0.bias": (dim,), "fpn1.1.ln.weight": (dim,)}
    s |= {"fpn1.1.ln.bias": (dim,), "fpn1.3.weight": (dim, dim, 2, 2), "fpn1.3.bias": (dim,)}
    s |= {"fpn2.0.weight": (dim, dim, 2, 2), "fpn2.0.bias": (dim,)}
    return s


def _relative_position_index(ws: int) -> Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + ws - 1
    return rel[..., 0] * (2 * ws - 1) + rel[..., 1]


def fake_mtp_checkpoint(seed: int = 0, num_classes: int = 6) -> dict[str, Tensor]:
    """An mmseg/MTP UPerNet checkpoint (``backbone.``, ``decode_head.``, ``auxiliary_head.``)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    for key, shape in rvsa_shapes().items():
        if key.endswith("relative_position_index"):
            value = _relative_position_index(7)
        elif len(shape) >= 2 and key != "pos_embed":
            value = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        else:
            value = 0.1 * torch.randn(shape, generator=g) + (
                1.0 if key.endswith(("norm1.weight", "norm2.weight")) else 0
            )
        state[f"backbone.{key}"] = value
    state["decode_head.conv_seg.weight"] = torch.randn(num_classes, 64, 1, 1, generator=g) * 0.1
    state["decode_head.conv_seg.bias"] = torch.zeros(num_classes)
    head = build_model("upernet_vit_tiny_rvsa", num_classes=num_classes).decoder.state_dict()
    state |= {f"decode_head.{k}": v for k, v in head.items()}
    state["auxiliary_head.conv_seg.weight"] = torch.zeros(num_classes, 64, 1, 1)
    return {"state_dict": state}


def test_mtp_rvsa_checkpoint_loads_every_tensor() -> None:
    checkpoint = fake_mtp_checkpoint()
    model = build_model("upernet_vit_tiny_rvsa", num_classes=6)
    report = load_pretrained(model, checkpoint, strict=True)
    assert report.ok and report.kind == "s5"
    assert len(report.loaded) == len(model.state_dict())
    assert report.dropped == ["auxiliary_head.conv_seg.weight"]
    value = checkpoint["state_dict"]["backbone.blocks.0.attn.sampling_angles.2.weight"]
    assert torch.equal(model.encoder.vit.blocks[0].attn.sampling_angles[2].weight, value)
    for shape in [(1, 3, 112, 112), (2, 3, 128, 96)]:  # the grid and another size (7x7 windows padded)
        with torch.no_grad():
            assert model.eval()(torch.randn(shape)).shape == (shape[0], 6, *shape[2:])


def _plain_window_attention(attn: RotatedWindowAttention, x: Tensor, h: int, w: int) -> Tensor:
    """Windowed attention with decomposed relative positions and a bias table, no sampling."""
    b, _, c = x.shape
    ws, heads, d = attn.ws, attn.num_heads, c // attn.num_heads
    qkv = attn.qkv(x).reshape(b, h // ws, ws, w // ws, ws, 3, heads, d)
    qkv = qkv.permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, -1, heads, ws * ws, d)
    q, k, v = qkv[0], qkv[1], qkv[2]
    logits = (q @ k.transpose(-2, -1)) * attn.scale
    idx = torch.arange(ws)
    rel_h = attn.rel_pos_h[idx[:, None] - idx[None, :] + ws - 1]
    rel_w = attn.rel_pos_w[idx[:, None] - idx[None, :] + ws - 1]
    r_q = q.reshape(-1, heads, ws, ws, d)
    logits = logits.view(-1, heads, ws, ws, ws, ws)
    logits = logits + torch.einsum("bnhwc,hkc->bnhwk", r_q, rel_h)[..., None]
    logits = logits + torch.einsum("bnhwc,wkc->bnhwk", r_q, rel_w)[..., None, :]
    logits = logits.view(-1, heads, ws * ws, ws * ws)
    table = attn.relative_position_bias_table[attn.relative_position_index.view(-1)]
    logits = logits + table.view(ws * ws, ws * ws, heads).permute(2, 0, 1)
    out = (logits.softmax(-1) @ v).reshape(b, h // ws, w // ws, heads, ws, ws, d)
    out = out.permute(0, 1, 4, 2, 5, 3, 6).reshape(b, h * w, c)
    return attn.proj(out)


def test_rvsa_without_rotation_scale_or_offset_is_window_attention() -> None:
    torch.manual_seed(0)
    attn = RotatedWindowAttention(32, 4, 7).eval()
    torch.nn.init.normal_(attn.rel_pos_h, std=0.2)
    torch.nn.init.normal_(attn.rel_pos_w, std=0.2)
    for module in (attn.sampling_angles, attn.sampling_offsets, attn.sampling_scales):
        torch.nn.init.zeros_(module[-1].weight)
        torch.nn.init.zeros_(module[-1].bias)
    x = torch.randn(2, 14 * 21, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            attn(x, 14, 21), _plain_window_attention(attn, x, 14, 21), atol=1e-5, rtol=1e-4
        )
        torch.nn.init.normal_(attn.sampling_angles[-1].bias, std=0.5)  # rotated windows differ
        assert not torch.allclose(attn(x, 14, 21), _plain_window_attention(attn, x, 14, 21), atol=1e-3)


def test_rvsa_sampling_zero_rotation_of_quarter_turn_transposes_window() -> None:
    """A 90-degree rotation samples each window's keys transposed (odd windows: exact pixels)."""
    torch.manual_seed(1)
    attn = RotatedWindowAttention(8, 1, 7).eval()
    for module in (attn.sampling_offsets, attn.sampling_scales, attn.sampling_angles):
        torch.nn.init.zeros_(module[-1].weight)
        torch.nn.init.zeros_(module[-1].bias)
    x = torch.randn(1, 8, 7, 7)
    grid = attn._sampling_grid(x, 7, 7)
    plain = F.grid_sample(x, grid, align_corners=True)
    assert torch.allclose(plain, x, atol=1e-5)
    torch.nn.init.constant_(attn.sampling_angles[-1].bias, math.pi / 2)
    turned = F.grid_sample(x, attn._sampling_grid(x, 7, 7), align_corners=True)
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-4) or torch.allclose(
        turned, torch.rot90(x, -1, dims=(-2, -1)), atol=1e-4
    )


def test_global_attention_resamples_tables_at_other_sizes() -> None:
    attn = GlobalAttention(32, 4, (7, 7)).eval()
    with torch.no_grad():
        assert attn(torch.randn(1, 8 * 6, 32), 8, 6).shape == (1, 48, 32)


@pytest.mark.parametrize("name", ["upernet_vit_b_rvsa", "upernet_vit_l_rvsa"])
def test_sizes_follow_mtp(name: str) -> None:
    with torch.device("meta"):
        model = build_model(name, num_classes=6)
    blocks = model.encoder.vit.blocks
    interval = 3 if name == "upernet_vit_b_rvsa" else 6
    assert [isinstance(b.attn, GlobalAttention) for b in blocks] == [
        (i + 1) % interval == 0 for i in range(len(blocks))
    ]
    assert blocks[interval - 1].attn.full_attn_rel_pos_h.shape[0] == 63  # 512 / 16 grid


def test_s5_layout_rvsa_checkpoint_loads() -> None:
    """The S5 code's UperNet with the RVSA backbone: ``encoder.``, ``semsegdecoder.``, ``semseghead.1.``."""
    mtp = fake_mtp_checkpoint(seed=2)["state_dict"]
    renames = {
        "backbone.": "module.encoder.",
        "decode_head.conv_seg.": "module.semseghead.1.",
        "decode_head.": "module.semsegdecoder.decode_head.",
    }
    state = rename_prefixes(mtp, renames)
    model = build_model("upernet_vit_tiny_rvsa", num_classes=6)
    report = load_pretrained(model, {"model": state}, strict=True)
    assert report.ok and len(report.loaded) == len(state)
    assert torch.equal(model.classifier.weight, mtp["decode_head.conv_seg.weight"])


def test_rvsa_exports_to_onnx_for_every_window(tmp_path) -> None:
    import onnxruntime as ort

    from s5geo.inference.onnx_export import export_onnx

    torch.manual_seed(3)
    model = build_model("upernet_vit_tiny_rvsa", num_classes=3).eval()
    for block in model.encoder.vit.blocks:  # non-trivial sampling: offsets, scales, rotations
        if isinstance(block.attn, RotatedWindowAttention):
            for module in (
                block.attn.sampling_offsets,
                block.attn.sampling_scales,
                block.attn.sampling_angles,
            ):
                torch.nn.init.normal_(module[-1].weight, std=0.2)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    metadata = export_metadata("upernet_vit_tiny_rvsa", 112)
    path = export_onnx(model, metadata, tmp_path / "rvsa.onnx")  # verified at 112, 64x96, 96x112
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # more windows than at the export size
    assert_onnx_agrees(session, model, [(1, 3, 224, 224), (2, 3, 160, 112)], seed=0)
