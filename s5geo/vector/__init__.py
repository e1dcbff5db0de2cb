"""Polygons from land-cover class maps: block-wise polygonising, sieving, simplifying, writing."""

from __future__ import annotations

from s5geo.vector.io import write_polygons
from s5geo.vector.vectorize import vectorize

__all__ = ["vectorize", "write_polygons"]
