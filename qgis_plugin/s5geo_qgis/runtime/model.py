"""Models the plugin can run: ONNX files through ONNX Runtime, s5geo checkpoints through torch.

Both map a batch of *normalised* bands (``B x C x h x w`` float32, ``(raw - mean) / std`` with the
metadata's raw-unit mean and std) to per-class logits ``B x K x h x w``: the exported ONNX network
does not normalise, the runtime does (see ``docs/export.md``). As in ``s5geo segment``, windows are
blended in logit space and the softmax comes last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from . import deps
from .shared import ModelMetadata, S5GeoError, onnx

#: Device choices of the Segment algorithm, in the order of its enum parameter.
DEVICES = ("auto", "cpu", "cuda")
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")


class ModelError(RuntimeError):
    """A model file cannot be used (unreadable, no s5geo metadata, wrong shape)."""


class Model(Protocol):
    """What the segmentation loop needs from a model."""

    metadata: ModelMetadata
    device: str  # human-readable description of where the model runs

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Return ``B x K x h x w`` logits of a normalised ``B x C x h x w`` batch."""
        ...


def onnx_providers(device: str, available: list[str]) -> list[str]:
    """Return the ONNX Runtime execution providers to request for a device choice.

    Args:
        device: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.
        available: ``onnxruntime.get_available_providers()``.

    Raises:
        ModelError: ``cuda`` was asked for and this onnxruntime has no CUDA provider.
    """
    if device not in DEVICES:
        raise ModelError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not cuda:
        raise ModelError(
            "device 'cuda' was requested but this onnxruntime has no CUDA support "
            f"(providers: {', '.join(available)}). Install the GPU build with: "
            f"{deps.install_command('onnxruntime-gpu')} (after uninstalling onnxruntime), "
            "or choose the CPU device"
        )
    if device == "cpu" or not cuda:
        return ["CPUExecutionProvider"]
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxModel:
    """An exported s5geo model run by ONNX Runtime (the s5geo core's :class:`OnnxPredictor`).

    Args:
        path: the ``.onnx`` file.
        device: ``auto``, ``cpu`` or ``cuda``.
        threads: intra-op threads (0 lets ONNX Runtime decide).
    """

    def __init__(self, path: str | Path, device: str = "auto", threads: int = 0) -> None:
        ort = deps.onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} does not exist")
        onnx_providers(device, list(ort.get_available_providers()))  # the plugin's install hint
        try:
            self.predictor = onnx.OnnxPredictor(self.path, device=device, threads=threads)
        except S5GeoError as error:
            raise ModelError(str(error)) from error
        self.metadata = self.predictor.metadata
        self.returns_logits = True
        self.provider = self.predictor.provider
        self.device = f"onnxruntime {ort.__version__} {self.provider}"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Return class logits for a normalised batch."""
        try:
            return self.predictor.predict(batch)
        except S5GeoError as error:
            raise ModelError(str(error)) from error


class CheckpointModel:
    """An s5geo checkpoint run by torch (only where s5geo and torch are installed).

    Args:
        path: the checkpoint.
        device: ``auto``, ``cpu`` or ``cuda``.
    """

    def __init__(self, path: str | Path, device: str = "auto") -> None:
        if not deps.torch_available():
            raise deps.MissingDependencyError(
                f"{path} is an s5geo checkpoint, which needs s5geo and torch in QGIS's Python. "
                "Export it to ONNX instead (`s5geo export CHECKPOINT --output model.onnx`) or "
                f"install them with: {deps.install_command('s5geo')}"
            )
        import torch

        from s5geo.inference.loading import load_model

        if device == "cuda" and not torch.cuda.is_available():
            raise ModelError("device 'cuda' was requested but torch sees no CUDA GPU")
        use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        self._torch = torch
        self._device = torch.device("cuda" if use_cuda else "cpu")
        module, self.metadata = load_model(path)
        self.module = module.eval().to(self._device)
        name = torch.cuda.get_device_name(self._device) if use_cuda else "CPU"
        self.device = f"torch {torch.__version__} {self._device} ({name})"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Return class logits for a normalised batch."""
        torch = self._torch
        with torch.inference_mode():
            logits = self.module(torch.from_numpy(np.ascontiguousarray(batch)).to(self._device))
            return logits.float().cpu().numpy()


def load(path: str | Path, device: str = "auto") -> Model:
    """Load an ONNX model or (when torch is available) an s5geo checkpoint."""
    if Path(path).suffix.lower() in CHECKPOINT_SUFFIXES:
        return CheckpointModel(path, device)
    return OnnxModel(path, device)
