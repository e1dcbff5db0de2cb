"""Helpers shared by the ``tests/data/<dataset>/data.py`` scripts that write fake releases."""

import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning

# ISPRS colours: impervious, building, low vegetation, tree, car, clutter.
ISPRS_COLORS = np.array(
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


def write_isprs_release(
    rng: np.random.Generator,
    images: zipfile.ZipFile,
    labels: zipfile.ZipFile,
    members: list[tuple[str, str, int, int]],
    bands: int,
    label_block: int,
) -> None:
    """Write ISPRS images and RGB-coded labels (a clutter pixel at (0, 0)) into the two archives.

    ``members`` lists (image member, label member, height, width).
    """
    with images, labels:
        for image_name, label_name, height, width in members:
            image = blocks(rng, 256, (bands, height, width), 4).astype(np.uint8)
            add(images, image_name, tif_bytes(image))
            classes = blocks(rng, len(ISPRS_COLORS), (height, width), label_block)
            classes[0, 0] = 5  # a clutter pixel at a known place
            rgb = np.ascontiguousarray(ISPRS_COLORS[classes].transpose(2, 0, 1))
            add(labels, label_name, tif_bytes(rgb))


def write_drone_release(
    here: Path,
    files: dict[str, list[str]],
    rng: np.random.Generator,
    image_shape: tuple[int, int, int],
    draw_label: Callable[[np.random.Generator], Image.Image],
) -> None:
    """Write ``<split>/src/<name>.JPG`` images and ``<split>/gt/<name>.png`` labels under ``here``.

    ``image_shape`` is (height, width, block): images are random colours constant over blocks;
    ``draw_label`` draws each label from the same generator, after its image.
    """
    height, width, block = image_shape
    for split, names in files.items():
        (here / split / "src").mkdir(parents=True, exist_ok=True)
        (here / split / "gt").mkdir(parents=True, exist_ok=True)
        for name in names:
            coarse = rng.integers(0, 256, size=(height // block, width // block, 3), dtype=np.uint8)
            image = Image.fromarray(coarse.repeat(block, 0).repeat(block, 1))
            # 4:4:4 chroma: GDAL and PIL then decode identical pixels (tests compare them).
            image.save(here / split / "src" / f"{name}.JPG", quality=95, subsampling=0)
            draw_label(rng).save(here / split / "gt" / f"{name}.png")
