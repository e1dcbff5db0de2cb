"""Names of the image bands a datamodule feeds the model, for :attr:`ModelMetadata.band_names`.

A dataset may say them (a ``band_names`` attribute); otherwise they are read from its first image
file: the band descriptions when every band read has one, else ``red``/``green``/``blue`` for the
colour bands of a photo format (JPEG, PNG, WebP), whose three bands are RGB by definition. A
GeoTIFF's RGB colour interpretation is not taken as a name: GDAL writes it for any 3-band byte
file, false-colour IR-R-G included.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from typing import Any

#: GDAL colour interpretations that name a band.
_COLOUR_NAMES = {"red": "red", "green": "green", "blue": "blue"}
#: GDAL drivers of formats whose colour bands are always red, green and blue.
_PHOTO_DRIVERS = {"JPEG", "PNG", "WEBP"}


@functools.lru_cache(maxsize=64)
def _file_band_names(path: str, bands: tuple[int, ...] | None) -> tuple[str, ...] | None:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # photos have no georeferencing
        try:
            with rasterio.open(path) as src:
                indexes = list(bands) if bands else list(range(1, src.count + 1))
                if any(not 1 <= b <= src.count for b in indexes):
                    return None
                descriptions = [src.descriptions[b - 1] for b in indexes]
                colours = [_COLOUR_NAMES.get(src.colorinterp[b - 1].name) for b in indexes]
                photo = src.driver in _PHOTO_DRIVERS
        except (RasterioError, OSError):
            return None
    if all(d and d.strip() for d in descriptions):
        return tuple(str(d).strip() for d in descriptions)
    if photo and all(colours):
        return tuple(str(c) for c in colours)
    return None


def raster_band_names(path: str | os.PathLike[str], bands: Sequence[int] | None = None) -> list[str] | None:
    """Names of ``bands`` (1-based; None: all) of a raster file, None if some band has none.

    Band descriptions when every band has one, otherwise ``red``/``green``/``blue`` for the colour
    bands of a JPEG, PNG or WebP photo.
    """
    found = _file_band_names(os.fspath(path), tuple(int(b) for b in bands) if bands else None)
    return list(found) if found else None


def _first_image(dataset: Any) -> tuple[str, Sequence[int] | None] | None:
    """Path of a dataset's first image file and the bands it reads, if the dataset lists files."""
    files = getattr(dataset, "files", None)
    if isinstance(files, list) and files and isinstance(files[0], dict) and files[0].get("image"):
        return os.fspath(files[0]["image"]), getattr(dataset, "image_bands", None)
    index = getattr(dataset, "index", None)
    if getattr(dataset, "is_image", False) and not getattr(dataset, "separate_files", True):
        # A TorchGeo RasterDataset: its GeoDataFrame index lists the files.
        try:
            path = index.filepath.iloc[0]  # type: ignore[union-attr]
        except (AttributeError, IndexError):
            return None
        return os.fspath(path), getattr(dataset, "band_indexes", None)
    return None


def dataset_band_names(dataset: Any, depth: int = 0) -> list[str] | None:
    """Band names of a dataset's images, looking through ``Subset``/``ConcatDataset``/chip wrappers.

    Returns:
        The dataset's ``band_names`` attribute, else the names read from its first image file
        (:func:`raster_band_names`), else None.
    """
    if dataset is None or depth > 8:
        return None
    names = getattr(dataset, "band_names", None)
    if isinstance(names, (list, tuple)) and names:
        return [str(name) for name in names]
    first = _first_image(dataset)
    if first is not None:
        return raster_band_names(*first)
    # ConcatDataset parts share their bands; of TorchGeo's ``image & labels`` only one is an image.
    inner = getattr(dataset, "datasets", None)
    for part in inner if isinstance(inner, (list, tuple)) else [getattr(dataset, "dataset", None)]:
        found = dataset_band_names(part, depth + 1)
        if found:
            return found
    return None
