#!/usr/bin/env python3
"""Write a tiny fake ISPRS Potsdam release (the two zips TorchGeo's Potsdam2D extracts).

4_Ortho_RGBIR.zip holds 4_Ortho_RGBIR/top_potsdam_<X>_<Y>_RGBIR.tif (4-band uint8 GeoTIFF, R, G, B,
IR); 5_Labels_all.zip holds top_potsdam_<X>_<Y>_label.tif (3-band uint8 RGB-coded labels) at its
root. Two training tiles and one test tile (the real ones are 6000 x 6000). Seeded and reproducible;
files are written next to this script.
"""

import warnings
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

HERE = Path(__file__).resolve().parent
SIZES = {"top_potsdam_2_10": (64, 64), "top_potsdam_2_11": (48, 80), "top_potsdam_2_13": (40, 40)}
# ISPRS colours: impervious, building, low vegetation, tree, car, clutter.
COLORS = np.array(
    [(255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0)], np.uint8
)


def tif_bytes(array: np.ndarray) -> bytes:
    """Encode a C x H x W uint8 array as a deflate-compressed GeoTIFF."""
    count, height, width = array.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.MemoryFile() as memfile:
            with memfile.open(
                driver="GTiff",
                height=height,
                width=width,
                count=count,
                dtype="uint8",
                compress="deflate",
            ) as dst:
                dst.write(array)
            return memfile.read()


def blocks(rng: np.random.Generator, high: int, shape: tuple[int, ...], size: int) -> np.ndarray:
    """Random integers in [0, high) constant over size x size blocks (compresses well)."""
    *lead, height, width = shape
    coarse = rng.integers(0, high, size=(*lead, height // size + 1, width // size + 1))
    fine = coarse.repeat(size, axis=-2).repeat(size, axis=-1)
    return fine[..., :height, :width]


def add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Add a member with a fixed timestamp so the archive is reproducible."""
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    archive.writestr(info, data, zipfile.ZIP_DEFLATED)


def main() -> None:
    rng = np.random.default_rng(1)
    images = zipfile.ZipFile(HERE / "4_Ortho_RGBIR.zip", "w")
    labels = zipfile.ZipFile(HERE / "5_Labels_all.zip", "w")
    with images, labels:
        for tile, (height, width) in SIZES.items():
            image = blocks(rng, 256, (4, height, width), 4).astype(np.uint8)
            add(images, f"4_Ortho_RGBIR/{tile}_RGBIR.tif", tif_bytes(image))
            classes = blocks(rng, len(COLORS), (height, width), 8)
            classes[0, 0] = 5  # a clutter pixel at a known place
            rgb = np.ascontiguousarray(COLORS[classes].transpose(2, 0, 1))
            add(labels, f"{tile}_label.tif", tif_bytes(rgb))


if __name__ == "__main__":
    main()
