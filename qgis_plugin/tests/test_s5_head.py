"""The S5 authors' Potsdam model in QGIS: ``s5geo export --head potsdam``, then the plugin segments.

The checkpoint is a tiny fake in the authors' multi-dataset ViT-MoE key layout, written by the main
suite's generator (``tests/models/s5_moe_layout.py``) in the main venv, which also runs the export.
The plugin's Segment algorithm must run the exported file in real QGIS and write Potsdam's classes
and colours, equal to what ``s5geo segment`` writes from the same file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import processing
import pytest
from osgeo import gdal, osr
from plugin_helpers import REPO_ROOT

CLI_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
POTSDAM_CLASSES = ["impervious surfaces", "building", "low vegetation", "tree", "car"]

EXPORT = """
import sys, torch
sys.path.insert(0, "tests/models")
from s5_moe_layout import fake_moe_checkpoint
from s5geo.cli.main import main
torch.save(fake_moe_checkpoint(seed=0), sys.argv[1])
sys.exit(main(["export", sys.argv[1], "--head", "potsdam", "-o", sys.argv[2]]))
"""


def _run_main_venv(*args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QGIS"))}
    result = subprocess.run(
        [str(CLI_PYTHON), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _potsdam_like_raster(path: Path) -> Path:
    """A 3-band 8-bit 5 cm orthophoto patch in EPSG:25833 (Potsdam's CRS), 90 x 120 px."""
    rng = np.random.default_rng(4)
    coarse = rng.integers(0, 256, size=(3, 9, 12))
    data = np.repeat(np.repeat(coarse, 10, axis=1), 10, axis=2).astype(np.uint8)
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 120, 90, 3, gdal.GDT_Byte)
    dataset.SetGeoTransform((368_000.0, 0.05, 0.0, 5_808_000.0, 0.0, -0.05))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(25833)
    dataset.SetProjection(srs.ExportToWkt())
    for index in range(3):
        dataset.GetRasterBand(index + 1).WriteArray(data[index])
    dataset = None
    return path


@pytest.mark.skipif(not CLI_PYTHON.is_file(), reason="needs the main venv with s5geo and torch")
def test_plugin_segments_with_the_authors_potsdam_head(provider, tmp_path) -> None:
    model = tmp_path / "potsdam.onnx"
    _run_main_venv("-c", EXPORT, str(tmp_path / "s5_vit_b_moe_mdf.pth"), str(model))
    raster = _potsdam_like_raster(tmp_path / "ortho.tif")
    cli_output = tmp_path / "cli.tif"
    _run_main_venv(
        "-m", "s5geo", "segment", str(raster), "--model", str(model), "--output", str(cli_output),
        "--device", "cpu", "--no-progress",
    )  # fmt: skip
    output = tmp_path / "plugin.tif"
    processing.run(
        "s5geo:segment", {"INPUT": str(raster), "MODEL": str(model), "DEVICE": 1, "OUTPUT": str(output)}
    )

    dataset = gdal.Open(str(output))
    band = dataset.GetRasterBand(1)
    classes = band.ReadAsArray()
    assert classes.shape == (90, 120) and set(np.unique(classes)) <= set(range(5))
    assert len(np.unique(classes)) > 1  # the random head still separates the blocks
    assert [band.GetMetadataItem(f"CLASS_{i}") for i in range(5)] == POTSDAM_CLASSES
    table = band.GetColorTable()
    assert table.GetColorEntry(1)[:3] == (0, 0, 255)  # Potsdam's building colour
    np.testing.assert_array_equal(classes, gdal.Open(str(cli_output)).ReadAsArray())
