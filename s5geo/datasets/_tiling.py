"""Fixed window grids over large images, and a dataset base that reads one window per sample.

Benchmarks with big tiles (ISPRS Vaihingen/Potsdam, drone images of 4000 x 3000 px) are trained on
fixed-size crops and evaluated on whole tiles. :class:`TiledSegmentationDataset` serves both: with
``tile_size=None`` a sample is a whole file; with ``tile_size=N`` it is one ``N x N`` window of a
deterministic grid over every file, read with a window (:func:`s5geo.imagefile.read_image_file`).

The grid steps by ``stride`` from the top-left corner; the last window of each row and column is
moved back so that it ends exactly on the image border. Every pixel is covered, no window reaches
outside the image and no strip narrower than a tile is dropped (a common fault of grid samplers). An
image smaller than the tile gets a single window, padded to ``N x N`` (image 0, mask 255 = ignore)
so that batches collate.

Cost: a window of a tiled GeoTIFF costs only its blocks (4-7 ms for 512 px of a 4000 x 3000 image
here, against 170 ms for the whole file). PNG has no blocks: GDAL decodes every row down to the
window's last one. A JPEG is decoded whole, by Pillow as everywhere in s5geo, and the last one is
kept: for a 4000 x 3000 JPEG a window costs 117 ms when it is the first of its file and about 4 ms
when the previous window came from the same file (GDAL's partial decode: 21 ms at the top, 111 ms at
the bottom). Shuffled training windows rarely follow one another within a file, so for drone JPEGs a
tiled GeoTIFF copy is still much cheaper to tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from rasterio.windows import Window

from s5geo.datasets._base import (
    IGNORE_INDEX,
    Sample,
    SegmentationDataset,
    Transform,
    check_split,
    layout_error,
    raster_size,
    read_image,
    read_raster,
    renamed_argument,
    size_mismatch,
)
from s5geo.errors import DatasetLayoutError, S5GeoError
from s5geo.imagefile import read_image_file
from s5geo.inference.tiling import window_starts

#: Start offsets of the windows along one axis (see :func:`s5geo.inference.tiling.window_starts`).
grid_starts = window_starts


@dataclass(frozen=True)
class Tile:
    """One window of the grid: which file, and where in it (pixels, rows from the top)."""

    file_index: int
    row: int
    col: int
    height: int
    width: int

    @property
    def window(self) -> Window:
        """The rasterio window of this tile."""
        return Window(self.col, self.row, self.width, self.height)


def tile_grid(
    height: int, width: int, tile_size: int, stride: int | None = None, file_index: int = 0
) -> list[Tile]:
    """All windows of a ``height x width`` image, row by row (see the module docstring)."""
    stride = tile_size if stride is None else stride
    rows = window_starts(height, tile_size, stride)
    cols = window_starts(width, tile_size, stride)
    return [
        Tile(file_index, row, col, min(tile_size, height), min(tile_size, width))
        for row in rows
        for col in cols
    ]


def read_window(path: str | Path, window: Window, bands: Sequence[int] | None = None) -> np.ndarray:
    """Read one window of a raster as a ``C x h x w`` array (only that window, but for JPEG)."""
    return read_image_file(path, bands, window)


class TiledSegmentationDataset(SegmentationDataset):
    """A :class:`SegmentationDataset` with the uniform constructor, serving whole files or fixed windows.

    Subclasses set ``classes``, ``colors``, ``splits`` and ``default_root``, implement
    :meth:`_find_files` (the ``{"image": path, "mask": path | None}`` records of ``self.split``) and
    :meth:`_mask_from_array`, which turns raw mask pixels (a ``C x h x w`` array, whole file or
    window) into class indices. ``image_bands`` (1-based) selects image bands. A subclass with
    arguments of its own stores them, then calls ``super().__init__``.
    """

    #: Folder read when no ``root`` is given.
    default_root: ClassVar[str] = "data"
    #: Accepted values of ``split``.
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    #: The folder layout, for error messages.
    expected_layout: ClassVar[str] = ""
    #: 1-based image bands to read (None: all).
    image_bands: Sequence[int] | None = None

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        transforms: Transform | None = None,
        tile_size: int | None = None,
        stride: int | None = None,
        unknown: Literal["error", "ignore"] = "error",
        validate: bool = False,
        *,
        unknown_colors: Literal["error", "ignore"] | None = None,
    ) -> None:
        """Open the dataset.

        Args:
            root: the dataset folder (default :attr:`default_root`).
            split: one of :attr:`splits`.
            transforms: function applied to each sample dict.
            tile_size: serve ``tile_size`` px windows instead of whole files.
            stride: step of the window grid (default ``tile_size``: no overlap).
            unknown: a mask value or colour that is no class: ``"error"`` raises
                :class:`~s5geo.errors.InvalidMaskError` when it is read, ``"ignore"`` maps it to 255.
            validate: check every mask's values and size now (with a progress bar), see
                :meth:`validate`.
            unknown_colors: former name of ``unknown`` (deprecated).

        Raises:
            SplitError: if ``split`` is not one of :attr:`splits`.
            DatasetLayoutError: if folders or files are missing.
            InvalidMaskError: with ``validate=True``, naming the first bad mask.
        """
        super().__init__(transforms)
        if tile_size is not None:
            if tile_size <= 0:
                raise ValueError(f"tile_size must be positive, got {tile_size}")
            stride = tile_size if stride is None else stride
            window_starts(tile_size, tile_size, stride)  # validates the stride
        elif stride is not None:
            raise ValueError("stride is only used with tile_size")
        if unknown_colors is not None:
            given = {"unknown_colors": unknown_colors}
            unknown = renamed_argument(given, "unknown_colors", "unknown", unknown)
        check_split(type(self).__name__, split, self.splits)
        if unknown not in ("error", "ignore"):
            raise S5GeoError(f"unknown must be 'error' or 'ignore', got {unknown!r}")
        self.tile_size = tile_size
        self.stride = stride
        self.tiles: list[Tile] = []
        self.root = Path(self.default_root if root is None else root)
        self.split = split
        self.unknown = unknown
        self.files = self._find_files()
        self._build_tiles()
        if validate:
            self.validate(progress=True)

    def _find_files(self) -> list[dict[str, Path | None]]:
        """The image/mask records of ``self.split`` under ``self.root``, in a fixed order."""
        raise NotImplementedError

    def _split_parts(self) -> tuple[str, ...]:
        """The splits that make up ``self.split``: ``"trainval"`` is train and val."""
        return ("train", "val") if self.split == "trainval" else (self.split,)

    def _layout_error(self, problem: str) -> DatasetLayoutError:
        """A :class:`~s5geo.errors.DatasetLayoutError` about ``root`` showing :attr:`expected_layout`."""
        return layout_error(self.root, problem, self.expected_layout)

    def _build_tiles(self) -> None:
        """Lay the window grid over every file (headers only); check image and mask sizes agree."""
        self.tiles = []
        if self.tile_size is None:
            return
        for index, record in enumerate(self.files):
            size = raster_size(record["image"])  # type: ignore[arg-type]
            if record.get("mask") is not None:
                mask_size = raster_size(record["mask"])  # type: ignore[arg-type]
                if mask_size != size:
                    raise size_mismatch(record["image"], size, record["mask"], mask_size)  # type: ignore[arg-type]
            self.tiles.extend(tile_grid(*size, self.tile_size, self.stride, index))

    def __len__(self) -> int:
        return len(self.files) if self.tile_size is None else len(self.tiles)

    def __getitem__(self, index: int) -> Sample:
        if self.tile_size is None:
            return super().__getitem__(index)
        tile = self.tiles[index]
        record = self.files[tile.file_index]
        image = read_window(record["image"], tile.window, self.image_bands)  # type: ignore[arg-type]
        image = self._pad(image.astype(np.float32), 0)
        sample: Sample = {"image": torch.from_numpy(image)}
        if record.get("mask") is not None:
            raw = read_window(record["mask"], tile.window)  # type: ignore[arg-type]
            mask = self._mask_from_array(raw, record["mask"])  # type: ignore[arg-type]
            mask = self._pad(mask[None], IGNORE_INDEX)[0]
            sample["mask"] = torch.from_numpy(mask.astype(np.int64))
        return self._finish(sample)

    def _pad(self, array: np.ndarray, value: int) -> np.ndarray:
        """Pad a ``C x h x w`` window at the bottom/right to ``tile_size`` (small images)."""
        assert self.tile_size is not None
        pad_h = self.tile_size - array.shape[-2]
        pad_w = self.tile_size - array.shape[-1]
        if pad_h <= 0 and pad_w <= 0:
            return array
        return np.pad(array, ((0, 0), (0, max(pad_h, 0)), (0, max(pad_w, 0))), constant_values=value)

    def _load_image(self, path: Path) -> torch.Tensor:
        return read_image(path, self.image_bands)

    def _load_mask(self, path: Path) -> np.ndarray:
        return self._mask_from_array(read_raster(path), path)

    def _mask_from_array(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Turn raw mask pixels (``C x h x w``) into ``h x w`` class indices (255 = ignore)."""
        raise NotImplementedError
