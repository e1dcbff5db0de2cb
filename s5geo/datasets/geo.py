"""Georeferenced training data: large GeoTIFF imagery with raster or vector labels (TorchGeo).

Combine an image dataset and a label dataset with ``&`` (TorchGeo's ``IntersectionDataset``)
and draw chips with a TorchGeo sampler::

    from torch.utils.data import DataLoader
    from torchgeo.datasets import stack_samples
    from torchgeo.samplers import RandomGeoSampler

    image = LandsatScene("../shared/data/nc-landsat")
    labels = RasterLabels("../shared/data/nc-landsat/strata.tif", classes=NC_LANDSAT_CLASSES)
    data = image & labels
    loader = DataLoader(data, sampler=RandomGeoSampler(data, size=64, length=100),
                        batch_size=8, collate_fn=stack_samples)

Image nodata pixels become ``nodata_fill`` (0); label nodata, "no label" values and (on request)
unknown values become 255. Label value ``k`` becomes class ``k - offset`` (``offset=1`` by default,
so 0 means "no label").
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import rasterio
import torch
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from torch import Tensor
from torchgeo.datasets import RasterDataset, VectorDataset
from torchgeo.datasets.errors import DatasetNotFoundError

from s5geo.datasets._base import IGNORE_INDEX, Transform, plot_segmentation_sample
from s5geo.errors import DatasetLayoutError, InvalidMaskError
from s5geo.metadata import default_colors

PathLike = str | os.PathLike[str]

#: The 7 land-cover classes of the GRASS North Carolina ``strata``/``landsat96`` labels (1..7).
NC_LANDSAT_CLASSES = (
    "developed",
    "agriculture",
    "herbaceous",
    "shrubland",
    "forest",
    "water",
    "sediment",
)
NC_LANDSAT_COLORS = (
    (230, 0, 0),
    (255, 211, 127),
    (211, 255, 190),
    (168, 112, 0),
    (38, 115, 0),
    (0, 112, 255),
    (204, 204, 204),
)

LANDSAT_LAYOUT = (
    "<root>/lsat7_<year>_<band>.tif, one single-band GeoTIFF per band (bands 10, 20, 30, 40, 50, 70)"
)


def _paths_list(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    return [paths] if isinstance(paths, str | os.PathLike) else list(paths)


def _file_nodata(path: str) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.nodata


def _nodata_mask(data: Tensor, nodata: float | None) -> Tensor:
    if nodata is None:
        return torch.zeros_like(data, dtype=torch.bool)
    if math.isnan(nodata):
        return torch.isnan(data)
    return data == nodata


def remap_labels(
    raw: Tensor,
    num_classes: int,
    *,
    offset: int = 1,
    ignore_values: Sequence[float] = (0,),
    invalid: Tensor | None = None,
    unknown: Literal["error", "ignore"] = "error",
    where: str = "labels",
) -> Tensor:
    """Turn raw label values into class indices: ``k -> k - offset``, everything else 255.

    Args:
        raw: label values (any dtype).
        num_classes: number of classes; values ``offset .. offset + num_classes - 1`` are classes.
        offset: value of class 0.
        ignore_values: values that mean "no label".
        invalid: boolean tensor of pixels to ignore regardless of value (nodata).
        unknown: a value that is neither a class, nodata nor in ``ignore_values`` raises
            :class:`InvalidMaskError` (``"error"``) or becomes 255 (``"ignore"``).
        where: what the labels came from, for error messages.

    Returns:
        int64 tensor of class indices, 255 = ignore.
    """
    values = raw.to(torch.float64)
    index = values - offset
    is_class = (index >= 0) & (index < num_classes) & (index == torch.round(index))
    skip = torch.zeros_like(is_class) if invalid is None else invalid.clone()
    for value in ignore_values:
        skip |= values == value
    bad = ~is_class & ~skip
    if unknown == "error" and bool(bad.any()):
        found = torch.unique(values[bad])[:5].tolist()
        raise InvalidMaskError(
            f"{where}: label value(s) {found} are neither a class "
            f"({offset}..{offset + num_classes - 1}), nodata nor a no-label value "
            f"{list(ignore_values)}"
        )
    out = torch.full(raw.shape, IGNORE_INDEX, dtype=torch.long)
    keep = is_class & ~skip
    out[keep] = index[keep].long()
    return out


class _PlotMixin:
    """``plot()`` of an image/mask chip with the class colours of the labels."""

    colors: Sequence[Sequence[int]] = NC_LANDSAT_COLORS

    def plot(self, sample: dict[str, Any], show_titles: bool = True, suptitle: str | None = None) -> Any:
        """Plot a sample's image (first three bands, stretched), mask and prediction if present."""
        return plot_segmentation_sample(sample, self.colors, show_titles, suptitle)


class LandsatScene(_PlotMixin, RasterDataset):
    """A Landsat scene stored as one single-band GeoTIFF per band (``lsat7_2000_10.tif`` ...).

    Subclass and change the class attributes for other sensors or file names: ``filename_glob``
    (``{}`` is the first requested band), ``filename_regex`` (groups ``band`` and optionally
    ``date``), ``all_bands``, ``rgb_bands``. Nodata pixels (each band file's own nodata value) are
    set to ``nodata_fill``.

    Reads use nearest-neighbour resampling by default, so chips hold the raw pixel values even when
    a query is not aligned with the pixel grid: an intersection with labels in a slightly different
    CRS (the nc-landsat labels are in EPSG:3358, the imagery in EPSG:32119) shifts the sampler's
    grid by a fraction of a pixel, and bilinear reads would then blend neighbouring pixels.
    """

    filename_glob = "lsat7_*_{}.tif"
    filename_regex = r"^lsat7_(?P<date>\d{4})_(?P<band>\d{2})\.tif$"
    date_format = "%Y"
    separate_files = True
    all_bands = ("10", "20", "30", "40", "50", "70")
    rgb_bands = ("30", "20", "10")

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        crs: Any = None,
        res: float | tuple[float, float] | None = None,
        bands: Sequence[str] | None = None,
        transforms: Transform | None = None,
        cache: bool = True,
        nodata_fill: float = 0.0,
        resampling: Resampling = Resampling.nearest,
    ) -> None:
        """Index the scene(s) found under ``paths``.

        Args:
            paths: folders to search, or band files.
            crs: CRS to warp to (default: that of the first file).
            res: resolution in CRS units (default: that of the first file).
            bands: bands to load, in order (default: all).
            transforms: function applied to each sample.
            cache: keep file handles open between samples.
            nodata_fill: value written into nodata pixels of the image.
            resampling: how reads that do not fall on the file's grid are resampled.

        Raises:
            DatasetLayoutError: if no scene or a band file of a scene is missing.
        """
        bands = tuple(bands or self.all_bands)
        unknown = set(bands) - set(self.all_bands)
        if unknown:
            raise ValueError(f"unknown band(s) {sorted(unknown)}; available: {self.all_bands}")
        self.filename_glob = type(self).filename_glob.format(bands[0])
        self._resampling = resampling
        try:
            super().__init__(paths, crs, res, bands, None, cache)
        except DatasetNotFoundError as error:
            raise DatasetLayoutError(
                f"{_paths_list(paths)}: no {self.filename_glob} file found. Expected layout: {LANDSAT_LAYOUT}"
            ) from error
        self.sample_transforms = transforms
        self.nodata_fill = nodata_fill
        self._nodata: dict[str, float | None] = {}
        for filepath in self.index.filepath:
            for band in self.bands:
                band_file = self._band_file(filepath, band)
                if not os.path.isfile(band_file):
                    raise DatasetLayoutError(
                        f"{band_file}: band {band} file missing. Expected layout: {LANDSAT_LAYOUT}"
                    )
                self._nodata.setdefault(band, _file_nodata(band_file))

    @property
    def resampling(self) -> Resampling:
        """Resampling of reads that are off the file's pixel grid (nearest by default)."""
        return self._resampling

    def _band_file(self, filepath: str, band: str) -> str:
        directory, name = os.path.split(filepath)
        match = re.match(self.filename_regex, name, re.VERBOSE)
        if match is None or "band" not in match.groupdict():
            return filepath
        start, end = match.span("band")
        return os.path.join(directory, name[:start] + band + name[end:])

    def __getitem__(self, query: Any) -> dict[str, Any]:
        """Return ``{"image": float32 C x H x W, "crs", "bounds"}`` for a spatial query."""
        sample = super().__getitem__(query)
        image = sample["image"]
        for channel, band in enumerate(self.bands):
            invalid = _nodata_mask(image[channel], self._nodata.get(band))
            image[channel][invalid] = self.nodata_fill
        if self.sample_transforms is not None:
            sample = self.sample_transforms(sample)
        return sample


class RasterLabels(_PlotMixin, RasterDataset):
    """A label raster (dense map or sparse labelled pixels) as a TorchGeo mask dataset.

    Value ``k`` becomes class ``k - offset``; ``ignore_values`` (default 0) and the file's nodata
    become 255. Read with nearest-neighbour resampling.
    """

    is_image = False
    filename_glob = "*.tif"

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        classes: Sequence[str] = NC_LANDSAT_CLASSES,
        *,
        colors: Sequence[Sequence[int]] | None = None,
        offset: int = 1,
        ignore_values: Sequence[float] = (0,),
        unknown: Literal["error", "ignore"] = "error",
        filename_glob: str | None = None,
        crs: Any = None,
        res: float | tuple[float, float] | None = None,
        transforms: Transform | None = None,
        cache: bool = True,
    ) -> None:
        """Index the label raster(s).

        Args:
            paths: label files, or folders searched with ``filename_glob``.
            classes: class names; class ``i`` is stored as value ``i + offset``.
            colors: colour per class (default: the North Carolina colours if 7 classes).
            offset: stored value of class 0.
            ignore_values: stored values that mean "no label".
            unknown: other values raise (``"error"``) or become 255 (``"ignore"``).
            filename_glob: file pattern inside folders (default ``*.tif``).
            crs: CRS to warp to (default: that of the first file).
            res: resolution in CRS units (default: that of the first file).
            transforms: function applied to each sample.
            cache: keep file handles open between samples.

        Raises:
            DatasetLayoutError: if no label file is found.
        """
        if filename_glob is not None:
            self.filename_glob = filename_glob
        try:
            super().__init__(paths, crs, res, None, None, cache)
        except DatasetNotFoundError as error:
            raise DatasetLayoutError(
                f"{_paths_list(paths)}: no label raster ({self.filename_glob}) found"
            ) from error
        self.classes = tuple(classes)
        self.colors = _label_colors(self.classes, colors)
        self.offset = offset
        self.ignore_values = tuple(ignore_values)
        self.unknown = unknown
        self.sample_transforms = transforms
        self._nodata = {fp: _file_nodata(fp) for fp in self.index.filepath}

    @property
    def dtype(self) -> torch.dtype:
        """Labels are read as float64 (exact for integers, keeps NaN nodata) and remapped."""
        return torch.float64

    @property
    def resampling(self) -> Resampling:
        """Nearest neighbour: class values must never be interpolated."""
        return Resampling.nearest

    def __getitem__(self, query: Any) -> dict[str, Any]:
        """Return ``{"mask": int64 H x W, "crs", "bounds"}`` for a spatial query."""
        sample = super().__getitem__(query)
        raw = sample["mask"]
        # rasterio.merge fills pixels outside every file with the first file's nodata.
        invalid = torch.zeros(raw.shape, dtype=torch.bool)
        for nodata in set(self._nodata.values()):
            invalid |= _nodata_mask(raw, nodata)
        sample["mask"] = remap_labels(
            raw,
            len(self.classes),
            offset=self.offset,
            ignore_values=self.ignore_values,
            invalid=invalid,
            unknown=self.unknown,
            where=f"{type(self).__name__}({', '.join(map(str, self.index.filepath))})",
        )
        if self.sample_transforms is not None:
            sample = self.sample_transforms(sample)
        return sample


def _label_colors(
    classes: Sequence[str], colors: Sequence[Sequence[int]] | None
) -> tuple[tuple[int, ...], ...]:
    if colors is not None:
        if len(colors) != len(classes):
            raise ValueError(f"got {len(colors)} colours for {len(classes)} classes")
        return tuple(tuple(int(v) for v in c) for c in colors)
    if tuple(classes) == NC_LANDSAT_CLASSES:
        return NC_LANDSAT_COLORS
    return default_colors(len(classes))


class VectorLabels(_PlotMixin, VectorDataset):
    """Training polygons (any vector format) rasterised to masks on the query grid.

    The attribute ``label_name`` holds either the stored class value (``k -> class k - offset``) or
    the class name (one of ``classes``). Pixels outside every polygon are 255 (no label).
    """

    filename_glob = "*.shp"

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        classes: Sequence[str] = NC_LANDSAT_CLASSES,
        *,
        label_name: str = "id",
        colors: Sequence[Sequence[int]] | None = None,
        offset: int = 1,
        unknown: Literal["error", "ignore"] = "error",
        filename_glob: str | None = None,
        crs: Any = None,
        res: float | tuple[float, float] = (0.0001, 0.0001),
        transforms: Transform | None = None,
        layer: str | int | None = None,
    ) -> None:
        """Index the vector file(s).

        Args:
            paths: vector files, or folders searched with ``filename_glob``.
            classes: class names.
            label_name: attribute field with the class value or class name.
            colors: colour per class (default: the North Carolina colours if 7 classes).
            offset: stored value of class 0 (value 0 is reserved for "no polygon").
            unknown: a value that is not a class raises (``"error"``) or becomes 255.
            filename_glob: file pattern inside folders (default ``*.shp``; files given directly
                are always taken).
            crs: CRS to work in (default: that of the first file).
            res: resolution (replaced by the image's when intersected with an image dataset).
            transforms: function applied to each sample.
            layer: layer of a multi-layer file (e.g. GeoPackage).

        Raises:
            DatasetLayoutError: if no vector file is found or ``label_name`` is not a field.
        """
        if offset < 1:
            raise ValueError("offset must be >= 1: rasterised 0 means 'outside every polygon'")
        listed = _paths_list(paths)
        if filename_glob is not None:
            self.filename_glob = filename_glob
        elif listed and all(os.path.isfile(p) for p in listed):
            self.filename_glob = "*"
        self.classes = tuple(classes)
        self.colors = _label_colors(self.classes, colors)
        self.offset = offset
        self.unknown = unknown
        try:
            super().__init__(paths, crs, res, None, label_name, "semantic_segmentation", layer)
        except DatasetNotFoundError as error:
            raise DatasetLayoutError(f"{listed}: no vector file ({self.filename_glob}) found") from error
        self.sample_transforms = transforms
        import pyogrio

        for filepath in self.index.filepath:
            fields = list(pyogrio.read_info(filepath, layer=layer)["fields"])
            if label_name not in fields:
                raise DatasetLayoutError(f"{filepath}: no attribute field {label_name!r} (fields: {fields})")

    def get_label(self, feature: pd.Series) -> int:
        """Rasterised value of a polygon: its class value, or ``offset + index`` of its name."""
        value = feature[self.label_name]
        if isinstance(value, str):
            if value in self.classes:
                return self.classes.index(value) + self.offset
            if self.unknown == "error":
                raise InvalidMaskError(
                    f"polygon label {value!r} (field {self.label_name!r}) is not one of {self.classes}"
                )
            return 0
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return 0
        return int(value)

    def __getitem__(self, query: Any) -> dict[str, Any]:
        """Return ``{"mask": int64 H x W, "crs", "bounds"}`` for a spatial query."""
        sample = super().__getitem__(query)
        sample["mask"] = remap_labels(
            sample["mask"],
            len(self.classes),
            offset=self.offset,
            ignore_values=(0,),
            unknown=self.unknown,
            where=f"{type(self).__name__}({', '.join(map(str, self.index.filepath))})",
        )
        if self.sample_transforms is not None:
            sample = self.sample_transforms(sample)
        return sample


def nc_landsat(
    root: PathLike, labels: Literal["strata", "pixels", "polygons"] = "strata"
) -> tuple[LandsatScene, RasterLabels | VectorLabels]:
    """The North Carolina Landsat-7 sample (``../shared/data/nc-landsat``): image and labels.

    Args:
        root: folder with ``lsat7_2000_*.tif``, ``strata.tif``,
            ``landsat96_labelled_pixels.tif`` and ``landsat96_polygons.shp``.
        labels: dense ``strata`` map, sparse labelled ``pixels``, or training ``polygons``.

    Returns:
        ``(image, labels)``; combine them with ``image & labels``.
    """
    root = Path(root)
    image = LandsatScene(root)
    files = {
        "strata": root / "strata.tif",
        "pixels": root / "landsat96_labelled_pixels.tif",
        "polygons": root / "landsat96_polygons.shp",
    }
    if labels not in files:
        raise ValueError(f"labels must be one of {sorted(files)}, not {labels!r}")
    if not files[labels].is_file():
        raise DatasetLayoutError(f"{files[labels]}: label file missing")
    if labels == "polygons":
        return image, VectorLabels(files[labels], label_name="id")
    return image, RasterLabels(files[labels])


__all__ = [
    "NC_LANDSAT_CLASSES",
    "NC_LANDSAT_COLORS",
    "LandsatScene",
    "RasterLabels",
    "VectorLabels",
    "nc_landsat",
    "remap_labels",
]
