"""s5geo: semi-supervised land-cover segmentation of remote-sensing imagery at scale (S5).

Sub-packages: ``datasets``, ``datamodules``, ``transforms``, ``models``, ``tasks``, ``inference``,
``vector`` and ``cli``. Importing ``s5geo`` itself is cheap; the heavy sub-packages load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from s5geo._version import __version__

# Top-level API name -> module that defines it, imported lazily.
_LAZY = {
    "segment_raster": "s5geo.inference.segment",
    "vectorize": "s5geo.vector.vectorize",
    "raster_to_polygons": "s5geo.landcover",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 's5geo' has no attribute {name!r}")
