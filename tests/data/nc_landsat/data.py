#!/usr/bin/env python3
"""Write a tiny fake of the GRASS North Carolina Landsat-7 sample in its real layout.

lsat7_2000_{10,20,30,40,50,70}.tif: single-band GeoTIFFs, EPSG:32119, 28.5 m, float32 with nodata
-99999 (band 70 int16 with nodata -32768, as in the real data) outside a triangular footprint;
strata.tif: dense classes 1..7 (float32, EPSG:3358 like the real file, nodata -99999 outside the
footprint); landsat96_labelled_pixels.tif: a few labelled pixels, nodata elsewhere;
landsat96_polygons.shp: three training boxes with fields label (name) and id (1..7), EPSG:3358.
Band 10 = 50 + 10 * class + noise (0..4), so tests can check that chips of image and labels align.
"""

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent
HEIGHT, WIDTH, RES = 56, 64, 28.5
LEFT, TOP = 630534.0, 228114.0
TRANSFORM = from_origin(LEFT, TOP, RES, RES)
BANDS = ("10", "20", "30", "40", "50", "70")
CLASSES = ("developed", "agriculture", "herbaceous", "shrubland", "forest", "water", "sediment")
# (row0, col0, row1, col1) pixel boxes of the training polygons and their class value
BOXES = [((4, 30, 12, 40), 5), ((20, 8, 28, 16), 2), ((40, 44, 48, 56), 6)]


def write(name: str, array: np.ndarray, crs: str, nodata: float) -> None:
    profile = {
        "driver": "GTiff",
        "height": HEIGHT,
        "width": WIDTH,
        "count": 1,
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": TRANSFORM,
        "nodata": nodata,
        "compress": "deflate",
    }
    with rasterio.open(HERE / name, "w", **profile) as dst:
        dst.write(array[None])


def main() -> None:
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    outside = rows + cols < 12  # triangular nodata corner, like the rotated real footprint
    classes = rng.integers(1, 8, size=(HEIGHT // 8 + 1, WIDTH // 8 + 1)).repeat(8, 0).repeat(8, 1)
    classes = classes[:HEIGHT, :WIDTH]
    for (r0, c0, r1, c1), value in BOXES:
        classes[r0:r1, c0:c1] = value
    for band in BANDS:
        noise = rng.integers(0, 5, size=(HEIGHT, WIDTH))
        if band == "10":
            data = (50 + 10 * classes + noise).astype(np.float32)
        else:
            data = rng.integers(1, 200, size=(HEIGHT, WIDTH)).astype(np.float32)
        if band == "70":
            write(
                f"lsat7_2000_{band}.tif",
                np.where(outside, -32768, data).astype(np.int16),
                "EPSG:32119",
                -32768,
            )
        else:
            write(
                f"lsat7_2000_{band}.tif",
                np.where(outside, -99999, data).astype(np.float32),
                "EPSG:32119",
                -99999,
            )
    strata = np.where(outside, -99999, classes).astype(np.float32)
    write("strata.tif", strata, "EPSG:3358", -99999)
    pixels = np.full((HEIGHT, WIDTH), -99999, np.float32)
    picked = rng.choice(np.flatnonzero(~outside), size=40, replace=False)
    pixels.flat[picked] = classes.flat[picked]
    write("landsat96_labelled_pixels.tif", pixels, "EPSG:3358", -99999)
    boxes = [
        shapely.box(LEFT + c0 * RES, TOP - r1 * RES, LEFT + c1 * RES, TOP - r0 * RES)
        for (r0, c0, r1, c1), _ in BOXES
    ]
    frame = gpd.GeoDataFrame(
        {"label": [CLASSES[v - 1] for _, v in BOXES], "id": [v for _, v in BOXES]},
        geometry=boxes,
        crs="EPSG:3358",
    )
    frame.to_file(HERE / "landsat96_polygons.shp")


if __name__ == "__main__":
    main()
