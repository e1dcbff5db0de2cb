"""The predictor interface: a batch of normalised windows in, per-class scores out (numpy only).

The window pipeline only talks to :class:`Predictor`, so back-ends plug in by implementing
``predict``: PyTorch (:class:`s5geo.inference.predictor.TorchPredictor`) and ONNX Runtime
(:class:`s5geo.runtime.onnx.OnnxPredictor`, also used by the QGIS plugin).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from s5geo.metadata import ModelMetadata


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
