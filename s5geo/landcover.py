"""One call from a raster to land-cover polygons: :func:`segment_raster`, then :func:`vectorize`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from s5geo.errors import S5GeoError


def raster_to_polygons(
    input: str | os.PathLike[str],
    model: Any,
    polygons: str | os.PathLike[str],
    *,
    classmap: str | os.PathLike[str] | None = None,
    min_area: float = 0.0,
    simplify: float = 0.0,
    overwrite: bool = False,
    progress: bool = True,
    **segment_options: Any,
) -> Any:
    """Segment a raster of any size and turn the land-cover map into polygons.

    Both steps stream block by block, so memory does not grow with the raster.

    Args:
        input: any raster GDAL opens (GeoTIFF, COG, VRT, JPEG2000, ...).
        model: s5geo checkpoint or ONNX file, ``nn.Module`` (with ``metadata=``) or predictor.
        polygons: ``.gpkg``, ``.geojson`` or ``.parquet`` file to write.
        classmap: GeoTIFF for the land-cover map (default: ``<polygons stem>_landcover.tif`` next to
            ``polygons``); it is kept, as the raster the polygons were made from.
        min_area: regions smaller than this many square metres are merged into a neighbour.
        simplify: topology-preserving simplification tolerance in metres (0: none).
        overwrite: replace existing outputs (the input is never an output).
        progress: show progress bars.
        **segment_options: more options of :func:`s5geo.inference.segment_raster` (``window_size``,
            ``overlap``, ``bands``, ``device``, ``scale``, ...).

    Returns:
        The polygons as a GeoDataFrame (``class_id``, ``class_name``, ``area_m2``).

    Raises:
        S5GeoError: bad input, model or output (one line naming the file).
    """
    from s5geo.inference import segment_raster
    from s5geo.vector import vectorize

    polygons = Path(polygons)
    if classmap is None:
        classmap = polygons.with_name(f"{polygons.stem}_landcover.tif")
    classmap = Path(classmap)
    if classmap.resolve() == polygons.resolve():
        raise S5GeoError(f"{polygons}: the class map and the polygons must be different files")
    segment_raster(input, model, classmap, overwrite=overwrite, progress=progress, **segment_options)
    return vectorize(
        classmap,
        output=polygons,
        min_area=min_area,
        simplify=simplify,
        overwrite=overwrite,
        progress=progress,
    )
