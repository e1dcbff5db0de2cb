"""ONNX export: metadata, dynamic shapes, agreement with PyTorch, and segmentation through ONNX."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import rasterio
import torch
from _inference_helpers import write_raster

from s5geo.cli.main import main as s5geo_main
from s5geo.errors import OutputExistsError, S5GeoError
from s5geo.inference.onnx_export import export_onnx
from s5geo.inference.onnx_predictor import OnnxPredictor, load_onnx
from s5geo.inference.predictor import Predictor
from s5geo.inference.segment import segment_raster
from s5geo.metadata import ModelMetadata
from s5geo.models import build_model

CLASSES = ["water", "trees", "built", "bare"]


def _metadata() -> ModelMetadata:
    return ModelMetadata(
        classes=CLASSES,
        colors=[(0, 0, 255), (0, 128, 0), (200, 0, 0), (220, 200, 150)],
        bands=[3, 1, 2],
        mean=[60.0, 70.0, 80.0],
        std=[30.0, 35.0, 40.0],
        window_size=64,
        overlap=0.25,
        gsd=28.5,
        model="deeplabv3plus_resnet18",
    )


@pytest.fixture(scope="module")
def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("deeplabv3plus_resnet18", num_classes=len(CLASSES), in_channels=3).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, network) -> object:
    """A task checkpoint in the documented layout (weights under ``model.``, metadata)."""
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in network.state_dict().items()},
            "hyper_parameters": {
                "model": "deeplabv3plus_resnet18",
                "model_kwargs": {},
                "num_classes": len(CLASSES),
                "in_channels": 3,
            },
            "s5geo_metadata": _metadata().to_dict(),
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory, checkpoint) -> object:
    output = tmp_path_factory.mktemp("onnx") / "model.onnx"
    assert s5geo_main(["export", str(checkpoint), "--output", str(output)]) == 0
    return output


def test_export_carries_metadata_and_dynamic_axes(exported) -> None:
    model = onnx.load(str(exported))
    props = {p.key: p.value for p in model.metadata_props}
    assert ModelMetadata.from_json(props["s5geo"]) == _metadata()
    assert json.loads(props["s5geo"])["version"]
    (image,) = model.graph.input
    (logits,) = model.graph.output
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    dims = [d.dim_param or d.dim_value for d in logits.type.tensor_type.shape.dim]
    assert dims == ["batch", len(CLASSES), "height", "width"]


def test_onnx_logits_match_torch_at_other_sizes(exported, network) -> None:
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for shape in [(3, 3, 96, 48), (1, 3, 40, 72)]:  # not the export size: dynamic axes work
        x = rng.standard_normal(shape, dtype=np.float32)
        (logits,) = session.run(None, {"image": x})
        with torch.inference_mode():
            expected = network(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(logits, expected, atol=1e-3, rtol=1e-3)


def test_onnx_predictor_follows_the_predictor_interface(exported, network) -> None:
    predictor, metadata = load_onnx(exported, device="cpu")
    assert isinstance(predictor, Predictor)
    assert metadata == _metadata()
    assert "CPUExecutionProvider" in predictor.device_name
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64), dtype=np.float32)
    assert predictor.returns_logits
    logits = predictor.predict(x)
    with torch.inference_mode():
        expected = network(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-3, rtol=1e-3)


def test_segment_with_onnx_equals_pytorch(tmp_path, exported, checkpoint) -> None:
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 200, size=(3, 10, 12))
    data = np.repeat(np.repeat(coarse, 9, axis=1), 9, axis=2)[:, :85, :101]
    data = (data + rng.integers(0, 20, size=data.shape)).astype(np.uint8)
    raster = write_raster(tmp_path / "input.tif", data)
    torch_map = segment_raster(raster, checkpoint, tmp_path / "torch.tif", progress=False)
    onnx_map = segment_raster(raster, exported, tmp_path / "onnx.tif", device="cpu", progress=False)
    cli_map = tmp_path / "cli.tif"
    assert s5geo_main(["segment", str(raster), "--model", str(exported), "--output", str(cli_map)]) == 0
    with rasterio.open(torch_map) as a, rasterio.open(onnx_map) as b, rasterio.open(cli_map) as c:
        expected, actual = a.read(1), b.read(1)
        assert b.crs == a.crs and b.transform == a.transform
        np.testing.assert_array_equal(c.read(1), actual)
    assert len(np.unique(expected)) > 1  # the comparison is not trivially constant
    assert (actual == expected).mean() >= 0.999


def test_export_refuses_to_overwrite_and_reports_bad_models(tmp_path, exported, checkpoint):
    assert s5geo_main(["export", str(checkpoint), "--output", str(exported)]) == 1
    with pytest.raises(OutputExistsError):
        export_onnx(torch.nn.Identity(), _metadata(), exported)

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("no graph here")

    output = tmp_path / "broken.onnx"
    with pytest.raises(S5GeoError, match="cannot export"):
        export_onnx(Broken(), _metadata(), output)
    assert list(tmp_path.iterdir()) == []  # no partial file left


def test_onnx_predictor_rejects_files_without_metadata(tmp_path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["logits"])],
        "bare",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 1, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 1, "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "bare.onnx"
    onnx.save(model, str(path))
    with pytest.raises(S5GeoError, match="no s5geo metadata"):
        OnnxPredictor(path, device="cpu")
