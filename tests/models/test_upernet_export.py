"""UPerNet's pyramid pooling: same numbers as ``nn.AdaptiveAvgPool2d``, ONNX valid at every size."""

from __future__ import annotations

import contextlib
import io
import re
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from _model_helpers import assert_onnx_agrees, export_metadata
from torch import Tensor, nn

from s5geo.inference.onnx_export import export_onnx
from s5geo.models import build_model
from s5geo.models.base import Encoder
from s5geo.models.layers import AdaptiveAvgPool2d, adaptive_avg_pool2d_explicit
from s5geo.models.upernet import UPerHead, UPerNet

SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 17, 23, 31, 32, 37, 64]


@pytest.mark.parametrize("scale", [1, 2, 3, 4, 6, (2, 3), (6, 1)])
def test_explicit_pool_equals_adaptive_avg_pool(scale: int | tuple[int, int]) -> None:
    torch.manual_seed(0)
    reference = nn.AdaptiveAvgPool2d(scale)
    for height in SIZES:
        for width in SIZES[::3]:
            x = torch.randn(2, 3, height, width) * 3
            expected = reference(x)
            actual = adaptive_avg_pool2d_explicit(x, scale)
            assert actual.shape == expected.shape
            torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-6)


def test_pool_module_is_adaptive_avg_pool_outside_export() -> None:
    torch.manual_seed(1)
    for scale in (1, 2, 3, 6):
        module, reference = AdaptiveAvgPool2d(scale), nn.AdaptiveAvgPool2d(scale)
        assert isinstance(module, nn.AdaptiveAvgPool2d)
        for shape in [(2, 8, 7, 5), (1, 4, 16, 16), (3, 2, 2, 9)]:
            x = torch.randn(shape)
            assert torch.equal(module(x), reference(x))
            assert torch.equal(module(x.bfloat16()), reference(x.bfloat16()))
    with pytest.raises(ValueError, match="output_size"):
        AdaptiveAvgPool2d((2, None))  # type: ignore[arg-type]


def test_upernet_numerics_and_keys_unchanged() -> None:
    """Same state-dict keys as mmseg (``psp_modules.N.1.*``), same outputs and gradients."""
    torch.manual_seed(2)
    head = UPerHead([8, 16, 24, 32], channels=16)
    keys = set(head.state_dict())
    assert {f"psp_modules.{i}.1.conv.weight" for i in range(4)} <= keys
    assert not any(re.match(r"psp_modules\.\d+\.0\.", k) for k in keys)  # the pools have no state
    reference = UPerHead([8, 16, 24, 32], channels=16)
    for seq in reference.psp_modules:
        seq[0] = nn.AdaptiveAvgPool2d(seq[0].output_size)
    reference.load_state_dict(head.state_dict())
    assert set(reference.state_dict()) == keys
    shapes = [(2, c, 40 // 2**i, 36 // 2**i) for i, c in enumerate([8, 16, 24, 32])]
    feats = [torch.randn(shape, requires_grad=True) for shape in shapes]
    for mode in (True, False):
        head.train(mode)
        reference.train(mode)
        out = head(feats)
        grads = torch.autograd.grad(out.square().sum(), feats)
        ref_out = reference(feats)
        ref_grads = torch.autograd.grad(ref_out.square().sum(), feats)
        assert torch.equal(out, ref_out)
        assert all(torch.equal(a, b) for a, b in zip(grads, ref_grads, strict=True))


def _export(module: nn.Module, sample: Tensor, path: str) -> ort.InferenceSession:
    dim = torch.export.Dim.DYNAMIC
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (sample,),
            path,
            dynamo=True,
            input_names=["x"],
            output_names=["y"],
            dynamic_shapes=[{0: dim, 2: dim, 3: dim}],
        )
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def test_exported_pool_matches_at_every_size(tmp_path) -> None:
    class Pools(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pools = nn.ModuleList(AdaptiveAvgPool2d(s) for s in (1, 2, 3, 6))

        def forward(self, x: Tensor) -> Tensor:
            return torch.cat([p(x).flatten(2) for p in self.pools], dim=2)

    session = _export(Pools().eval(), torch.zeros(2, 3, 8, 8), str(tmp_path / "pool.onnx"))
    rng = np.random.default_rng(0)
    references = [nn.AdaptiveAvgPool2d(s) for s in (1, 2, 3, 6)]
    for height in SIZES:
        for width in (1, 2, 5, 7, 13, 20):
            x = rng.standard_normal((1 + height % 2, 3, height, width), dtype=np.float32)
            (actual,) = session.run(None, {"x": x})
            t = torch.from_numpy(x)
            expected = torch.cat([p(t).flatten(2) for p in references], dim=2).numpy()
            np.testing.assert_allclose(actual, expected, atol=1e-6, rtol=1e-6)


class _TinyEncoder(Encoder):
    """Four conv levels at strides 4, 8, 16, 32 (a fast stand-in for a backbone)."""

    def __init__(self) -> None:
        super().__init__()
        widths = [3, 8, 12, 16, 20]
        strides = [4, 2, 2, 2]
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, s, stride=s), nn.BatchNorm2d(b), nn.ReLU())
            for a, b, s in zip(widths[:-1], widths[1:], strides, strict=True)
        )
        self.out_channels = widths[1:]
        self.num_layers = 4

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def _randomise_bn(model: nn.Module) -> None:
    generator = torch.Generator().manual_seed(3)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)


def test_upernet_onnx_matches_at_other_and_non_square_sizes(tmp_path) -> None:
    torch.manual_seed(4)
    model = UPerNet(_TinyEncoder(), num_classes=5, channels=16).eval()
    _randomise_bn(model)
    nn.init.normal_(model.classifier.weight, std=1.0)
    session = _export(model, torch.zeros(2, 3, 64, 64), str(tmp_path / "upernet.onnx"))
    # coarsest maps 2x2 (export), 1x1, 3x5, 5x2, 7x7 (not divisible by the pooling scales)
    shapes = [(1, 3, 64, 64), (2, 3, 32, 32), (1, 3, 96, 160), (2, 3, 160, 64), (1, 3, 224, 224)]
    assert_onnx_agrees(session, model, shapes)


def test_upernet_vit_exports_with_s5geo(tmp_path) -> None:
    """``export_onnx`` on a UPerNet-ViT, checked at three sizes (one non-square) and batch 1 and 2."""
    torch.manual_seed(5)
    model = build_model("upernet_vit_tiny", num_classes=3).eval()
    _randomise_bn(model)
    nn.init.normal_(model.classifier.weight, std=1.0)
    metadata = export_metadata("upernet_vit_tiny", 64)
    path = export_onnx(model, metadata, tmp_path / "vit.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert_onnx_agrees(session, model, [(1, 3, 64, 64), (2, 3, 96, 96), (1, 3, 48, 112)])


def test_upernet_resnet_exports_with_s5geo(tmp_path) -> None:
    """The demo's architecture: ``export_onnx`` verifies it, and it agrees at three other sizes."""
    torch.manual_seed(6)
    model = build_model("upernet_resnet18", num_classes=3, channels=8).eval()
    _randomise_bn(model)
    nn.init.normal_(model.classifier.weight, std=1.0)
    path = export_onnx(model, export_metadata("upernet_resnet18", 64), tmp_path / "resnet.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert_onnx_agrees(session, model, [(1, 3, 32, 32), (2, 3, 96, 96), (1, 3, 48, 112)])
