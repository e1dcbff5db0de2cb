"""Prediction over rasters of any size, pseudo-labels and model loading.

Heavy modules load on first use so that ``s5geo.inference.tiling`` stays importable without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "segment_raster": "s5geo.inference.segment",
    "load_model": "s5geo.inference.loading",
    "Predictor": "s5geo.inference.predictor",
    "TorchPredictor": "s5geo.inference.predictor",
    "make_predictor": "s5geo.inference.predictor",
    "predict_array": "s5geo.inference.arrays",
    "pseudo_label": "s5geo.inference.pseudo_label",
    "GeoTiffPredictionWriter": "s5geo.inference.writer",
    "WindowGrid": "s5geo.inference.tiling",
    "StreamingStitcher": "s5geo.inference.tiling",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 's5geo.inference' has no attribute {name!r}")
