"""Shared helpers of the plugin tests: the test raster and the class map the model must give."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

TESTS_DIR = Path(__file__).resolve().parent
PLUGIN_ROOT = TESTS_DIR.parent
REPO_ROOT = PLUGIN_ROOT.parent
MODEL = TESTS_DIR / "data" / "tiny_model.onnx"
EPSG = 32119
ORIGIN = (630_000.0, 230_000.0)
PIXEL = 30.0

sys.path.insert(0, str(TESTS_DIR / "data"))
import make_model  # noqa: E402 - the fixture's weights and metadata

NODATA = 0


def band_values(height: int = 70, width: int = 90, seed: int = 0) -> np.ndarray:
    """Return ``3 x height x width`` uint16 bands: 10 px blocks of random levels plus noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(1, 250, size=(3, -(-height // 10), -(-width // 10)))
    data = np.repeat(np.repeat(coarse, 10, axis=1), 10, axis=2)[:, :height, :width]
    data = data + rng.integers(0, 5, size=data.shape)
    data[:, :8, :12] = NODATA  # a nodata corner
    return data.astype(np.uint16)


def write_raster(path: Path, data: np.ndarray, nodata: int | None = NODATA) -> Path:
    """Write ``data`` (bands x rows x cols) as a GeoTIFF in EPSG:32119 with 30 m pixels."""
    bands, height, width = data.shape
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), width, height, bands, gdal.GDT_UInt16)
    dataset.SetGeoTransform((ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    dataset.SetProjection(srs.ExportToWkt())
    for index in range(bands):
        band = dataset.GetRasterBand(index + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band.WriteArray(data[index])
    dataset = None
    return path


def expected_classes(data: np.ndarray) -> np.ndarray:
    """Class map of the fixture model for bands in model order (255 where any band is nodata)."""
    meta = make_model.METADATA
    mean = np.asarray(meta["mean"], np.float64)[:, None, None]
    std = np.asarray(meta["std"], np.float64)[:, None, None]
    normalised = (data.astype(np.float64) - mean) / std
    logits = np.einsum("kc,chw->khw", make_model.WEIGHTS, normalised)
    logits += make_model.BIAS[:, None, None]
    classes = logits.argmax(axis=0).astype(np.uint8)
    classes[(data == NODATA).any(axis=0)] = 255
    return classes


def read_band(path: Path | str) -> np.ndarray:
    """Return band 1 of a raster."""
    dataset = gdal.Open(str(path))
    return dataset.GetRasterBand(1).ReadAsArray()
