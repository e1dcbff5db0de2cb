#!/usr/bin/env python3
"""Write tiny fake source datasets for ``s5geo corpus build``.

sources/dota/: large RGB PNGs (one in a subfolder) cut into 32-px test crops; their top rows hold
red value 0 and the bottom rows red values 0..3 in blocks, so a model that reads the class from the
red band finds foreground only in the bottom crops.
sources/sior/: small RGB PNGs kept whole (one all background).
sources/geo/scene.tif: a georeferenced 3-band uint8 GeoTIFF.
The iSAID source of the tests is tests/data/isaid. Seeded; files are written next to this script.
"""

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent


def picture(rng: np.random.Generator, height: int, width: int, background_rows: int) -> np.ndarray:
    """RGB image whose red band is 0 in the first ``background_rows`` rows, classes 0..3 below."""
    coarse = rng.integers(0, 4, size=(height // 4 + 1, width // 4 + 1))
    red = coarse.repeat(4, 0).repeat(4, 1)[:height, :width].astype(np.uint8)
    red[:background_rows] = 0
    rest = rng.integers(0, 256, size=(height, width, 2), dtype=np.uint8)
    return np.dstack([red, rest])


def main() -> None:
    rng = np.random.default_rng(0)
    dota = HERE / "sources" / "dota"
    (dota / "part2").mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture(rng, 48, 80, 32)).save(dota / "P0100.png")
    Image.fromarray(picture(rng, 40, 40, 40)).save(dota / "part2" / "P0200.png")  # all background
    sior = HERE / "sources" / "sior"
    sior.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture(rng, 24, 20, 0)).save(sior / "00001.png")
    Image.fromarray(picture(rng, 24, 20, 24)).save(sior / "00002.png")  # all background
    geo = HERE / "sources" / "geo"
    geo.mkdir(parents=True, exist_ok=True)
    data = np.moveaxis(picture(rng, 36, 36, 0), -1, 0)
    profile = {
        "driver": "GTiff",
        "height": 36,
        "width": 36,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(500000, 4000000, 0.5, 0.5),
    }
    with rasterio.open(geo / "scene.tif", "w", **profile) as dst:
        dst.write(data)


if __name__ == "__main__":
    main()
