"""Class raster -> polygons with GDAL only (``SieveFilter`` + ``Polygonize``), no geopandas.

``min_area`` merges regions smaller than the area into their largest neighbour (GDAL's sieve,
4-connected, nodata untouched) before polygonising, so small specks do not become polygons.
``simplify`` applies ``SimplifyPreserveTopology`` to each polygon: every polygon stays valid, but
two neighbours are simplified independently and may no longer share their edge exactly;
``s5geo vectorize`` (shapely's coverage simplification) keeps shared edges: use it for gap-free
simplified maps.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from osgeo import gdal, ogr, osr

from . import gdal_io

#: OGR driver per output extension.
DRIVERS = {
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".fgb": "FlatGeobuf",
    ".sqlite": "SQLite",
}


class CanceledError(RuntimeError):
    """The run was canceled; no output was left behind."""


@dataclass
class VectorizeResult:
    """What a vectorize run produced."""

    path: Path
    layer: str
    features: int
    classes: dict[int, tuple[str, tuple[int, int, int]]]
    present: list[int]


def _area_transform(srs: osr.SpatialReference | None, dataset: gdal.Dataset):
    """Return a transform to a local equal-area CRS when ``srs`` is geographic, else None."""
    if srs is None or not srs.IsGeographic():
        return None
    gt = dataset.GetGeoTransform()
    lon = gt[0] + gt[1] * dataset.RasterXSize / 2 + gt[2] * dataset.RasterYSize / 2
    lat = gt[3] + gt[4] * dataset.RasterXSize / 2 + gt[5] * dataset.RasterYSize / 2
    local = osr.SpatialReference()
    local.ImportFromProj4(f"+proj=laea +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m +no_defs")
    source = srs.Clone()
    for ref in (source, local):
        ref.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(source, local)


#: Largest sieve threshold GDAL takes (a C int); larger areas remove every region anyway.
_MAX_SIEVE = 2**31 - 1


def _metres_per_unit(srs: osr.SpatialReference | None, dataset: gdal.Dataset) -> float:
    """Metres per CRS unit (for a geographic CRS, per degree at the raster centre); 1 without CRS."""
    if srs is None:
        return 1.0
    if not srs.IsGeographic():
        return float(srs.GetLinearUnits() or 1.0)
    transform = _area_transform(srs, dataset)
    gt = dataset.GetGeoTransform()
    x = gt[0] + gt[1] * dataset.RasterXSize / 2 + gt[2] * dataset.RasterYSize / 2
    y = gt[3] + gt[4] * dataset.RasterXSize / 2 + gt[5] * dataset.RasterYSize / 2
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for dx, dy in ((0, 0), (gt[1], gt[4]), (gt[1] + gt[2], gt[4] + gt[5]), (gt[2], gt[5]), (0, 0)):
        ring.AddPoint_2D(x + dx, y + dy)
    pixel = ogr.Geometry(ogr.wkbPolygon)
    pixel.AddGeometry(ring)
    degrees = pixel.GetArea()
    pixel.Transform(transform)
    return math.sqrt(pixel.GetArea() / degrees) if degrees > 0 else 1.0


def _progress(
    start: float, span: float, progress: Callable[[float], None] | None, is_canceled
) -> Callable[..., int]:
    def callback(fraction: float, *_: object) -> int:
        if progress is not None:
            progress(start + span * fraction)
        return 0 if is_canceled is not None and is_canceled() else 1

    return callback


def vectorize(
    class_map: str | Path,
    output: str | Path,
    min_area: float = 0.0,
    simplify: float = 0.0,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> VectorizeResult:
    """Polygonise a class raster into ``output`` with ``class_id``, ``class_name`` and ``area_m2``.

    Args:
        class_map: single-band class raster (e.g. the Segment algorithm's output).
        output: vector file; the format follows the extension (see :data:`DRIVERS`).
        min_area: regions smaller than this many square metres merge into a neighbour first
            (converted at the raster centre on a geographic CRS).
        simplify: simplification tolerance in metres (0 = none; converted to degrees on a
            geographic CRS).
        progress: called with a percentage.
        is_canceled: polled during the run; True stops it and removes partial outputs.

    Returns:
        The written file and what it holds.
    """
    output = Path(output)
    driver_name = DRIVERS.get(output.suffix.lower())
    if driver_name is None:
        raise ValueError(f"unsupported vector format {output.suffix!r}; use one of {sorted(DRIVERS)}")
    dataset = gdal_io.open_raster(str(class_map))
    band = dataset.GetRasterBand(1)
    classes = gdal_io.class_info(dataset)
    gt = dataset.GetGeoTransform()
    pixel_area = abs(gt[1] * gt[5] - gt[2] * gt[4])
    srs = dataset.GetSpatialRef()

    metres = _metres_per_unit(srs, dataset)
    work: list[Path] = []
    source_band = band
    if min_area > 0 and pixel_area > 0:
        pixel_m2 = pixel_area * metres * metres
        pixels = min(math.ceil(min_area / pixel_m2 - 1e-9), _MAX_SIEVE)
        sieved_path = gdal_io.partial_path(output.with_suffix(".tif"))
        work.append(sieved_path)
        sieved = gdal_io.create_like(dataset, sieved_path, band.DataType)
        if band.GetNoDataValue() is not None:
            sieved.GetRasterBand(1).SetNoDataValue(band.GetNoDataValue())
        status = gdal.SieveFilter(
            band,
            band.GetMaskBand(),
            sieved.GetRasterBand(1),
            pixels,
            4,
            callback=_progress(0, 30, progress, is_canceled),
        )
        if is_canceled is not None and is_canceled():
            sieved = None
            _remove(work)
            raise CanceledError("vectorize canceled")
        if status != 0:
            raise gdal_io.RasterError(f"GDAL sieve failed: {gdal.GetLastErrorMsg()}")
        source_band = sieved.GetRasterBand(1)

    partial = output.with_name(f".{output.stem}.partial-{uuid.uuid4().hex[:8]}{output.suffix}")
    layer_name = output.stem
    try:
        memory = ogr.GetDriverByName("Memory").CreateDataSource("polygons")
        raw = memory.CreateLayer("raw", srs=srs, geom_type=ogr.wkbPolygon)
        raw.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
        status = gdal.Polygonize(
            source_band,
            source_band.GetMaskBand(),
            raw,
            0,
            [],
            callback=_progress(30, 50, progress, is_canceled),
        )
        if is_canceled is not None and is_canceled():
            raise CanceledError("vectorize canceled")
        if status != 0:
            raise gdal_io.RasterError(f"GDAL polygonize failed: {gdal.GetLastErrorMsg()}")
        count, present = _write(
            raw, partial, driver_name, layer_name, srs, classes, simplify / metres, dataset
        )
        if is_canceled is not None and is_canceled():
            raise CanceledError("vectorize canceled")
        _rename_all(partial, output)
    except BaseException:
        _remove([partial, *_siblings(partial)])
        raise
    finally:
        source_band = None
        sieved = None
        _remove(work)
    if progress is not None:
        progress(100.0)
    return VectorizeResult(output, layer_name, count, classes, sorted(present))


def _write(
    raw: ogr.Layer,
    path: Path,
    driver_name: str,
    layer_name: str,
    srs: osr.SpatialReference | None,
    classes: dict[int, tuple[str, tuple[int, int, int]]],
    simplify: float,
    dataset: gdal.Dataset,
) -> tuple[int, set[int]]:
    driver = ogr.GetDriverByName(driver_name)
    target = driver.CreateDataSource(str(path))
    if target is None:
        raise gdal_io.RasterError(f"OGR cannot create {path}: {gdal.GetLastErrorMsg()}")
    layer = target.CreateLayer(layer_name, srs=srs, geom_type=ogr.wkbMultiPolygon)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    name_field = ogr.FieldDefn("class_name", ogr.OFTString)
    name_field.SetWidth(64)
    layer.CreateField(name_field)
    layer.CreateField(ogr.FieldDefn("area_m2", ogr.OFTReal))
    area_transform = _area_transform(srs, dataset)
    definition = layer.GetLayerDefn()
    count = 0
    present: set[int] = set()
    layer.StartTransaction()
    for feature in raw:
        geometry = feature.GetGeometryRef().Clone()
        if simplify > 0:
            geometry = geometry.SimplifyPreserveTopology(simplify)
            if geometry is None or geometry.IsEmpty():
                continue
        geometry = ogr.ForceToMultiPolygon(geometry)
        value = feature.GetFieldAsInteger(0)
        out = ogr.Feature(definition)
        out.SetField("class_id", value)
        out.SetField("class_name", classes.get(value, (f"class {value}",))[0])
        measured = geometry.Clone()
        if area_transform is not None:
            measured.Transform(area_transform)
        out.SetField("area_m2", measured.GetArea())
        out.SetGeometry(geometry)
        layer.CreateFeature(out)
        count += 1
        present.add(value)
    layer.CommitTransaction()
    target = None
    return count, present


def _siblings(path: Path) -> list[Path]:
    """Files that share the stem of ``path`` (shapefile sidecars)."""
    return [p for p in path.parent.glob(f"{path.stem}.*") if p != path]


def _rename_all(partial: Path, final: Path) -> None:
    for old in [partial, *_siblings(partial)]:
        new = final.with_name(final.stem + old.name[len(partial.stem) :])
        if new.exists():
            os.remove(new)
        os.replace(old, new)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        gdal_io.remove_quietly(path)
