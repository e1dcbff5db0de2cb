"""Band names end to end: datamodule -> task checkpoint -> ONNX export -> ``s5geo segment``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import rasterio
import torch
from raster_helpers import write_raster
from rasterio.transform import from_origin

from s5geo.cli.main import main as s5geo_main
from s5geo.metadata import CHECKPOINT_METADATA_KEY, METADATA_KEY

CROP = 64


def _task_checkpoint(path: Path) -> Path:
    """A checkpoint of a task trained under the Vaihingen datamodule (IR-R-G tiles)."""
    from s5geo.datamodules import VaihingenDataModule
    from s5geo.tasks import SupervisedSegmentation

    torch.manual_seed(0)
    dm = VaihingenDataModule(str(path.parent / "unused"), crop_size=CROP)
    task = SupervisedSegmentation(model="deeplabv3plus_resnet18", num_classes=5)
    task._datamodule = lambda: dm  # as under a Trainer with this datamodule
    checkpoint = {"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}
    task.on_save_checkpoint(checkpoint)
    assert checkpoint[CHECKPOINT_METADATA_KEY]["band_names"] == ["nir", "red", "green"]
    torch.save(checkpoint, path)
    return path


def test_exported_model_carries_band_names_and_segment_uses_them(tmp_path: Path, capfd) -> None:
    checkpoint = _task_checkpoint(tmp_path / "vaihingen.ckpt")
    model = tmp_path / "vaihingen.onnx"
    assert s5geo_main(["export", str(checkpoint), "--output", str(model)]) == 0
    props = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert json.loads(props[METADATA_KEY])["band_names"] == ["nir", "red", "green"]

    # A 4-band raster stored R, G, B, NIR with named bands: the model reads bands 4, 1, 2.
    data = np.random.default_rng(3).integers(1, 250, size=(4, 80, 70)).astype(np.uint8)
    raster = write_raster(
        tmp_path / "rgbn.tif", data, crs="EPSG:32632", transform=from_origin(500_000, 5_400_000, 0.1, 0.1)
    )
    with rasterio.open(raster, "r+") as dst:
        dst.descriptions = ("Red", "Green", "Blue", "NIR")
    common = ["--model", str(model), "--no-progress", "--device", "cpu"]
    capfd.readouterr()
    assert s5geo_main(["segment", str(raster), "--output", str(tmp_path / "auto.tif"), *common]) == 0
    assert "bands 4, 1, 2" in capfd.readouterr().err
    assert (
        s5geo_main(
            ["segment", str(raster), "--output", str(tmp_path / "set.tif"), "--bands", "4", "1", "2", *common]
        )
        == 0
    )
    with rasterio.open(tmp_path / "auto.tif") as auto, rasterio.open(tmp_path / "set.tif") as chosen:
        np.testing.assert_array_equal(auto.read(1), chosen.read(1))


def test_older_onnx_models_without_band_names_keep_their_band_numbers(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from s5geo.metadata import ModelMetadata
    from s5geo.runtime.onnx import read_onnx_metadata

    legacy = Path(__file__).resolve().parents[2] / "qgis_plugin" / "tests" / "data" / "tiny_model.onnx"
    meta = read_onnx_metadata(legacy)
    assert isinstance(meta, ModelMetadata) and meta.band_names is None
