"""Turn a land-cover class map into clean polygons: ``s5geo.vectorize``.

The map is polygonised block by block (see ``s5geo.vector._blocks``), so memory is bounded by the
block size and the finished polygons, not by the raster; regions cut by block lines are dissolved,
so the result equals a whole-raster ``rasterio.features.shapes`` (4-connectivity), polygon for
polygon.

Options, in the order they are applied:

1. ``min_area`` with ``min_area_mode="merge"``: before polygonising, regions smaller than
   ``min_area`` square metres are merged into their largest 4-connected neighbour with
   ``rasterio.features.sieve`` (threshold ``ceil(min_area / pixel_area)`` pixels; for a geographic
   CRS the pixel area at the raster centre). A region with no valid neighbour (e.g. surrounded by
   nodata) stays. See ``polygonize_blocks`` for what is exact when sieving block-wise.
2. Polygonising; nodata pixels produce no polygons; holes are kept.
3. ``simplify``: ``shapely.coverage_simplify`` on all polygons together, tolerance in metres, so
   neighbouring polygons keep sharing their edges (no gaps, no overlaps). The outer boundary of the
   coverage (raster edge, nodata edges) is left as is, so polygons still line up with the raster
   footprint.
4. ``min_area_mode="drop"``: polygons smaller than ``min_area`` (after simplification) are removed,
   leaving empty space where they were.

Areas (``area_m2``) are in square metres: see ``s5geo.vector._area``.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from s5geo.errors import S5GeoError
from s5geo.inference.files import check_image_complete, check_not_input
from s5geo.metadata import classes_from_tags
from s5geo.vector._area import area_m2, linear_unit_metres, to_pyproj
from s5geo.vector._blocks import polygonize_blocks
from s5geo.vector.io import check_output, write_polygons

logger = logging.getLogger("s5geo.vector")

#: Block side used when ``block_size`` is None.
DEFAULT_BLOCK_SIZE = 1024


def vectorize(
    classmap: str | os.PathLike[str] | np.ndarray,
    *,
    output: str | os.PathLike[str] | None = None,
    band: int = 1,
    transform: Affine | None = None,
    crs: object = None,
    min_area: float = 0.0,
    min_area_mode: Literal["merge", "drop"] = "merge",
    simplify: float = 0.0,
    block_size: int | None = None,
    classes: Sequence[str] | Mapping[int, str] | None = None,
    nodata: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> gpd.GeoDataFrame:
    """Polygonise a class map into one polygon per connected region of a class.

    Args:
        classmap: path of a class-map raster (integer classes), or a 2-D integer array (then pass
            ``transform`` and ``crs``; a numpy masked array's mask marks nodata).
        output: optional ``.gpkg``, ``.geojson`` or ``.parquet`` file to write.
        band: 1-based band of the raster holding the classes.
        transform: affine transform of an array input (default: identity, pixel units).
        crs: CRS of an array input (anything pyproj accepts).
        min_area: regions below this many square metres are merged or dropped (0 = keep all).
        min_area_mode: ``"merge"`` (sieve into the largest neighbour) or ``"drop"``.
        simplify: topology-preserving simplification tolerance in metres (0 = none); converted to
            degrees for a geographic CRS (at the raster centre).
        block_size: block side in pixels (default: 1024, rounded to the raster's tiling).
        classes: class names by id; default from the raster's tags, else ``class_<id>``.
        nodata: class value meaning "no data" (default: the raster's nodata/mask).
        overwrite: replace an existing ``output``.
        progress: show a progress bar over blocks.

    Returns:
        GeoDataFrame with ``class_id``, ``class_name``, ``area_m2`` and Polygon geometries in the
        raster's CRS.

    Raises:
        S5GeoError: unreadable input, bad option, or ``OutputExistsError`` for an existing output.
    """
    if min_area_mode not in ("merge", "drop"):
        raise S5GeoError(f"min_area_mode must be 'merge' or 'drop', got {min_area_mode!r}")
    if min_area < 0 or simplify < 0:
        raise S5GeoError("min_area and simplify must be >= 0")
    if block_size is not None and block_size < 1:
        raise S5GeoError(f"block_size must be >= 1, got {block_size}")
    if output is not None:
        check_output(output, overwrite)
        if not isinstance(classmap, np.ndarray):
            check_not_input(output, [classmap])

    with ExitStack() as stack:
        source = _open_source(stack, classmap, band, transform, crs, nodata)
        if source.crs is None and not isinstance(classmap, np.ndarray):
            logger.warning(
                "%s has no CRS: polygons are written without one and areas assume metre units", classmap
            )
        if classes is None:
            classes = source.classes
        size = block_size or _auto_block_size(source.block_shape)
        pcrs = to_pyproj(source.crs)
        sieve_pixels = 0
        tolerance = 0.0
        if min_area > 0 or simplify > 0:
            pixel_area = _pixel_area_m2(source.transform, pcrs, source.height, source.width)
            if min_area > 0 and min_area_mode == "merge":
                sieve_pixels = max(1, math.ceil(min_area / pixel_area - 1e-9))
            if simplify > 0:
                # Metres to CRS units (degrees on a geographic CRS, at the raster centre).
                t = source.transform
                tolerance = simplify / math.sqrt(pixel_area / abs(t.a * t.e - t.b * t.d))

        n_blocks = math.ceil(source.height / size) * math.ceil(source.width / size)
        bar = _progress_bar(n_blocks, progress)
        try:
            geoms, values = polygonize_blocks(
                source.read,
                source.height,
                source.width,
                size,
                sieve_pixels=sieve_pixels,
                on_block=bar.update if bar is not None else None,
                finish=_finisher(source.transform, densify=simplify > 0),
            )
        finally:
            if bar is not None:
                bar.close()

    order = np.argsort(values, kind="stable")
    geoms, values = geoms[order], values[order]
    if simplify > 0 and len(geoms):
        geoms = shapely.coverage_simplify(geoms, tolerance, simplify_boundary=False)
    areas = area_m2(geoms, pcrs)
    if min_area > 0 and min_area_mode == "drop":
        keep = areas >= min_area
        geoms, values, areas = geoms[keep], values[keep], areas[keep]

    gdf = gpd.GeoDataFrame(
        {
            "class_id": values.astype(np.int32),
            "class_name": _class_names(classes, values),
            "area_m2": areas,
        },
        geometry=gpd.GeoSeries(geoms, crs=pcrs),
        crs=pcrs,
    )
    if output is not None:
        write_polygons(gdf, output, overwrite=overwrite)
    return gdf


class _Source:
    """A class map to read windows from: a rasterio band or an in-memory array."""

    def __init__(
        self,
        height: int,
        width: int,
        transform: Affine,
        crs: object,
        classes: Sequence[str] | Mapping[int, str] | None,
        block_shape: tuple[int, int] | None,
        read,
    ) -> None:
        self.height, self.width = height, width
        self.transform, self.crs = transform, crs
        self.classes, self.block_shape, self.read = classes, block_shape, read


def _open_source(
    stack: ExitStack,
    classmap: str | os.PathLike[str] | np.ndarray,
    band: int,
    transform: Affine | None,
    crs: object,
    nodata: int | None,
) -> _Source:
    if isinstance(classmap, np.ndarray):
        return _array_source(classmap, transform, crs, nodata)
    path = Path(classmap)
    local = "://" not in str(classmap) and not str(classmap).startswith("/vsi")
    if not path.exists() and local:
        raise S5GeoError(f"{classmap}: no such file")
    if local:
        check_image_complete(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # reported once by vectorize()
            src = stack.enter_context(rasterio.open(classmap))
    except RasterioError as error:
        raise S5GeoError(f"{classmap}: cannot open as a raster ({error})") from error
    if not 1 <= band <= src.count:
        raise S5GeoError(f"{classmap}: band {band} requested but the raster has {src.count}")
    dtype = np.dtype(src.dtypes[band - 1])
    if dtype.kind not in "iu":
        raise S5GeoError(f"{classmap}: class map must hold integers, band {band} is {dtype}")

    def read(r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        window = Window(c0, r0, c1 - c0, r1 - r0)
        try:
            data = src.read(band, window=window)
            valid = src.read_masks(band, window=window) > 0
        except RasterioError as error:
            text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise S5GeoError(
                f"{classmap}: cannot read pixels at row {r0}, column {c0} (truncated or damaged file, "
                f"or a missing source): {text}"
            ) from error
        if nodata is not None:
            valid &= data != nodata
        return data, valid

    block_height, block_width = src.block_shapes[band - 1]
    block_shape = (block_height, block_width) if block_width < src.width else None
    return _Source(
        src.height,
        src.width,
        src.transform,
        src.crs,
        _classes_from_tags(src, band),
        block_shape,
        read,
    )


def _array_source(array: np.ndarray, transform: Affine | None, crs: object, nodata: int | None) -> _Source:
    if array.ndim != 2:
        raise S5GeoError(f"class map array must be 2-D, got shape {array.shape}")
    if array.dtype.kind not in "iub":
        raise S5GeoError(f"class map array must hold integers, got {array.dtype}")
    mask = np.ma.getmaskarray(array) if isinstance(array, np.ma.MaskedArray) else None
    data = np.ma.getdata(array)
    if data.dtype.kind == "b":
        data = data.astype(np.uint8)
    int32 = np.iinfo(np.int32)
    if (data.dtype.itemsize > 4 or data.dtype == np.uint32) and (
        data.size and (data.min() < int32.min or data.max() > int32.max)
    ):
        raise S5GeoError("class values must fit in 32-bit integers")

    def read(r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        block = data[r0:r1, c0:c1]
        valid = np.ones(block.shape, dtype=bool) if mask is None else ~mask[r0:r1, c0:c1]
        if nodata is not None:
            valid &= block != nodata
        return np.ascontiguousarray(block), valid

    return _Source(data.shape[0], data.shape[1], transform or Affine.identity(), crs, None, None, read)


def _classes_from_tags(src: rasterio.DatasetReader, band: int) -> dict[int, str] | None:
    """Class names from the band's or dataset's tags, if any (see :func:`classes_from_tags`)."""
    return classes_from_tags(src.tags(band), src.tags())


def _class_names(classes: Sequence[str] | Mapping[int, str] | None, values: np.ndarray) -> np.ndarray:
    """Class name per value; each distinct name is one shared str object."""
    unique, inverse = np.unique(values, return_inverse=True)
    names = np.array([_class_name(classes, v) for v in unique.tolist()], dtype=object)
    return names[inverse.reshape(-1)] if len(values) else np.empty(0, dtype=object)


def _class_name(classes: Sequence[str] | Mapping[int, str] | None, value: int) -> str:
    if isinstance(classes, Mapping):
        return classes.get(value, f"class_{value}")
    if classes is not None and 0 <= value < len(classes):
        return str(classes[value])
    return f"class_{value}"


def _auto_block_size(block_shape: tuple[int, int] | None) -> int:
    """Default block side, a multiple of the raster's internal tile size when it is tiled."""
    if not block_shape:
        return DEFAULT_BLOCK_SIZE
    tile = max(block_shape)
    return max(tile, (DEFAULT_BLOCK_SIZE // tile) * tile)


def _pixel_area_m2(transform: Affine, crs, height: int, width: int) -> float:
    """Area of one pixel in square metres (at the raster centre for a geographic CRS)."""
    planar = abs(transform.a * transform.e - transform.b * transform.d)
    if crs is None:
        return planar
    if not crs.is_geographic:
        return planar * linear_unit_metres(crs) ** 2
    x0, y0 = _affine_function(transform)(np.array([[width // 2, height // 2]], dtype=float))[0]
    centre = Affine(transform.a, transform.b, x0, transform.d, transform.e, y0)
    pixel = shapely.transform(shapely.box(0, 0, 1, 1), _affine_function(centre))
    return float(area_m2(np.array([pixel]), crs)[0])


def _finisher(transform: Affine, densify: bool):
    """Return the function mapping finished pixel-space polygons to CRS coordinates."""
    to_crs = _affine_function(transform)

    def finish(geoms: np.ndarray) -> np.ndarray:
        if densify:
            # GDAL's polygons meet in T-junctions (a straight edge of one polygon against two
            # neighbours has no vertex where they meet), which coverage_simplify would tear
            # apart. A vertex at every pixel corner (exact integers here) makes it noded.
            geoms = shapely.segmentize(geoms, 1.0)
        return shapely.transform(geoms, to_crs)

    return finish


def _affine_function(transform: Affine):
    """Return a function mapping an (N, 2) array of pixel coords to CRS coords."""
    a, b, c, d, e, f = transform[:6]

    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack([a * x + b * y + c, d * x + e * y + f])

    return apply


def _progress_bar(total: int, enabled: bool):
    if not enabled or total <= 1:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="vectorize", unit="block")


def summary(gdf: gpd.GeoDataFrame) -> list[tuple[int, str, int, float]]:
    """Per class: ``(class_id, class_name, polygon count, total area in m2)``."""
    rows = []
    for class_id, group in gdf.groupby("class_id", sort=True):
        name = str(group["class_name"].iloc[0])
        rows.append((int(class_id), name, len(group), float(group["area_m2"].sum())))
    return rows


__all__ = ["summary", "vectorize"]
