"""Checks the Processing dialog runs before Run, worded for the analyst (no GUI code here).

The model check reads the s5geo metadata straight from the ONNX file's protobuf framing, so it is
fast, needs no onnxruntime and tells a non-model file apart before any session is created.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..runtime.shared import METADATA_KEY, ModelMetadata

#: Top-level fields of an ONNX ModelProto (onnx.proto field numbers).
_MODEL_FIELDS = {1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25}
_METADATA_PROPS = 14
_GRAPH = 7

#: Metadata keys that may hold the model's band names (list of strings, model input order).
BAND_NAME_KEYS = ("band_names", "band_descriptions")

#: A class map without class table holding more distinct values than this looks like an image.
MAX_UNLABELLED_CLASSES = 100

NOT_A_MODEL = "this file is not an s5geo ONNX model"


class ModelFileError(ValueError):
    """The model file cannot be used; the message is meant for the analyst."""


def _varint(data: Any) -> int:
    """Read one protobuf varint from a binary file object."""
    result = shift = 0
    while True:
        byte = data.read(1)
        if not byte:
            raise ModelFileError(NOT_A_MODEL)
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ModelFileError(NOT_A_MODEL)


def _entries(payload: bytes) -> tuple[str, str]:
    """Decode one ``StringStringEntryProto`` (key = 1, value = 2)."""
    import io

    stream = io.BytesIO(payload)
    fields = {1: "", 2: ""}
    while stream.tell() < len(payload):
        tag = _varint(stream)
        if tag & 7 != 2:
            raise ModelFileError(NOT_A_MODEL)
        size = _varint(stream)
        fields[tag >> 3] = stream.read(size).decode("utf-8", "replace")
    return fields[1], fields[2]


def onnx_metadata_props(path: str | Path) -> dict[str, str]:
    """Return the ``metadata_props`` of an ONNX file without loading its graph.

    Raises:
        ModelFileError: the file is not an ONNX model.
    """
    path = Path(path)
    size = path.stat().st_size
    props: dict[str, str] = {}
    seen: set[int] = set()
    with path.open("rb") as data:
        while data.tell() < size:
            tag = _varint(data)
            field, wire = tag >> 3, tag & 7
            if field not in _MODEL_FIELDS:
                raise ModelFileError(NOT_A_MODEL)
            seen.add(field)
            if wire == 0:
                _varint(data)
            elif wire == 2:
                length = _varint(data)
                if data.tell() + length > size:
                    raise ModelFileError(NOT_A_MODEL)
                if field == _METADATA_PROPS:
                    key, value = _entries(data.read(length))
                    props[key] = value
                else:
                    data.seek(length, os.SEEK_CUR)
            elif wire in (1, 5):
                data.seek(8 if wire == 1 else 4, os.SEEK_CUR)
            else:
                raise ModelFileError(NOT_A_MODEL)
    if _GRAPH not in seen:
        raise ModelFileError(NOT_A_MODEL)
    return props


_CACHE: dict[tuple[str, int, int], tuple[ModelMetadata, dict[str, Any]]] = {}


def model_metadata(path: str | Path) -> tuple[ModelMetadata, dict[str, Any]]:
    """Return the s5geo metadata of an ONNX model and its raw JSON (for optional keys).

    Raises:
        ModelFileError: missing file, not ONNX, or ONNX without s5geo metadata; worded for the user.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"the model file {path} does not exist")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        try:
            props = onnx_metadata_props(path)
        except ModelFileError as error:
            raise ModelFileError(f"{path.name}: {error}") from error
        except OSError as error:
            raise ModelFileError(f"{path.name} cannot be read: {error.strerror}") from error
        if METADATA_KEY not in props:
            raise ModelFileError(
                f"{path.name}: {NOT_A_MODEL} (it is an ONNX file without s5geo's class names "
                "and band settings; export the model with s5geo export)"
            )
        try:
            raw = json.loads(props[METADATA_KEY])
            metadata = ModelMetadata.from_dict(raw)
        except (ValueError, TypeError) as error:
            raise ModelFileError(
                f"{path.name}: the s5geo settings stored in the model are damaged ({error})"
            ) from error
        _CACHE.clear()
        _CACHE[key] = (metadata, raw)
    return _CACHE[key]


def parse_band_order(value: Any) -> list[int] | None:
    """Return the band order typed by the user (``"3,2,1"``, ``"3 2 1"``, ``[3, 2, 1]``) or None.

    Raises:
        ValueError: anything but whole band numbers from 1 up.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        items = [str(item).strip() for item in value]
    else:
        text = str(value).strip()
        if not text:
            return None
        items = [item for item in re.split(r"[\s,;]+", text) if item]
    if not items:
        return None
    if not all(item.isdigit() and int(item) >= 1 for item in items):
        raise ValueError(
            f"the band order '{value if isinstance(value, str) else ','.join(items)}' is not a "
            "list of band numbers; write the layer's band numbers in the model's order, "
            "separated by commas, e.g. 3,2,1"
        )
    return [int(item) for item in items]


def model_band_names(raw: dict[str, Any]) -> list[str] | None:
    """Return the model's band names (model input order) from its metadata JSON, None if it has none.

    Matching them to a layer's band descriptions is the runtime's ``bands.bands_from_names``, the
    same as ``s5geo segment``'s.

    Args:
        raw: the model's metadata JSON (band names under one of :data:`BAND_NAME_KEYS`).
    """
    names = next((raw[key] for key in BAND_NAME_KEYS if isinstance(raw.get(key), list)), None)
    return [str(name) for name in names] if names else None


def _numbers(bands: Sequence[int]) -> str:
    return ", ".join(str(band) for band in bands)


def band_problem(
    layer: str, band_count: int, model_bands: Sequence[int], chosen: Sequence[int] | None
) -> str | None:
    """Return why the layer's bands cannot feed the model, in plain words (None: they can).

    Args:
        layer: the layer's name.
        band_count: how many bands the layer has.
        model_bands: the bands stored in the model (their count is the model's input count).
        chosen: the band order the user typed, or None for the model's.
    """
    wanted = len(model_bands)
    if chosen is None:
        missing = [band for band in model_bands if band > band_count]
        if not missing:
            return None
        return (
            f"The model reads {wanted} bands (bands {_numbers(model_bands)} of the imagery it was "
            f"trained on) but the layer '{layer}' has {band_count}. Choose a raster with these "
            f"bands, or type in Band order the layer's {wanted} bands that match the model's "
            "inputs, in the model's order."
        )
    if len(chosen) != wanted:
        return (
            f"The band order lists {len(chosen)} band(s) ({_numbers(chosen)}) but the model reads "
            f"{wanted}. Type one layer band per model input, in the model's order "
            f"(the model was trained on bands {_numbers(model_bands)})."
        )
    missing = [band for band in chosen if band > band_count]
    if missing:
        return (
            f"The band order asks for band {_numbers(missing)} but the layer '{layer}' has only "
            f"{band_count} band(s)."
        )
    return None


def class_map_problem(path: str, layer: str, paletted: bool = False) -> str | None:
    """Return why a raster is not a land-cover map Vectorize can use (None: it is one).

    Args:
        path: the raster's source (GDAL name).
        layer: the layer's name, for the message.
        paletted: the layer is styled with paletted/unique values in QGIS (a class table).
    """
    from osgeo import gdal

    dataset = gdal.OpenEx(path, gdal.OF_RASTER)
    if dataset is None:  # not a GDAL raster (e.g. a web service): let the run report it
        return None
    advice = (
        "Vectorize needs a land-cover map: one band of class numbers, such as the output of "
        "Segment raster (land cover)."
    )
    if dataset.RasterCount > 1:
        return (
            f"'{layer}' has {dataset.RasterCount} bands, so it looks like an image, not a "
            f"land-cover map. {advice}"
        )
    band = dataset.GetRasterBand(1)
    type_name = gdal.GetDataTypeName(band.DataType)
    if type_name.startswith(("Float", "CFloat", "CInt")):
        return (
            f"'{layer}' holds decimal numbers ({type_name}), not class numbers. {advice} "
            "A confidence raster cannot be vectorized."
        )
    if paletted or _has_class_table(dataset, band):
        return None
    try:
        distinct = _distinct_values(band)
    except RuntimeError:  # e.g. no valid pixel: let the run report it
        return None
    if distinct > MAX_UNLABELLED_CLASSES:
        return (
            f"'{layer}' has no class table (no colours or class names) and more than "
            f"{MAX_UNLABELLED_CLASSES} different values, so it looks like an image, not a "
            f"land-cover map. {advice} If it is a class map, style it as Paletted/Unique values "
            "first."
        )
    return None


def _has_class_table(dataset: Any, band: Any) -> bool:
    if band.GetColorTable() is not None or band.GetDefaultRAT() is not None:
        return True
    if band.GetCategoryNames():
        return True
    keys = {"s5geo", "CLASS_NAMES", "classes", "class_names"}
    return any(keys.intersection(obj.GetMetadata() or {}) for obj in (band, dataset))


def _distinct_values(band: Any) -> int:
    """Number of distinct values of an integer band (approximate: overviews or a sample)."""
    minimum, maximum = band.ComputeRasterMinMax(True)
    span = int(maximum) - int(minimum) + 1
    if span > 1 << 16:
        return span
    histogram = band.GetHistogram(
        min=minimum - 0.5, max=maximum + 0.5, buckets=span, include_out_of_range=0, approx_ok=1
    )
    return sum(1 for count in histogram if count)
