"""Small georeferenced test rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine, from_origin


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str = "EPSG:32119",
    transform: Affine | None = None,
    nodata: float | None = None,
) -> Path:
    """Write ``data`` (bands x rows x columns, or one band) as a GeoTIFF; 28.5 m pixels by default."""
    data = data if data.ndim == 3 else data[None]
    transform = transform or from_origin(600_000.0, 250_000.0, 28.5, 28.5)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(data)
    return path
