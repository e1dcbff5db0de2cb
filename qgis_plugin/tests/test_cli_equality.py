"""``s5geo segment`` and the plugin's Segment algorithm give the same rasters (one inference core).

The CLI runs in the main venv (rasterio, s5geo), the plugin here in real QGIS; both on the same
raster and ONNX model. Class maps, confidence rasters, tags, nodata and colour tables must be equal.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import processing
import pytest
from osgeo import gdal
from plugin_helpers import MODEL, REPO_ROOT, band_values, write_raster

CLI_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"


def _with_alpha(path: Path) -> Path:
    """Write the test bands plus an alpha band (0 in a block) and no nodata value."""
    data = band_values(height=83, width=101, seed=3)
    alpha = np.full(data.shape[1:], 255, np.uint16)
    alpha[40:60, 50:90] = 0
    write_raster(path, np.concatenate([data, alpha[None]]), nodata=None)
    dataset = gdal.Open(str(path), gdal.GA_Update)
    dataset.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
    dataset = None
    return path


def _describe(path: Path) -> dict:
    dataset = gdal.Open(str(path))
    band = dataset.GetRasterBand(1)
    table = band.GetColorTable()
    return {
        "data": dataset.ReadAsArray(),
        "dtype": gdal.GetDataTypeName(band.DataType),
        "nodata": band.GetNoDataValue(),
        "tags": dataset.GetMetadata(),
        "band_tags": band.GetMetadata(),
        "description": band.GetDescription(),
        "colors": None if table is None else [table.GetColorEntry(i) for i in range(table.GetCount())],
        "geotransform": dataset.GetGeoTransform(),
    }


@pytest.mark.skipif(not CLI_PYTHON.is_file(), reason="needs the main venv with s5geo and rasterio")
@pytest.mark.parametrize("case", ["nodata", "alpha"])
@pytest.mark.parametrize(("window", "overlap", "blend"), [(None, None, 0), (16, 0.5, 1)])
def test_cli_and_plugin_write_equal_rasters(provider, tmp_path, case, window, overlap, blend) -> None:
    if case == "nodata":
        raster = write_raster(tmp_path / "input.tif", band_values(height=83, width=101, seed=3))
    else:
        raster = _with_alpha(tmp_path / "input.tif")
    cli_dir, plugin_dir = tmp_path / "cli", tmp_path / "plugin"
    cli_dir.mkdir()
    plugin_dir.mkdir()
    blend_name = ("cosine", "linear", "none")[blend]
    command = [
        str(CLI_PYTHON),
        "-m",
        "s5geo",
        "segment",
        str(raster),
        "--model",
        str(MODEL),
        "--output",
        str(cli_dir / "classes.tif"),
        "--confidence",
        "--device",
        "cpu",
        "--no-progress",
        "--batch-size",
        "3",
        "--blend",
        blend_name,
    ]
    if window is not None:
        command += ["--window", str(window), "--overlap", str(overlap)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QGIS"))}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert result.returncode == 0, result.stderr
    parameters = {
        "INPUT": str(raster),
        "MODEL": str(MODEL),
        "DEVICE": 1,
        "BATCH_SIZE": 3,
        "BLEND": blend,
        "OUTPUT": str(plugin_dir / "classes.tif"),
        "CONFIDENCE": str(plugin_dir / "classes_confidence.tif"),
    }
    if window is not None:
        parameters.update(WINDOW=window, OVERLAP=overlap)
    processing.run("s5geo:segment", parameters)

    for name in ("classes.tif", "classes_confidence.tif"):
        cli, plugin = _describe(cli_dir / name), _describe(plugin_dir / name)
        np.testing.assert_array_equal(plugin.pop("data"), cli.pop("data"), err_msg=name)
        assert plugin == cli, name
    classes = _describe(cli_dir / "classes.tif")
    assert classes["nodata"] == 255 and (classes["data"] == 255).any()
    assert classes["band_tags"]["CLASS_0"] == "water"
    assert _describe(cli_dir / "classes_confidence.tif")["nodata"] == 0
