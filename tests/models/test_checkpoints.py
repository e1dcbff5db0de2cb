"""Checkpoint conversion: state dicts in the MAE, S5 and mmseg layouts, built backwards from a
tiny s5geo model, must land weight for weight in a fresh model."""

import argparse
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from _model_helpers import rename_prefixes

from s5geo.errors import S5GeoError
from s5geo.models import CheckpointError, build_model, load_pretrained
from s5geo.models.checkpoints import adapt_in_channels, detect_kind, resize_pos_embed


def _tiny(seed: int, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model("upernet_vit_tiny", kwargs.pop("num_classes", 5), **kwargs)
    # no parameter or buffer keeps a default value (ones, zeros) that two models would share,
    # so that copying every one of them is observable
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.num_batches_tracked.fill_(seed + 7)
    return model.eval()


# --- inverse renames (s5geo -> foreign layouts), written independently of the loader ---------
def _timm_vit_keys(state: dict) -> dict:
    """s5geo ViT encoder keys -> lone timm/MAE backbone keys."""
    return rename_prefixes(state, {"encoder.vit.": ""})


def _mmseg_vit_key(key: str) -> str:
    """timm block key -> mmseg ``VisionTransformer`` key (as in the S5 code)."""
    key = key.replace("patch_embed.proj.", "patch_embed.projection.")
    key = re.sub(r"^blocks\.(\d+)\.norm([12])\.", r"layers.\1.ln\2.", key)
    key = re.sub(r"^blocks\.(\d+)\.attn\.qkv\.weight", r"layers.\1.attn.attn.in_proj_weight", key)
    key = re.sub(r"^blocks\.(\d+)\.attn\.qkv\.bias", r"layers.\1.attn.attn.in_proj_bias", key)
    key = re.sub(r"^blocks\.(\d+)\.attn\.proj\.", r"layers.\1.attn.attn.out_proj.", key)
    key = re.sub(r"^blocks\.(\d+)\.mlp\.fc1\.", r"layers.\1.ffn.layers.0.0.", key)
    key = re.sub(r"^blocks\.(\d+)\.mlp\.fc2\.", r"layers.\1.ffn.layers.1.", key)
    return key


def _s5_encoder(state: dict, dim: int) -> dict:
    """s5geo state -> the S5 code's encoder state (``vit_b_s4p.pth`` layout)."""
    out = {_mmseg_vit_key(k): v for k, v in _timm_vit_keys(state).items()}
    for key, value in state.items():
        if key.startswith("encoder.neck."):
            key = key[len("encoder.neck.") :]
            key = re.sub(r"^fpn1\.1\.", "fpn1.1.ln.", key)  # S5's Norm2d wraps nn.LayerNorm
            out[key] = value
    out["cls_token"] = torch.randn(1, 1, dim)
    return out


def _s5_full(state: dict, dim: int, channels: int) -> dict:
    """s5geo state -> the S5 code's DDP ``UperNet`` state (``module.`` prefixed)."""
    out = {f"encoder.{k}": v for k, v in _s5_encoder(state, dim).items()}
    renames = {"decoder.": "semsegdecoder.decode_head.", "classifier.": "semseghead.1."}
    out.update(rename_prefixes(state, renames))
    out["semsegdecoder.decode_head.conv_seg.weight"] = torch.randn(1, channels, 1, 1)
    out["semsegdecoder.decode_head.conv_seg.bias"] = torch.randn(1)
    return {f"module.{k}": v for k, v in out.items()}


def _assert_same_state(model: torch.nn.Module, ref: torch.nn.Module, skip: tuple = ()) -> None:
    got, want = model.state_dict(), ref.state_dict()
    assert got.keys() == want.keys()
    for key in want:
        if not key.startswith(skip):
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)


# --- S5 layouts -----------------------------------------------------------------------------
def test_s5_full_checkpoint_lands_every_weight(tmp_path: Path) -> None:
    src = _tiny(0)
    dim, channels = src.encoder.vit.embed_dim, src.decoder.channels
    path = tmp_path / "vit_tiny_s4p_upernet.pth"
    torch.save({"model": _s5_full(src.state_dict(), dim, channels)}, path)

    dst = _tiny(1)
    report = load_pretrained(dst, path, strict=True)
    assert report.kind == "s5"
    assert report.ok and not report.missing and not report.unexpected and not report.mismatched
    assert set(report.dropped) == {
        "encoder.cls_token",
        "semsegdecoder.decode_head.conv_seg.weight",
        "semsegdecoder.decode_head.conv_seg.bias",
    }
    _assert_same_state(dst, src)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x))


def test_s5_multi_dataset_finetuned_checkpoint_picks_one_head() -> None:
    src = _tiny(0)
    other = _tiny(3)  # stands for the decoders/heads of the other datasets
    dim, channels = src.encoder.vit.embed_dim, src.decoder.channels
    ckpt = {
        k: v for k, v in _s5_full(src.state_dict(), dim, channels).items() if k.startswith("module.encoder.")
    }
    for name, model in [("", other), ("_potsdam", src), ("_OpenEarthMap", other)]:
        for key, value in model.state_dict().items():
            if key.startswith("decoder."):
                ckpt[f"module.semsegdecoder{name}.decode_head.{key[8:]}"] = value
    for name, model in [("vaihingen", other), ("potsdam", src), ("loveda", other)]:
        for key, value in model.state_dict().items():
            if key.startswith("classifier."):
                ckpt[f"module.semseghead_{name}.1.{key[11:]}"] = value
    dst = _tiny(1)
    report = load_pretrained(dst, {"model": ckpt}, dataset="potsdam", strict=True)
    assert report.kind == "s5"
    assert "module.semseghead_loveda.1.weight" not in report.dropped  # prefix stripped first
    assert "semseghead_loveda.1.weight" in report.dropped
    _assert_same_state(dst, src)
    with pytest.raises(CheckpointError, match="unknown S5 fine-tuning dataset"):
        load_pretrained(dst, {"model": ckpt}, dataset="udd6")


def test_s5_encoder_only_checkpoint(tmp_path: Path) -> None:
    src = _tiny(0)
    path = tmp_path / "vit_tiny_s4p.pth"
    torch.save({"model": _s5_encoder(src.state_dict(), src.encoder.vit.embed_dim)}, path)
    dst = _tiny(1)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    report = load_pretrained(dst, path)
    assert report.kind == "s5"
    assert not report.unexpected and not report.mismatched
    assert all(k.startswith(("decoder.", "classifier.")) for k in report.missing)
    assert any(k.startswith("decoder.") for k in report.missing)
    got = dst.state_dict()
    for key, value in src.state_dict().items():
        want = value if key.startswith("encoder.") else before[key]
        torch.testing.assert_close(got[key], want, rtol=0, atol=0, msg=key)


def test_mmseg_layout_with_bn_neck_qv_bias_and_aux_head(tmp_path: Path) -> None:
    src = _tiny(0, neck_norm="bn")
    dim = src.encoder.vit.embed_dim
    with torch.no_grad():  # BEiT-style attention has no key bias
        for blk in src.encoder.vit.blocks:
            blk.attn.qkv.bias[dim : 2 * dim] = 0
    state = src.state_dict()
    ckpt = {}
    for key, value in _timm_vit_keys(state).items():
        match = re.match(r"blocks\.(\d+)\.attn\.qkv\.bias", key)
        if match:
            ckpt[f"backbone.blocks.{match.group(1)}.attn.q_bias"] = value[:dim]
            ckpt[f"backbone.blocks.{match.group(1)}.attn.v_bias"] = value[2 * dim :]
        elif key == "pos_embed":  # mmseg keeps a class-token slot
            ckpt["backbone.pos_embed"] = torch.cat([torch.randn(1, 1, dim), value], dim=1)
        else:
            ckpt[f"backbone.{key}"] = value
    heads = {"decoder.": "decode_head.", "classifier.": "decode_head.conv_seg."}
    ckpt.update(rename_prefixes(state, {"encoder.neck.": "backbone.", **heads}))
    ckpt["backbone.cls_token"] = torch.randn(1, 1, dim)
    ckpt["auxiliary_head.conv_seg.weight"] = torch.randn(5, 8, 1, 1)
    ckpt["auxiliary_head.convs.0.conv.weight"] = torch.randn(8, dim, 3, 3)
    path = tmp_path / "upernet_mmseg.pth"
    torch.save({"state_dict": ckpt, "meta": {"iter": 100, "best": np.float64(0.5)}}, path)

    dst = _tiny(1, neck_norm="bn")
    report = load_pretrained(dst, path, kind="auto", strict=True)
    assert report.kind == "s5"
    assert "encoder.vit.pos_embed" in report.adapted  # class-token slot removed
    assert {"auxiliary_head.conv_seg.weight", "auxiliary_head.convs.0.conv.weight"} <= set(report.dropped)
    _assert_same_state(dst, src)


# --- MAE ------------------------------------------------------------------------------------
def _mae_checkpoint(src: torch.nn.Module, grid: int | None = None) -> tuple[dict, torch.Tensor]:
    dim = src.encoder.vit.embed_dim
    sd = _timm_vit_keys(src.state_dict())
    pos = sd.pop("pos_embed")
    side = int(pos.shape[1] ** 0.5)
    if grid is not None and grid != side:
        pos = torch.randn(1, grid * grid, dim)
    mae = dict(sd)
    mae["pos_embed"] = torch.cat([torch.zeros(1, 1, dim), pos], dim=1)
    mae["cls_token"] = torch.randn(1, 1, dim)
    mae["mask_token"] = torch.randn(1, 1, 32)
    mae["norm.weight"], mae["norm.bias"] = torch.randn(dim), torch.randn(dim)
    mae["decoder_embed.weight"] = torch.randn(32, dim)
    mae["decoder_pos_embed"] = torch.randn(1, pos.shape[1] + 1, 32)
    mae["decoder_blocks.0.norm1.weight"] = torch.randn(32)
    mae["decoder_norm.weight"] = torch.randn(32)
    mae["decoder_pred.weight"] = torch.randn(16 * 16 * 3, 32)
    return mae, pos


def test_mae_checkpoint_lands_encoder_weights(tmp_path: Path) -> None:
    src = _tiny(0)
    mae, _ = _mae_checkpoint(src)
    path = tmp_path / "mae_pretrain.pth"
    # MAE's training script stores its argparse namespace next to the weights
    torch.save({"model": mae, "epoch": 1599, "args": argparse.Namespace(lr=1e-3)}, path)

    dst = _tiny(1)
    report = load_pretrained(dst, path)
    assert report.kind == "mae"
    assert not report.unexpected and not report.mismatched
    assert set(report.dropped) == {
        "cls_token",
        "mask_token",
        "norm.weight",
        "norm.bias",
        "decoder_embed.weight",
        "decoder_pos_embed",
        "decoder_blocks.0.norm1.weight",
        "decoder_norm.weight",
        "decoder_pred.weight",
    }
    vit_keys = [k for k in src.state_dict() if k.startswith("encoder.vit.")]
    assert sorted(report.loaded) == sorted(vit_keys)
    assert set(report.missing) == {
        k
        for k in dst.state_dict()
        if not k.startswith("encoder.vit.") and not k.endswith("num_batches_tracked")
    }
    got, want = dst.state_dict(), src.state_dict()
    for key in vit_keys:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)
    with pytest.raises(CheckpointError, match="missing"):
        load_pretrained(_tiny(2), path, strict=True)


def test_mae_pos_embed_interpolated_to_model_grid() -> None:
    src = _tiny(0)  # 64 px: 4x4 grid
    mae, pos = _mae_checkpoint(src, grid=7)  # e.g. a 112 px checkpoint
    dst = _tiny(1)
    report = load_pretrained(dst, {"model": mae}, kind="mae")
    assert "encoder.vit.pos_embed" in report.adapted
    dim = pos.shape[-1]
    grid = pos.reshape(1, 7, 7, dim).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(4, 4), mode="bicubic", align_corners=False)
    want = want.permute(0, 2, 3, 1).reshape(1, 16, dim)
    torch.testing.assert_close(dst.encoder.vit.pos_embed.detach(), want)
    with pytest.raises(ValueError):
        resize_pos_embed(torch.randn(1, 15, 8), (4, 4))


def test_mae_rgb_weights_into_six_band_model() -> None:
    src = _tiny(0)
    mae, _ = _mae_checkpoint(src)
    dst = _tiny(1, in_channels=6)
    report = load_pretrained(dst, {"model": mae})
    key = "encoder.vit.patch_embed.proj.weight"
    assert key in report.adapted and key in report.loaded
    w3 = src.state_dict()[key]
    w6 = dst.state_dict()[key]
    torch.testing.assert_close(w6[:, :3], w3 / 2)
    torch.testing.assert_close(w6[:, 3:], w3 / 2)
    # an image whose bands repeat the RGB bands gives the same patch embedding as before
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        emb3 = src.encoder.vit.patch_embed(x)
        emb6 = dst.encoder.vit.patch_embed(torch.cat([x, x], dim=1))
    torch.testing.assert_close(emb6, emb3, rtol=1e-4, atol=1e-4)
    # without adaptation the weight is reported, not loaded
    other = _tiny(2, in_channels=6)
    report = load_pretrained(other, {"model": mae}, adapt=False)
    assert (key, (64, 3, 16, 16), (64, 6, 16, 16)) in report.mismatched


def test_adapt_in_channels_to_fewer_bands() -> None:
    w = torch.randn(4, 3, 2, 2)
    one = adapt_in_channels(w, 1)
    torch.testing.assert_close(one, w[:, :1] * 3)


def test_patch_size_resampled() -> None:
    src = _tiny(0)
    mae, _ = _mae_checkpoint(src)
    mae["patch_embed.proj.weight"] = torch.randn(64, 3, 14, 14)
    dst = _tiny(1)
    report = load_pretrained(dst, {"model": mae}, kind="mae")
    assert "encoder.vit.patch_embed.proj.weight" in report.adapted
    assert dst.encoder.vit.patch_embed.proj.weight.shape == (64, 3, 16, 16)


# --- s5geo ----------------------------------------------------------------------------------
def test_s5geo_lightning_checkpoint_and_class_mismatch(tmp_path: Path) -> None:
    src = _tiny(0, num_classes=5)
    state = {f"model.{k}": v for k, v in src.state_dict().items()}
    state["criterion.weight"] = torch.ones(5)
    path = tmp_path / "epoch=1.ckpt"
    torch.save(
        {
            "state_dict": state,
            "hyper_parameters": {"model": "upernet_vit_tiny", "num_classes": 5},
            "s5geo_metadata": {"classes": ["a", "b"]},
        },
        path,
    )
    same = _tiny(1, num_classes=5)
    report = load_pretrained(same, path, strict=True)
    assert report.kind == "s5geo" and report.dropped == ["criterion.weight"]
    _assert_same_state(same, src)

    other = _tiny(1, num_classes=3)
    head = other.classifier.weight.detach().clone()
    report = load_pretrained(other, path)
    assert {k for k, _, _ in report.mismatched} == {"classifier.weight", "classifier.bias"}
    assert not report.missing and not report.unexpected
    torch.testing.assert_close(other.classifier.weight.detach(), head)  # left as it was
    _assert_same_state(other, src, skip=("classifier.",))
    with pytest.raises(CheckpointError):
        load_pretrained(_tiny(2, num_classes=3), path, strict=True)


def test_plain_model_state_dict_resnet() -> None:
    torch.manual_seed(0)
    src = build_model("upernet_resnet18", 4).eval()
    dst = build_model("upernet_resnet18", 4).eval()
    report = load_pretrained(dst, src.state_dict())
    assert report.kind == "s5geo" and report.ok
    _assert_same_state(dst, src)


# --- errors ---------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(S5GeoError, match="not found"):
        load_pretrained(_tiny(0), tmp_path / "nope.pth")


class _Pickled:
    pass


def test_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.ones(1)}, "obj": _Pickled()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pth.*weights_only.*_Pickled"):
        load_pretrained(_tiny(0), path)


def test_unknown_layout() -> None:
    with pytest.raises(CheckpointError, match="cannot recognise"):
        load_pretrained(_tiny(0), {"foo.weight": torch.ones(1)})
    assert detect_kind({"blocks.0.norm1.weight": torch.ones(1)}) == "mae"
    assert detect_kind({"semseghead.1.weight": torch.ones(1)}) == "s5"
    assert detect_kind({"decoder.bottleneck.conv.weight": torch.ones(1)}) == "s5geo"


def test_report_text_names_problems() -> None:
    report = load_pretrained(_tiny(0), {"model.extra.weight": torch.ones(1)}, kind="s5geo")
    text = str(report)
    assert "<state dict>" in text and "missing" in text
    assert "unexpected: extra.weight" in text
