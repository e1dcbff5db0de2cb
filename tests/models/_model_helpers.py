"""Helpers shared by the model tests: ONNX export checks and checkpoint key renames."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from s5geo.metadata import ModelMetadata

if TYPE_CHECKING:
    import onnxruntime as ort


def export_metadata(model: str, window_size: int, **fields: Any) -> ModelMetadata:
    """Metadata to export the test network ``model``: 3 classes, bands 1-3, no normalisation."""
    values: dict[str, Any] = {
        "classes": ["a", "b", "c"],
        "colors": [(0, 0, 0), (255, 0, 0), (0, 255, 0)],
        "bands": [1, 2, 3],
        "mean": [0.0] * 3,
        "std": [1.0] * 3,
        "window_size": window_size,
        "overlap": 0.25,
        "gsd": 1.0,
        "model": model,
    }
    values.update(fields)
    return ModelMetadata(**values)


def assert_onnx_agrees(
    session: ort.InferenceSession, model: nn.Module, shapes: list[tuple[int, ...]], seed: int = 1
) -> None:
    """The exported ``session`` gives ``model``'s logits (and labels) on random inputs of each shape."""
    rng = np.random.default_rng(seed)
    for shape in shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        (actual,) = session.run(None, {session.get_inputs()[0].name: x})
        with torch.inference_mode():
            expected = model(torch.from_numpy(x)).numpy()
        assert actual.shape == expected.shape
        scale = max(1.0, float(np.abs(expected).max()))
        assert np.abs(actual - expected).max() / scale < 1e-5, shape
        assert (actual.argmax(1) == expected.argmax(1)).mean() >= 0.999, shape


def rename_prefixes(state: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """The entries of ``state`` under one of the ``renames`` prefixes, moved to its new prefix.

    The first matching prefix wins (list the longer of two nested prefixes first); keys under none
    are left out.
    """
    out = {}
    for key, value in state.items():
        for old, new in renames.items():
            if key.startswith(old):
                out[new + key[len(old) :]] = value
                break
    return out
