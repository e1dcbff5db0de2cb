"""Read image files and encoded image bytes as ``C x H x W`` arrays: one decoder per format, everywhere.

JPEG is decoded with Pillow (libjpeg-turbo): about three times as fast as GDAL's JPEG driver here, and the
decoder of the S5 reference code, whose images are opened with Pillow. JPEG decoders differ (GDAL's
and Pillow's by up to tens of grey levels at sharp colour edges), so datasets, shards, the corpus
builder and pseudo-labelling all decode it the same way. Everything else (PNG, GeoTIFF, JPEG
2000...) is read with GDAL through rasterio: its PNG decoder is faster than Pillow's, and it keeps
16-bit colour PNGs, which Pillow reduces to 8 bits.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from s5geo.errors import S5GeoError

if TYPE_CHECKING:
    from rasterio.windows import Window

#: File suffixes decoded as JPEG.
JPEG_SUFFIXES = (".jpg", ".jpeg")
_JPEG_MAGIC = b"\xff\xd8\xff"


def read_image_file(
    path: str | os.PathLike[str], bands: Sequence[int] | None = None, window: Window | None = None
) -> np.ndarray:
    """Read an image file (JPEG or anything GDAL opens) as a ``C x H x W`` array of its own data type.

    Args:
        path: the file.
        bands: 1-based bands to read, in this order (default: all).
        window: the part to read (default: all). A JPEG is decoded whole, then cut; the last one
            decoded is kept for the next window.

    Raises:
        S5GeoError: the file cannot be read, or lacks a band; the message names the file.
    """
    if Path(path).suffix.lower() in JPEG_SUFFIXES:
        if window is None:
            return _select(_decode_jpeg(path, path), bands, path)
        stat = os.stat(path)
        whole = _last_jpeg(os.fspath(path), stat.st_mtime_ns, stat.st_size)
        (r0, r1), (c0, c1) = window.toranges()
        return _select(whole[:, int(r0) : int(r1), int(c0) : int(c1)], bands, path).copy()
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                _check_bands(src.count, bands, path)
                return src.read(list(bands) if bands is not None else None, window=window)
    except RasterioError as error:
        raise S5GeoError(f"{path}: cannot read raster ({_first_line(error)})") from error


def decode_image_bytes(data: bytes, name: str = "image") -> np.ndarray:
    """Decode image bytes (JPEG, PNG, TIFF...) as a ``C x H x W`` array, as :func:`read_image_file` does.

    Raises:
        S5GeoError: the bytes are no image; the message names ``name``.
    """
    if data[:3] == _JPEG_MAGIC:
        return _decode_jpeg(data, name)
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.io import MemoryFile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with MemoryFile(data) as memory, memory.open() as src:
                return src.read()
    except RasterioError as error:
        raise S5GeoError(f"{name}: cannot decode the stored image ({_first_line(error)})") from error


@functools.lru_cache(maxsize=1)
def _last_jpeg(path: str, mtime_ns: int, size: int) -> np.ndarray:
    """The last JPEG decoded for a window: the next windows of a file in a row cost no decode."""
    return _decode_jpeg(path, path)


def _decode_jpeg(source: str | os.PathLike[str] | bytes, name: object) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            # Grey stays one band; CMYK and other rare modes become RGB, as Pillow users do.
            array = np.asarray(image if image.mode in ("L", "RGB") else image.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise S5GeoError(f"{name}: cannot read JPEG ({_first_line(error)})") from error
    return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)


def _select(array: np.ndarray, bands: Sequence[int] | None, path: object) -> np.ndarray:
    if bands is None:
        return array
    _check_bands(len(array), bands, path)
    return array[[b - 1 for b in bands]]


def _check_bands(count: int, bands: Sequence[int] | None, path: object) -> None:
    if bands is not None and not all(1 <= b <= count for b in bands):
        raise S5GeoError(f"{path}: has {count} band(s), cannot read bands {list(bands)}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
