"""The S5 authors' multi-dataset ViT-MoE UperNet: checkpoint layout, routing, forward, export."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from _model_helpers import export_metadata
from s5_moe_layout import CLASSES, DECODERS, HEADS, fake_moe_checkpoint
from torch import Tensor, nn

from s5geo.inference.onnx_export import export_onnx
from s5geo.models import build_model, load_pretrained
from s5geo.models.checkpoints import CheckpointError
from s5geo.models.upernet import UPerHead
from s5geo.models.vit_moe import S5_MDF_TASKS, MoEMlp
from s5geo.models.weights import get_weights

DIM, DEPTH, HEADS_N = 64, 4, 4


@pytest.fixture(scope="module")
def checkpoint() -> dict[str, dict[str, Tensor]]:
    return fake_moe_checkpoint(seed=0)


def _reference_encoder(sd: dict[str, Tensor], x: Tensor, expert: int) -> list[Tensor]:
    """The authors' ViT-MoE forward (eval mode), written from their code with plain torch ops."""

    def p(key: str) -> Tensor:
        return sd[f"module.encoder.{key}"]

    t = F.conv2d(x, p("patch_embed.projection.weight"), p("patch_embed.projection.bias"), stride=16)
    b, _, h, w = t.shape
    t = t.flatten(2).transpose(1, 2) + p("pos_embed")
    outs = []
    for i in range(DEPTH):
        q = f"layers.{i}."
        y = F.layer_norm(t, (DIM,), p(q + "ln1.weight"), p(q + "ln1.bias"), eps=1e-5)  # mmcv LN
        attn = nn.MultiheadAttention(DIM, HEADS_N, batch_first=True).eval()
        attn.load_state_dict(
            {k: p(q + "attn.attn." + k) for k in ("in_proj_weight", "in_proj_bias")}
            | {f"out_proj.{k}": p(q + f"attn.attn.out_proj.{k}") for k in ("weight", "bias")}
        )
        t = t + attn(y, y, y, need_weights=False)[0]
        y = F.layer_norm(t, (DIM,), p(q + "ln2.weight"), p(q + "ln2.bias"), eps=1e-5)
        hidden = F.gelu(F.linear(y, p(q + "ffn.layers.0.0.weight"), p(q + "ffn.layers.0.0.bias")))
        shared = F.linear(hidden, p(q + "ffn.layers.1.weight"), p(q + "ffn.layers.1.bias"))
        own = F.linear(hidden, p(q + f"ffn.experts.{expert}.weight"), p(q + f"ffn.experts.{expert}.bias"))
        t = t + torch.cat([shared, own], dim=-1)
        outs.append(t.reshape(b, h, w, DIM).permute(0, 3, 1, 2))
    f1 = F.conv_transpose2d(outs[0], p("fpn1.0.weight"), p("fpn1.0.bias"), stride=2)
    f1 = F.layer_norm(f1.permute(0, 2, 3, 1), (DIM,), p("fpn1.1.ln.weight"), p("fpn1.1.ln.bias"), eps=1e-6)
    f1 = F.conv_transpose2d(F.gelu(f1.permute(0, 3, 1, 2)), p("fpn1.3.weight"), p("fpn1.3.bias"), stride=2)
    f2 = F.conv_transpose2d(outs[1], p("fpn2.0.weight"), p("fpn2.0.bias"), stride=2)
    return [f1, f2, outs[2], F.max_pool2d(outs[3], 2)]


def _reference_forward(sd: dict[str, Tensor], x: Tensor, dataset: str) -> Tensor:
    """Their ``UperNet.forward(x, dataset)``: expert, decoder and head of ``dataset``."""
    feats = _reference_encoder(sd, x, S5_MDF_TASKS.index(dataset))
    prefix = f"module.{DECODERS[dataset]}.decode_head."
    head = UPerHead([DIM] * 4, channels=64).eval()  # mmseg's UPerHead, mmseg key names
    head.load_state_dict(
        {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix) and "conv_seg" not in k}
    )
    weight, bias = sd[f"module.{HEADS[dataset]}.1.weight"], sd[f"module.{HEADS[dataset]}.1.bias"]
    out = F.conv2d(head(feats), weight, bias)
    return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=True)


@pytest.mark.parametrize("dataset", list(DECODERS))
def test_fake_authors_checkpoint_loads_every_tensor(checkpoint, dataset: str) -> None:
    model = build_model("upernet_vit_tiny_moe", num_classes=CLASSES[dataset])
    report = load_pretrained(model, checkpoint, dataset=dataset, strict=True)
    assert report.kind == "s5" and report.ok
    assert not report.missing and not report.unexpected and not report.mismatched and not report.adapted
    # every checkpoint tensor is loaded or deliberately dropped (cls_token, conv_seg, other datasets)
    assert len(report.loaded) + len(report.dropped) == len(checkpoint["model"])
    assert len(report.loaded) == len(model.state_dict())
    others = [d for d in DECODERS if d != dataset]
    assert all(any(k.startswith(f"{DECODERS[d]}.") for k in report.dropped) for d in others)
    assert model.dataset == dataset
    assert {b.mlp.expert for b in model.encoder.vit.blocks} == {S5_MDF_TASKS.index(dataset)}


@pytest.mark.parametrize("dataset", ["vaihingen", "potsdam", "loveda"])
def test_forward_reproduces_the_authors_model(checkpoint, dataset: str) -> None:
    torch.manual_seed(0)
    model = build_model("upernet_vit_tiny_moe", num_classes=CLASSES[dataset]).eval()
    load_pretrained(model, checkpoint, dataset=dataset, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = _reference_forward(checkpoint["model"], x, dataset)
        actual = model(x)
    assert actual.shape == (2, CLASSES[dataset], 64, 64)
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


def test_model_built_for_a_dataset_loads_its_head_without_dataset(checkpoint) -> None:
    model = build_model("upernet_vit_tiny_moe", num_classes=5, dataset="potsdam")
    report = load_pretrained(model, checkpoint, strict=True)
    head = checkpoint["model"]["module.semseghead_potsdam.1.weight"]
    assert report.ok and torch.equal(model.classifier.weight, head)
    with pytest.raises(CheckpointError, match="unknown dataset"):
        load_pretrained(model, checkpoint, dataset="isaid")


def test_experts_route_by_dataset() -> None:
    torch.manual_seed(1)
    model = build_model("upernet_vit_tiny_moe", num_classes=3).eval()
    for block in model.encoder.vit.blocks:
        assert isinstance(block.mlp, MoEMlp) and len(block.mlp.experts) == 4
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outputs = {}
        for dataset in ("potsdam", 3):
            model.select_dataset(dataset)
            outputs[dataset] = model(x)
    assert model.dataset == "loveda"
    assert not torch.equal(outputs["potsdam"], outputs[3])
    with pytest.raises(ValueError):
        model.select_dataset(4)


def test_plain_vit_checkpoint_splits_into_shared_rows_and_experts() -> None:
    """S4P (plain ViT) -> MoE as the authors' fine-tuning starts: fc2's last rows go to each expert."""
    plain = build_model("upernet_vit_tiny", num_classes=5)
    moe = build_model("upernet_vit_tiny_moe", num_classes=5)
    report = load_pretrained(moe, plain.state_dict(), kind="s5geo", strict=True)
    assert report.ok
    fc2 = plain.encoder.vit.blocks[2].mlp.fc2
    mlp = moe.encoder.vit.blocks[2].mlp
    assert torch.equal(mlp.fc2.weight, fc2.weight[:48]) and torch.equal(mlp.fc2.bias, fc2.bias[:48])
    assert all(torch.equal(e.weight, fc2.weight[48:]) for e in mlp.experts)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():  # each expert reproduces the plain network
        torch.testing.assert_close(moe.eval()(x), plain.eval()(x))


def test_weights_registry_points_at_the_moe_models() -> None:
    assert get_weights("s5_moe_mdf_vit_b").architecture == "upernet_vit_b_moe"
    assert get_weights("s5_moe_mdf_vit_l").architecture == "upernet_vit_l_moe"
    with torch.device("meta"):
        model = build_model("upernet_vit_b_moe", num_classes=5, dataset="potsdam")
    keys = model.state_dict()
    assert "encoder.vit.blocks.11.mlp.experts.3.weight" in keys
    assert tuple(keys["encoder.vit.blocks.0.mlp.fc2.weight"].shape) == (768 - 256, 3072)


def test_potsdam_head_exports_to_onnx(tmp_path, checkpoint) -> None:
    model = build_model("upernet_vit_tiny_moe", num_classes=5, dataset="potsdam").eval()
    load_pretrained(model, checkpoint, strict=True)
    metadata = export_metadata(
        "upernet_vit_tiny_moe",
        64,
        classes=["impervious", "building", "low_vegetation", "tree", "car"],
        colors=[(255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0)],
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        gsd=0.05,
    )
    path = export_onnx(model, metadata, tmp_path / "potsdam.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 64, 64), dtype=np.float32)  # the authors' model needs its grid
    (logits,) = session.run(None, {"image": x})
    with torch.no_grad():
        expected = _reference_forward(checkpoint["model"], torch.from_numpy(x), "potsdam").numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= 0.999
    x = rng.standard_normal((1, 3, 96, 128), dtype=np.float32)  # s5geo resamples the position grid
    (logits,) = session.run(None, {"image": x})
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
