#!/usr/bin/env python3
"""Write a tiny fake ISPRS Vaihingen release (the two zips TorchGeo's Vaihingen2D extracts).

ISPRS_semantic_labeling_Vaihingen.zip holds top/top_mosaic_09cm_area<N>.tif (3-band uint8 IRRG
GeoTIFF); ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip holds
top_mosaic_09cm_area<N>.tif (3-band uint8 RGB-coded labels) at its root. Two training areas and one
test area, with odd sizes so that 32 px tiling has a border-aligned last window. Seeded and
byte-for-byte reproducible; files are written next to this script.
"""

import warnings
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

HERE = Path(__file__).resolve().parent
SIZES = {"area1": (70, 90), "area3": (40, 50), "area2": (50, 60)}  # area2 is a test area
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
    archive.writestr(
        zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED
    )


def main() -> None:
    rng = np.random.default_rng(0)
    images = zipfile.ZipFile(HERE / "ISPRS_semantic_labeling_Vaihingen.zip", "w")
    labels = zipfile.ZipFile(
        HERE / "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip", "w"
    )
    with images, labels:
        for area, (height, width) in SIZES.items():
            name = f"top_mosaic_09cm_{area}.tif"
            image = blocks(rng, 256, (3, height, width), 4).astype(np.uint8)
            add(images, f"top/{name}", tif_bytes(image))
            classes = blocks(rng, len(COLORS), (height, width), 10)
            classes[0, 0] = 5  # a clutter pixel at a known place
            rgb = np.ascontiguousarray(COLORS[classes].transpose(2, 0, 1))
            add(labels, name, tif_bytes(rgb))


if __name__ == "__main__":
    main()
