"""The s5geo code the plugin shares with the library, vendored by ``qgis_plugin/build.py``.

``_vendor/runtime`` is ``s5geo/runtime`` (the inference core), copied whole.
"""

from __future__ import annotations

try:
    from .._vendor.errors import S5GeoError
    from .._vendor.metadata import METADATA_KEY, ModelMetadata
    from .._vendor.runtime import bands, onnx, outputs, pipeline
    from .._vendor.runtime.tiling import (
        BLEND_MODES,
        Block,
        StreamingStitcher,
        Window,
        WindowGrid,
        argmax,
        softmax,
    )
except ImportError as error:  # a source checkout that was not built
    raise ImportError(
        "s5geo_qgis/_vendor is missing: run `python qgis_plugin/build.py --vendor` "
        "(or install the plugin from the zip that build.py makes)"
    ) from error

__all__ = [
    "BLEND_MODES",
    "METADATA_KEY",
    "Block",
    "ModelMetadata",
    "S5GeoError",
    "StreamingStitcher",
    "Window",
    "WindowGrid",
    "argmax",
    "bands",
    "onnx",
    "outputs",
    "pipeline",
    "softmax",
]
