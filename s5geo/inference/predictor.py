"""PyTorch predictors; the :class:`Predictor` interface itself is in :mod:`s5geo.runtime.predictor`.

The tiling/stitching code only talks to :class:`Predictor`, so back-ends other than PyTorch (ONNX
Runtime, :mod:`s5geo.runtime.onnx`) plug in by implementing ``predict``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from s5geo.errors import S5GeoError
from s5geo.inference.allocator import keep_large_buffers
from s5geo.metadata import ModelMetadata
from s5geo.runtime.predictor import Predictor, check_precision, fixed_precision

__all__ = ["Predictor", "TorchPredictor", "describe_device", "make_predictor", "resolve_device"]

logger = logging.getLogger("s5geo.inference")
_AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return the torch device for ``device`` (``"auto"`` picks CUDA, then MPS, then CPU)."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise S5GeoError(f"unknown device {device!r}: {error}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise S5GeoError(f"device {device!r} requested but CUDA is not available")
    return resolved


def describe_device(device: torch.device) -> str:
    """Return e.g. ``"cuda:0 (NVIDIA H100)"`` or ``"cpu"``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


class TorchPredictor:
    """Run an ``nn.Module`` returning logits ``B x K x h x w``.

    Args:
        module: the network (set to eval mode and moved to ``device``).
        metadata: the model metadata.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast (the logits come back as float32).

    On the CPU it calls :func:`~s5geo.inference.allocator.keep_large_buffers` (process-wide).
    """

    def __init__(
        self,
        module: nn.Module,
        metadata: ModelMetadata,
        device: str | torch.device = "auto",
        precision: str = "fp32",
    ) -> None:
        check_precision(precision)
        self.device = resolve_device(device)
        self.device_name = describe_device(self.device)
        if self.device.type == "cpu":
            keep_large_buffers()
        if precision != "fp32":
            self.device_name += f", {precision}"
        self.module = module.eval().to(self.device)
        self.metadata = metadata
        self.dtype = _AUTOCAST[precision]
        self.returns_logits = True

    @torch.inference_mode()
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """See :meth:`Predictor.predict`."""
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        x = x.to(self.device)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            logits = self.module(x)
        if isinstance(logits, dict):  # e.g. torchvision segmentation models
            logits = logits["out"]
        if logits.ndim != 4 or logits.shape[0] != x.shape[0] or logits.shape[2:] != x.shape[2:]:
            raise S5GeoError(
                f"model returned shape {tuple(logits.shape)} for input {tuple(x.shape)}; expected "
                "B x K x h x w logits at the input resolution"
            )
        return logits.float().cpu().numpy()


def make_predictor(
    model: Predictor | nn.Module | str | Path,
    metadata: ModelMetadata | None = None,
    device: str = "auto",
    precision: str = "fp32",
) -> Predictor:
    """Wrap ``model`` into a :class:`Predictor`.

    Args:
        model: a predictor, an ``nn.Module`` (then ``metadata`` is required), or the path of an s5geo
            checkpoint or of an exported ``.onnx`` model (run with ONNX Runtime).
        metadata: overrides the metadata stored with the model.
        device: device for PyTorch models.
        precision: ``fp32``, ``bf16`` or ``fp16`` (PyTorch models only).

    Returns:
        The predictor.
    """
    onnx = isinstance(model, (str, Path)) and Path(model).suffix.lower() == ".onnx"
    check_precision(precision, fixed_precision(model))
    if onnx:
        from s5geo.runtime.onnx import OnnxPredictor

        return OnnxPredictor(model, metadata, device=device)
    if isinstance(model, (str, Path)):
        from s5geo.inference.loading import load_model, read_checkpoint_metadata
        from s5geo.metadata import CHECKPOINT_DATASETS_KEY

        datasets = read_checkpoint_metadata(model, CHECKPOINT_DATASETS_KEY)
        if datasets and len(datasets) > 1:
            raise S5GeoError(
                f"{model}: a multi-dataset checkpoint ({', '.join(datasets)}); export one dataset with "
                f"`s5geo export {model} --head NAME -o NAME.onnx` and segment with that file"
            )
        module, stored = load_model(model)
        return TorchPredictor(module, metadata or stored, device=device, precision=precision)
    if isinstance(model, nn.Module):
        if metadata is None:
            raise S5GeoError("a ModelMetadata is required to predict with a plain nn.Module")
        return TorchPredictor(model, metadata, device=device, precision=precision)
    if isinstance(model, Predictor):
        if metadata is not None:
            model.metadata = metadata
        return model
    raise TypeError(f"cannot predict with a {type(model).__name__}")
