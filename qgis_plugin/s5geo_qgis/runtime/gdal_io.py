"""GDAL helpers: output rasters written to a temporary name and renamed when complete."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path

from osgeo import gdal

from .shared import METADATA_KEY, ModelMetadata, outputs

OutputSpec = outputs.OutputSpec

CREATION_OPTIONS = ["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"]
#: Segmentation outputs: tiles never written (no data there) read back as nodata.
SPARSE_OPTIONS = ["SPARSE_OK=TRUE", "ZLEVEL=1"]


class RasterError(RuntimeError):
    """A raster cannot be read or written."""


def open_raster(path: str) -> gdal.Dataset:
    """Open a raster read-only or raise :class:`RasterError`."""
    dataset = gdal.Open(str(path), gdal.GA_ReadOnly)
    if dataset is None:
        raise RasterError(f"GDAL cannot open {path}: {gdal.GetLastErrorMsg() or 'unknown error'}")
    return dataset


def partial_path(final: Path) -> Path:
    """Return a unique temporary name beside ``final`` with the same extension."""
    return final.with_name(f".{final.stem}.partial-{uuid.uuid4().hex[:8]}{final.suffix}")


def create_like(
    source: gdal.Dataset,
    path: Path,
    data_type: int,
    bands: int = 1,
    options: list[str] | None = None,
) -> gdal.Dataset:
    """Create a tiled, compressed GeoTIFF with the size, CRS and transform of ``source``."""
    driver = gdal.GetDriverByName("GTiff")
    dataset = driver.Create(
        str(path),
        source.RasterXSize,
        source.RasterYSize,
        bands,
        data_type,
        CREATION_OPTIONS if options is None else options,
    )
    if dataset is None:
        raise RasterError(f"GDAL cannot create {path}: {gdal.GetLastErrorMsg()}")
    dataset.SetGeoTransform(source.GetGeoTransform())
    dataset.SetProjection(source.GetProjection())
    return dataset


def create_output(source: gdal.Dataset, path: Path, spec: OutputSpec) -> gdal.Dataset:
    """Create an output raster of the s5geo core's kind ``spec`` (type, nodata, tags, colours).

    The GeoTIFF is sparse (tiles never written read back as nodata) and its tiles are those
    ``s5geo segment`` uses (:func:`outputs.output_tile_size`: larger for huge rasters).
    """
    data_type = {"uint8": gdal.GDT_Byte, "float32": gdal.GDT_Float32}[spec.dtype]
    tile = outputs.output_tile_size(source.RasterYSize, source.RasterXSize)
    options = [
        *CREATION_OPTIONS,
        *SPARSE_OPTIONS,
        f"BLOCKXSIZE={tile}",
        f"BLOCKYSIZE={tile}",
        *([f"NBITS={spec.nbits}", "PREDICTOR=3"] if spec.nbits else []),
    ]
    dataset = create_like(source, path, data_type, spec.count, options)
    for index, description in enumerate(spec.descriptions, start=1):
        band = dataset.GetRasterBand(index)
        band.SetDescription(description)
        if spec.nodata is not None:
            band.SetNoDataValue(spec.nodata)
    first = dataset.GetRasterBand(1)
    if spec.colormap:
        table = gdal.ColorTable()
        for value, rgba in sorted(spec.colormap.items()):
            table.SetColorEntry(value, tuple(rgba))
        first.SetColorTable(table)
        first.SetColorInterpretation(gdal.GCI_PaletteIndex)
    if spec.band_tags:
        first.SetMetadata(dict(spec.band_tags))
    if spec.tags:
        dataset.SetMetadata(dict(spec.tags))
    return dataset


def class_info(dataset: gdal.Dataset) -> dict[int, tuple[str, tuple[int, int, int]]]:
    """Return ``{value: (name, rgb)}`` for the classes a class map declares.

    Names and colours come from the ``s5geo`` metadata tag; without it, from the GDAL category names
    and the colour table (entries that are fully transparent are skipped).
    """
    tag = dataset.GetMetadataItem(METADATA_KEY)
    if tag:
        try:
            metadata = ModelMetadata.from_dict(json.loads(tag))
        except (ValueError, TypeError):
            metadata = None
        if metadata is not None:
            return dict(enumerate(zip(metadata.classes, metadata.colors, strict=True)))
    band = dataset.GetRasterBand(1)
    names = list(band.GetCategoryNames() or [])
    table = band.GetColorTable()
    entries = table.GetCount() if table is not None else 0
    info = {}
    for value in range(max(len(names), entries)):
        rgba = table.GetColorEntry(value) if value < entries else (128, 128, 128, 255)
        name = names[value] if value < len(names) and names[value] else ""
        if not name and rgba[3] == 0:
            continue
        info[value] = (name or f"class {value}", tuple(rgba[:3]))
    return info


def remove_quietly(path: Path) -> None:
    """Delete a raster and its GDAL sidecar files, ignoring missing files."""
    for candidate in (path, path.with_name(path.name + ".aux.xml")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(candidate)


def finish(partial: Path, final: Path) -> None:
    """Move a complete raster (and its sidecar) from its temporary name to ``final``."""
    remove_quietly(final)
    os.replace(partial, final)
    sidecar = partial.with_name(partial.name + ".aux.xml")
    if sidecar.exists():
        os.replace(sidecar, final.with_name(final.name + ".aux.xml"))
