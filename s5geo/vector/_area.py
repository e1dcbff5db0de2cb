"""Areas in square metres for polygons in any CRS.

* Projected CRS: planar area in the CRS, multiplied by the square of the CRS's linear unit in metres
  (pyproj's ``unit_conversion_factor``), so US survey feet, international feet etc. are converted.
  This is the map-plane area of that projection (for UTM within ~0.1% of the ellipsoidal area).
* Geographic CRS: polygons are projected to a Lambert azimuthal equal-area projection centred on
  the data, on the CRS's own ellipsoid; an equal-area projection gives true ellipsoidal areas.
* No CRS: planar area in pixel-transform units (assumed metres).
"""

from __future__ import annotations

import numpy as np
import pyproj
import shapely
from pyproj import CRS as ProjCRS  # noqa: N811


def to_pyproj(crs: object) -> ProjCRS | None:
    """Return a pyproj CRS for a rasterio CRS, pyproj CRS, EPSG code or string (None stays None)."""
    if crs is None:
        return None
    if isinstance(crs, ProjCRS):
        return crs
    to_wkt = getattr(crs, "to_wkt", None)
    return ProjCRS.from_user_input(to_wkt() if callable(to_wkt) else crs)


def equal_area_crs(crs: ProjCRS, lon: float, lat: float) -> ProjCRS:
    """Lambert azimuthal equal-area CRS centred on ``(lon, lat)``, on ``crs``'s ellipsoid."""
    ellipsoid = crs.ellipsoid
    if ellipsoid is None:
        shape = "+ellps=WGS84"
    elif ellipsoid.inverse_flattening == 0:
        shape = f"+R={ellipsoid.semi_major_metre}"
    else:
        shape = f"+a={ellipsoid.semi_major_metre} +rf={ellipsoid.inverse_flattening}"
    return ProjCRS.from_proj4(f"+proj=laea +lat_0={lat} +lon_0={lon} +x_0=0 +y_0=0 {shape} +units=m +no_defs")


def area_m2(geoms: np.ndarray, crs: ProjCRS | None) -> np.ndarray:
    """Return the area of each polygon (in ``crs`` coordinates) in square metres."""
    if len(geoms) == 0:
        return np.empty(0, dtype=np.float64)
    if crs is None:
        return shapely.area(geoms)
    if crs.is_geographic:
        xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
        laea = equal_area_crs(crs, (xmin + xmax) / 2, (ymin + ymax) / 2)
        transformer = pyproj.Transformer.from_crs(crs, laea, always_xy=True)

        def project(xy: np.ndarray) -> np.ndarray:
            x, y = transformer.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        return shapely.area(shapely.transform(geoms, project))
    return shapely.area(geoms) * linear_unit_metres(crs) ** 2


def linear_unit_metres(crs: ProjCRS) -> float:
    """Metres per unit of a projected CRS's first axis (1.0 if pyproj does not say)."""
    for axis in crs.axis_info:
        if axis.unit_conversion_factor:
            return float(axis.unit_conversion_factor)
    return 1.0
