"""The predictor interface: a batch of normalised windows in, per-class scores out (numpy only).

The window pipeline only talks to :class:`Predictor`, so back-ends plug in by implementing
``predict``: PyTorch (:class:`s5geo.inference.predictor.TorchPredictor`) and ONNX Runtime
(:class:`s5geo.runtime.onnx.OnnxPredictor`, also used by the QGIS plugin).
"""

from __future__ import annotations

from os import PathLike
from typing import Protocol, runtime_checkable

import numpy as np

from s5geo.errors import S5GeoError
from s5geo.metadata import ModelMetadata

#: Precisions of a PyTorch forward: ``fp32``, or autocast to bfloat16 / float16.
PRECISIONS = ("fp32", "bf16", "fp16")


def check_precision(precision: str, fixed: str | None = None) -> None:
    """Raise :class:`S5GeoError` for an unknown precision, or one other than fp32 for a fixed model.

    Args:
        precision: one of :data:`PRECISIONS`.
        fixed: the model, when its precision was fixed before (an exported ONNX file, a ready
            predictor); None for a PyTorch checkpoint or module.
    """
    if precision not in PRECISIONS:
        raise S5GeoError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision != "fp32" and fixed is not None:
        raise S5GeoError(
            f"precision {precision} applies to PyTorch checkpoints and modules, not to {fixed}, which "
            "runs in the precision it was made with"
        )


@runtime_checkable
class Predictor(Protocol):
    """Anything that turns a batch of normalised windows into per-class scores.

    Scores are logits (``returns_logits = True``; windows are blended in logit space and a softmax
    is applied only where probabilities are written) or probabilities.
    """

    metadata: ModelMetadata
    #: Human-readable name of the device the predictions run on (for logs).
    device_name: str
    #: Whether :meth:`predict` returns logits (True) or probabilities (False).
    returns_logits: bool

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Predict per-class scores.

        Args:
            batch: float32 ``B x C x h x w`` windows, already normalised with the metadata mean/std.

        Returns:
            float32 ``B x K x h x w`` logits or probabilities.
        """
        ...


def fixed_precision(model: object) -> str | None:
    """Name ``model`` when its precision cannot be chosen at prediction time (see :func:`check_precision`)."""
    if isinstance(model, (str, PathLike)) and str(model).lower().endswith(".onnx"):
        return f"the ONNX model {model}"
    if isinstance(model, Predictor):
        return f"a ready {type(model).__name__}"
    return None
