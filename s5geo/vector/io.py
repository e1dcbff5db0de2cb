"""Writing polygon layers: GeoPackage, GeoJSON and GeoParquet, atomically.

Every format is first written to a temporary file next to the output and renamed over it only
once complete, so an interrupted run never leaves a half-written file under the final name, and an
existing output is kept unless ``overwrite`` is set.

* ``.gpkg``: pyogrio's feature-by-feature writer, which wraps all features in a single GDAL
  transaction when the layer supports transactions (GPKG does). pyogrio's Arrow writer is not used
  for GPKG because it does not open one transaction around all batches.
* ``.geojson`` / ``.json``: pyogrio (GDAL GeoJSON driver).
* ``.parquet`` / ``.geoparquet``: GeoParquet through geopandas and pyarrow.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import geopandas as gpd

from s5geo.errors import OutputExistsError, S5GeoError
from s5geo.inference.files import check_writable_folder, remove_stale_temps, temp_name

#: Output suffix -> format name.
FORMATS: dict[str, str] = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".parquet": "Parquet",
    ".geoparquet": "Parquet",
}


def output_format(path: str | os.PathLike[str]) -> str:
    """Return the format for an output path, from its suffix.

    Raises:
        S5GeoError: the suffix is not one of ``FORMATS``.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise S5GeoError(f"{path}: unknown vector format {suffix!r} (use one of {known})")
    return FORMATS[suffix]


def check_output(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Validate an output path before any work is done.

    Raises:
        OutputExistsError: the file exists and ``overwrite`` is False.
        S5GeoError: unknown suffix or missing parent folder.
    """
    path = Path(path)
    output_format(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    if path.is_dir():
        raise S5GeoError(f"{path}: is a folder")
    if not path.parent.exists():
        raise S5GeoError(f"{path}: folder {path.parent} does not exist")
    check_writable_folder(path.parent)
    remove_stale_temps(path)
    return path


def write_polygons(gdf: gpd.GeoDataFrame, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a polygon GeoDataFrame to ``path`` (format from the suffix) via a temporary file.

    Returns:
        The output path.
    """
    path = check_output(path, overwrite)
    fmt = output_format(path)
    tmp = temp_name(path, "tmp").with_suffix(".tmp" + path.suffix)
    try:
        if fmt == "Parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError as error:
                raise S5GeoError(f"{path}: writing GeoParquet needs pyarrow (pip install pyarrow)") from error
            gdf.to_parquet(tmp, index=False)
        else:
            with warnings.catch_warnings():
                # A missing CRS is reported once, in words, by the caller.
                warnings.filterwarnings("ignore", message=".*crs.*was not provided.*")
                _write_ogr(gdf, tmp, path, fmt)
        os.replace(tmp, path)
    except OSError as error:
        if isinstance(error, S5GeoError):
            raise
        raise S5GeoError(f"{path}: cannot write ({error.strerror or error})") from error
    finally:
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm", "-journal"))):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return path


def _write_ogr(gdf: gpd.GeoDataFrame, tmp: Path, path: Path, fmt: str) -> None:
    import pyogrio

    geom_types = set(gdf.geom_type.unique()) if len(gdf) else {"Polygon"}
    pyogrio.write_dataframe(
        gdf,
        tmp,
        layer=path.stem,
        driver=fmt,
        geometry_type="Polygon" if geom_types <= {"Polygon"} else "MultiPolygon",
        promote_to_multi=not geom_types <= {"Polygon"},
        use_arrow=False,
    )
