"""Helpers shared by the benchmark dataset tests: copies of the fake releases, raster reads, tiling."""

import shutil
from pathlib import Path

import numpy as np
import rasterio
import torch

DATA = Path(__file__).resolve().parents[1] / "data"
# ISPRS colour -> S5 index (clutter red -> 255).
ISPRS_EXPECTED = {
    (255, 255, 255): 0,
    (0, 0, 255): 1,
    (0, 255, 255): 2,
    (0, 255, 0): 3,
    (255, 255, 0): 4,
    (255, 0, 0): 255,
}


def copy_release(name: str, tmp_path: Path, folder: str | None = None) -> Path:
    """Copy the fake release ``tests/data/<name>`` (not its generator) to ``tmp_path/<folder>``."""
    target = tmp_path / (folder or name)
    shutil.copytree(DATA / name, target, ignore=shutil.ignore_patterns("*.py"))
    return target


def copy_archives(name: str, tmp_path: Path) -> Path:
    """Copy the zips of the fake release ``tests/data/<name>`` into ``tmp_path``."""
    for archive in (DATA / name).glob("*.zip"):
        shutil.copy(archive, tmp_path)
    return tmp_path


def read(path: Path) -> np.ndarray:
    """All bands of a raster, ``C x H x W``."""
    with rasterio.open(path) as src:
        return src.read()


def reassemble(
    tiled: torch.utils.data.Dataset, file_index: int, full: dict[str, torch.Tensor], size: int
) -> tuple[torch.Tensor, torch.Tensor, set[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """Paste the tiles of one file back together (-1 where no tile fell).

    Returns the image, the mask and the set of (image shape, mask shape) of the tile samples.
    """
    image = torch.full_like(full["image"], -1)
    mask = torch.full_like(full["mask"], -1)
    shapes = set()
    for index, tile in enumerate(tiled.tiles):
        if tile.file_index != file_index:
            continue
        sample = tiled[index]
        shapes.add((tuple(sample["image"].shape), tuple(sample["mask"].shape)))
        rows, cols = slice(tile.row, tile.row + size), slice(tile.col, tile.col + size)
        image[:, rows, cols] = sample["image"]
        mask[rows, cols] = sample["mask"]
    return image, mask, shapes
