"""Prediction over georeferenced rasters of any size (``s5geo predict --config ...``).

:class:`GeoPredictionDataModule` cuts a TorchGeo ``GeoDataset`` (any rasterio-readable files, or any
``RasterDataset``) into a grid of windows and yields batches that keep their georeferencing
(``crs``, ``bounds``) for :class:`s5geo.inference.writer.GeoTiffPredictionWriter`.

The grid is the one ``s5geo segment`` uses (:class:`s5geo.inference.tiling.WindowGrid`): windows start
every ``window_size - overlap`` pixels from the top-left corner and the last row/column is moved back
to touch the raster edge, so every pixel is covered without padding. (TorchGeo 0.8's
``GridGeoSampler`` instead starts at the bottom-left, lets the last chip run past the top/right edge,
where it reads fill values, and skips rasters smaller than a chip.) Each sample also carries
``keep``: the rows/columns of the window whose nearest window centre is its own, so the written tiles
never overlap and the mosaic equals ``s5geo segment --blend none`` on the same grid.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from shapely.geometry import box
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchgeo.datasets import GeoDataset, RasterDataset, stack_samples

from s5geo.datamodules._band_names import dataset_band_names
from s5geo.datamodules.base import instantiate_dataset, scale_image
from s5geo.errors import S5GeoError
from s5geo.inference.tiling import WindowGrid

PathLike = str | os.PathLike[str]


class RasterFiles(RasterDataset):
    """Any raster files rasterio opens (GeoTIFF, COG, VRT, JPEG2000, ...), as a TorchGeo dataset.

    Files with different CRSs or resolutions are warped to those of the first file (TorchGeo).
    Each sample gets ``valid`` (``H x W`` bool): False where a selected band equals the file's nodata
    value (or is not finite), or outside every file.

    Args:
        paths: files and/or folders (searched recursively for ``filename_glob``).
        bands: 1-based band indices to read, in model order (default: all bands of the first file).
        crs: CRS to warp to (default: the first file's).
        res: resolution in CRS units (default: the first file's).
        filename_glob: pattern of the files to use inside folders.
        cache: keep file handles open between reads.
    """

    is_image = True

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike],
        bands: Sequence[int] | None = None,
        crs: Any = None,
        res: float | tuple[float, float] | None = None,
        filename_glob: str = "*",
        cache: bool = True,
    ) -> None:
        self.filename_glob = filename_glob
        try:
            super().__init__(paths, crs=crs, res=res, cache=cache)
        except Exception as error:  # TorchGeo raises DatasetNotFoundError, rasterio its own errors
            raise S5GeoError(f"{paths}: no readable raster found ({error})") from error
        import rasterio

        with rasterio.open(self.index.filepath.iloc[0]) as src:
            count, nodata = src.count, src.nodata
        self.band_indexes = [int(b) for b in bands] if bands else list(range(1, count + 1))
        bad = [b for b in self.band_indexes if not 1 <= b <= count]
        if bad:
            raise S5GeoError(f"{self.index.filepath.iloc[0]}: has {count} bands; cannot read {bad}")
        self.nodata = nodata

    def _merge_files(
        self, filepaths: Sequence[str], query: Any, band_indexes: Sequence[int] | None = None
    ) -> Tensor:
        import rasterio.merge

        # Merge as float32 with NaN fill so nodata and pixels outside every file stay recognisable.
        handles = [
            self._cached_load_warp_file(fp) if self.cache else self._load_warp_file(fp) for fp in filepaths
        ]
        x, y, _ = self._disambiguate_slice(query)
        dest, _ = rasterio.merge.merge(
            handles,
            (x.start, y.start, x.stop, y.stop),
            (x.step, y.step),
            indexes=band_indexes,
            resampling=self.resampling,
            nodata=np.nan,
            dtype="float32",
            masked=False,
        )
        return torch.from_numpy(np.ascontiguousarray(dest))

    def __getitem__(self, query: Any) -> dict[str, Any]:
        """Return ``{"image": float32 C x H x W, "valid": H x W, "crs", "bounds"}``; invalid pixels are 0."""
        sample = super().__getitem__(query)
        image = sample["image"].float()
        invalid = ~torch.isfinite(image)
        if self.nodata is not None and math.isfinite(self.nodata):
            invalid |= image == float(self.nodata)
        invalid = invalid.any(0)
        sample["image"] = image.masked_fill(invalid.unsqueeze(0), 0.0)
        sample["valid"] = ~invalid
        return sample


class GridWindows(Dataset):
    """The windows of a :class:`WindowGrid` over a ``GeoDataset``'s bounds, as an index-based dataset.

    Windows that touch no file are skipped. Samples are the dataset's at the window's query plus
    ``keep`` (int64 ``[top, bottom, left, right]``: the window pixels this window owns).

    Args:
        dataset: any TorchGeo ``GeoDataset`` whose samples have an ``image``.
        window_size: window side in pixels.
        overlap: pixels shared by neighbouring windows (``0 <= overlap < window_size``).
    """

    def __init__(self, dataset: GeoDataset, window_size: int, overlap: int = 0) -> None:
        if window_size < 1:
            raise S5GeoError(f"window_size must be positive, got {window_size}")
        if not 0 <= overlap < window_size:
            raise S5GeoError(f"overlap must be in [0, window_size={window_size}), got {overlap}")
        self.dataset = dataset
        self.window_size = int(window_size)
        self.overlap = int(overlap)
        x, y, t = dataset.bounds
        self.bounds = dataset.bounds
        self.res = dataset.res
        self.crs = dataset.crs
        xres, yres = dataset.res
        self.width = max(1, round((x.stop - x.start) / xres))
        self.height = max(1, round((y.stop - y.start) / yres))
        grid = WindowGrid(self.height, self.width, self.window_size, self.overlap / self.window_size)
        footprints = dataset.index.geometry
        size = self.window_size
        self.windows: list[tuple[tuple[slice, slice, slice], tuple[int, int, int, int]]] = []
        for win in grid:
            # Full-size windows even on rasters smaller than the window, so batches stack.
            minx = x.start + win.col * xres
            maxy = y.stop - win.row * yres
            query = (slice(minx, minx + size * xres), slice(maxy - size * yres, maxy), slice(t.start, t.stop))
            shape = box(minx, maxy - size * yres, minx + size * xres, maxy)
            if not footprints.intersects(shape).any():
                continue
            rows, cols = grid.row_owned[win.i], grid.col_owned[win.j]
            keep = (rows[0] - win.row, rows[1] - win.row, cols[0] - win.col, cols[1] - win.col)
            self.windows.append((query, keep))
        if not self.windows:
            raise S5GeoError(f"{type(dataset).__name__}: no window of the grid touches the data")

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        query, keep = self.windows[index]
        sample = dict(self.dataset[query])
        image = sample["image"]
        sample["image"] = image.float() if not image.is_floating_point() else image
        sample["keep"] = torch.tensor(keep, dtype=torch.int64)
        return sample


def collate_geo(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors of georeferenced samples; ``crs`` and ``bounds`` stay lists, one per sample."""
    return stack_samples(samples)


class GeoPredictionDataModule(LightningDataModule):
    """Windows of georeferenced rasters for ``trainer.predict`` (``s5geo predict``).

    Give either ``paths`` (files or folders, read with :class:`RasterFiles`) or ``dataset`` (a
    TorchGeo ``GeoDataset`` instance, class, or ``{"class_path", "init_args"}``; ``paths`` is passed
    to it when its arguments have none). Batches hold ``image`` (scaled to [0, 1] on the device),
    ``crs``, ``bounds``, ``keep`` and, for :class:`RasterFiles`, ``valid``. Under DDP, Lightning splits
    the windows between ranks (no window twice).

    Args:
        paths: raster file(s) or folder(s).
        dataset: a ``GeoDataset`` replacing ``paths`` (or built with ``paths``).
        window_size: window side in pixels.
        overlap: pixels shared by neighbouring windows.
        batch_size: windows per batch.
        num_workers: loader workers.
        scale: divisor mapping raw values to [0, 1] (scalar or one per band).
        bands: 1-based bands of ``paths`` files, in model order (default: all).
        filename_glob: pattern of the files to use inside ``paths`` folders.
        res: resolution to read at (default: the first file's).
        classes: class names (for the writer when the checkpoint has none).
        colors: one ``(r, g, b)`` per class.
    """

    def __init__(
        self,
        paths: str | list[str] | None = None,
        dataset: GeoDataset | dict[str, Any] | None = None,
        window_size: int = 512,
        overlap: int = 64,
        batch_size: int = 4,
        num_workers: int = 0,
        scale: float | list[float] = 255.0,
        bands: list[int] | None = None,
        filename_glob: str = "*",
        res: float | None = None,
        classes: list[str] | None = None,
        colors: list[tuple[int, int, int]] | None = None,
    ) -> None:
        super().__init__()
        if paths is None and dataset is None:
            raise S5GeoError("GeoPredictionDataModule needs paths= or dataset=")
        self.paths = paths
        self.dataset_spec = dataset
        self.window_size = int(window_size)
        self.overlap = int(overlap)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.scale = scale
        self.bands = list(bands) if bands else None
        self.filename_glob = filename_glob
        self.res = res
        self._classes = list(classes) if classes else []
        self._colors = [tuple(int(v) for v in c) for c in colors] if colors else []
        self.predict_dataset: GridWindows | None = None

    @property
    def classes(self) -> list[str]:
        """Class names given to the datamodule (may be empty)."""
        return list(self._classes)

    @property
    def colors(self) -> list[tuple[int, int, int]]:
        """Class colours given to the datamodule (may be empty)."""
        return list(self._colors)

    @property
    def band_names(self) -> list[str] | None:
        """Names of the bands read, None before ``setup`` or when unnamed.

        The first raster's band descriptions when every band has one, else its RGB colour
        interpretation (see :mod:`s5geo.datamodules._band_names`).
        """
        return dataset_band_names(self.predict_dataset)

    def build_dataset(self) -> GeoDataset:
        """Return the ``GeoDataset`` to predict over."""
        spec = self.dataset_spec
        if spec is None:
            return RasterFiles(self.paths, bands=self.bands, res=self.res, filename_glob=self.filename_glob)
        if isinstance(spec, type):
            spec = {"class_path": f"{spec.__module__}.{spec.__qualname__}"}
        if isinstance(spec, Mapping):
            init_args = dict(spec.get("init_args") or {})
            if self.paths is not None:
                init_args.setdefault("paths", self.paths)
            spec = {"class_path": spec.get("class_path"), "init_args": init_args}
        dataset = instantiate_dataset(spec)
        if not isinstance(dataset, GeoDataset):
            raise S5GeoError(f"dataset must be a TorchGeo GeoDataset, got {type(dataset).__name__}")
        return dataset

    def setup(self, stage: str) -> None:
        """Build the window dataset (for ``predict``)."""
        if stage == "predict" and self.predict_dataset is None:
            self.predict_dataset = GridWindows(self.build_dataset(), self.window_size, self.overlap)

    def predict_dataloader(self) -> DataLoader:
        """Windows in row-major order; Lightning shards them between DDP ranks."""
        if self.predict_dataset is None:
            self.setup("predict")
        return DataLoader(
            self.predict_dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_geo,
            persistent_workers=self.num_workers > 0,
        )

    def scale_image(self, image: Tensor) -> Tensor:
        """Divide raw values by ``scale`` (scalar or one value per band); the result is float32."""
        return scale_image(image.float(), self.scale)

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Scale images to [0, 1] on the device."""
        batch = dict(batch)
        batch["image"] = self.scale_image(batch["image"])
        return batch


__all__ = ["GeoPredictionDataModule", "GridWindows", "RasterFiles", "collate_geo"]
