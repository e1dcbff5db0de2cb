"""``s5geo export --head``: one dataset's head of the S5 authors' multi-dataset ViT-MoE to ONNX.

The checkpoint is a tiny fake in the authors' key layout (``tests/models/s5_moe_layout.py``); the
exported file is run through the torch-free runtime that the QGIS plugin vendors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from _inference_helpers import write_raster
from s5_moe_layout import HEADS, fake_moe_checkpoint

from s5geo.cli.main import main as s5geo_main
from s5geo.datasets import LoveDA, Potsdam
from s5geo.errors import S5GeoError
from s5geo.inference.onnx_export import export_checkpoint, load_s5_head, s5_head_metadata
from s5geo.inference.segment import segment_raster
from s5geo.metadata import METADATA_KEY, ModelMetadata
from s5geo.models import build_model, load_pretrained
from s5geo.models.vit_moe import S5_MDF_NUM_CLASSES, S5_MDF_TASKS
from s5geo.models.weights import CACHE_ENV, get_weights
from s5geo.runtime.arrays import predict_array
from s5geo.runtime.onnx import load_onnx

IMAGENET_MEAN_255 = [123.675, 116.28, 103.53]
IMAGENET_STD_255 = [58.395, 57.12, 57.375]


@pytest.fixture(scope="module")
def authors_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("s5") / "s5_vit_b_moe_mdf.pth"
    torch.save(fake_moe_checkpoint(seed=0), path)
    return path


@pytest.fixture(scope="module")
def potsdam_onnx(tmp_path_factory, authors_file) -> Path:
    output = tmp_path_factory.mktemp("onnx") / "potsdam.onnx"
    assert s5geo_main(["export", str(authors_file), "--head", "potsdam", "-o", str(output)]) == 0
    return output


def _torch_head(authors_file: Path, dataset: str) -> torch.nn.Module:
    """The head as the model tests load it (they check it against the authors' forward)."""
    model = build_model("upernet_vit_tiny_moe", num_classes=5, dataset=dataset)
    load_pretrained(model, authors_file, dataset=dataset, strict=True)
    return model.eval()


def _metadata(path: Path) -> ModelMetadata:
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return ModelMetadata.from_json(props[METADATA_KEY])


def test_potsdam_head_metadata(potsdam_onnx) -> None:
    metadata = _metadata(potsdam_onnx)
    assert metadata.classes == list(Potsdam.classes)
    assert metadata.classes[0] == "impervious surfaces" and metadata.classes[4] == "car"
    assert metadata.colors == list(Potsdam.colors)
    np.testing.assert_allclose(metadata.mean, IMAGENET_MEAN_255)
    np.testing.assert_allclose(metadata.std, IMAGENET_STD_255)
    assert metadata.bands == [1, 2, 3] and metadata.scale == 255.0 and metadata.dtype == "uint8"
    assert metadata.window_size == 512 and metadata.gsd == 0.05
    assert metadata.model == "upernet_vit_tiny_moe"  # inferred from the tensor shapes


def test_onnx_runs_the_potsdam_head(potsdam_onnx, authors_file) -> None:
    predictor, _ = load_onnx(potsdam_onnx, device="cpu")
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 96), dtype=np.float32)
    logits = predictor.predict(x)
    with torch.inference_mode():
        potsdam = _torch_head(authors_file, "potsdam")(torch.from_numpy(x)).numpy()
        vaihingen = _torch_head(authors_file, "vaihingen")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, potsdam, atol=1e-4, rtol=1e-4)
    assert np.abs(logits - vaihingen).max() > 1e-2  # another head's experts and decoder differ


def test_segment_geotiff_with_the_exported_head(tmp_path, potsdam_onnx, authors_file) -> None:
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 255, size=(3, 8, 10))
    data = np.repeat(np.repeat(coarse, 12, axis=1), 12, axis=2)[:, :90, :115].astype(np.uint8)
    raster = write_raster(
        tmp_path / "potsdam.tif", data, transform=from_origin(368_000, 5_808_000, 0.05, 0.05)
    )
    output = tmp_path / "classes.tif"
    assert s5geo_main(["segment", str(raster), "--model", str(potsdam_onnx), "--output", str(output)]) == 0
    metadata = _metadata(potsdam_onnx)
    module = _torch_head(authors_file, "potsdam")
    expected = segment_raster(raster, module, tmp_path / "torch.tif", metadata=metadata, progress=False)
    with rasterio.open(output) as a, rasterio.open(expected) as b:
        actual, reference = a.read(1), b.read(1)
    assert len(np.unique(reference)) > 1
    assert (actual == reference).mean() >= 0.999
    # the plugin's path: the torch-free runtime on an in-memory array
    predictor, runtime_metadata = load_onnx(potsdam_onnx, device="cpu")
    scores = predict_array(data.astype(np.float32), predictor.predict, runtime_metadata)
    assert (scores.argmax(0) == reference).mean() >= 0.999


def test_registry_name_resolves_through_the_cache(tmp_path, monkeypatch, authors_file) -> None:
    entry = get_weights("s5_moe_mdf_vit_b")
    (tmp_path / entry.file_name).write_bytes(authors_file.read_bytes())
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    path, metadata = export_checkpoint(entry.name, tmp_path / "loveda.onnx", head="LoveDA", verify=False)
    assert path.is_file() and _metadata(path) == metadata
    assert metadata.classes == list(LoveDA.classes) and metadata.colors == list(LoveDA.colors)
    assert metadata.gsd == 0.3


def test_each_released_head_loads_with_its_classes(authors_file) -> None:
    for dataset, head in HEADS.items():
        module, name = load_s5_head(authors_file, dataset)
        expected = torch.load(authors_file, weights_only=True)["model"][f"module.{head}.1.weight"]
        assert name == "upernet_vit_tiny_moe" and module.dataset == dataset
        assert torch.equal(module.classifier.weight, expected)


def test_unregistered_width_needs_model_and_kwargs() -> None:
    narrow = fake_moe_checkpoint(seed=1, dim=32, part=8)
    with pytest.raises(S5GeoError, match="width 32 is no registered size; name the architecture"):
        load_s5_head(narrow, "potsdam")
    options = {"embed_dim": 32, "num_heads": 4}
    module, name = load_s5_head(narrow, "potsdam", "upernet_vit_tiny_moe", options)
    assert name == "upernet_vit_tiny_moe" and module.encoder.vit.blocks[0].mlp.experts[1].out_features == 8


def test_every_released_head_has_its_datasets_classes() -> None:
    gsd = {"vaihingen": 0.09, "potsdam": 0.05, "openearthmap": None, "loveda": 0.3}
    for dataset in S5_MDF_TASKS:
        metadata = s5_head_metadata(dataset, "upernet_vit_b_moe", S5_MDF_NUM_CLASSES[dataset])
        assert metadata.num_classes == S5_MDF_NUM_CLASSES[dataset] and metadata.gsd == gsd[dataset]
    assert s5_head_metadata("openearthmap", "m", 9).classes[0] == "other"  # label 0 trained as a class
    assert s5_head_metadata("loveda", "m", 7).classes[-1] == "agriculture"  # raw 1..7 -> 0..6
    with pytest.raises(S5GeoError, match="6 classes but s5geo's Potsdam has 5"):
        s5_head_metadata("potsdam", "m", 6)


def _error(capsys, argv: list[str]) -> str:
    assert s5geo_main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_errors_name_the_file_and_the_problem(tmp_path, capsys, authors_file) -> None:
    out = str(tmp_path / "x.onnx")
    message = _error(capsys, ["export", str(authors_file), "--head", "isaid", "-o", out])
    assert str(authors_file) in message and "'isaid'" in message
    assert "vaihingen, potsdam, openearthmap, loveda" in message
    message = _error(capsys, ["export", str(authors_file), "-o", out])
    assert str(authors_file) in message and "--head" in message and "potsdam" in message
    message = _error(
        capsys, ["export", str(authors_file), "--head", "potsdam", "--model", "upernet_vit_b_moe", "-o", out]
    )
    assert str(authors_file) in message and "does not fit upernet_vit_b_moe" in message
    plain = tmp_path / "plain.pth"
    torch.save(build_model("upernet_vit_tiny", num_classes=5).state_dict(), plain)
    message = _error(capsys, ["export", str(plain), "--head", "potsdam", "-o", out])
    assert str(plain) in message and "per-dataset heads" in message
    message = _error(capsys, ["export", str(plain), "--model", "upernet_vit_b_moe", "-o", out])
    assert "--model" in message and "--head" in message
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(S5GeoError, match="no head"):
        load_s5_head(authors_file, "udd6")
