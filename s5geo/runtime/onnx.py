"""ONNX Runtime predictor: runs models made by ``s5geo export`` through the predictor interface.

The ONNX graph takes normalised windows (see :mod:`s5geo.inference.onnx_export`), exactly like the
PyTorch networks behind :class:`~s5geo.inference.predictor.TorchPredictor`, so ``segment_raster``
and the QGIS plugin handle both the same way. This module does not import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from s5geo.errors import S5GeoError
from s5geo.metadata import METADATA_KEY, ModelMetadata

INSTALL_HINT = "install it with `pip install onnxruntime` (or onnxruntime-gpu for CUDA)"


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise S5GeoError(f"ONNX models need onnxruntime: {INSTALL_HINT}") from error
    return onnxruntime


def providers_for(device: str, available: list[str]) -> tuple[list[Any], str]:
    """Return ONNX Runtime providers for ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``).

    Returns:
        The providers argument for ``InferenceSession`` and the CUDA device index as text ("" for
        the CPU).
    """
    cuda = "CUDAExecutionProvider" in available
    if device == "cpu" or (device == "auto" and not cuda):
        return ["CPUExecutionProvider"], ""
    if device == "auto":
        device = "cuda"
    if not device.startswith("cuda"):
        raise S5GeoError(f"unknown device {device!r} for ONNX models; use auto, cpu or cuda[:N]")
    if not cuda:
        raise S5GeoError(
            f"device {device!r} requested but onnxruntime has no CUDA provider "
            f"(available: {', '.join(available)}); install onnxruntime-gpu"
        )
    index = device.partition(":")[2] or "0"
    if not index.isdigit():
        raise S5GeoError(f"bad CUDA device {device!r}")
    return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"], index


def read_onnx_metadata(path: str | Path) -> ModelMetadata:
    """Return the s5geo metadata stored in an ONNX file (without creating a session)."""
    ort = _onnxruntime()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _metadata(session, Path(path))


def _metadata(session: Any, path: Path) -> ModelMetadata:
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise S5GeoError(
            f"{path}: no s5geo metadata in the ONNX file (metadata_props key {METADATA_KEY!r}); "
            "export models with `s5geo export`"
        )
    try:
        return ModelMetadata.from_json(props[METADATA_KEY])
    except (ValueError, TypeError) as error:
        raise S5GeoError(f"{path}: invalid s5geo metadata: {error}") from error


class OnnxPredictor:
    """A :class:`~s5geo.runtime.predictor.Predictor` backed by ONNX Runtime.

    Args:
        path: ``.onnx`` file made by ``s5geo export``.
        metadata: overrides the metadata stored in the file.
        device: ``auto`` (CUDA when onnxruntime has it), ``cpu``, ``cuda`` or ``cuda:N``.
        threads: intra-op threads (0: onnxruntime decides).
    """

    def __init__(
        self,
        path: str | Path,
        metadata: ModelMetadata | None = None,
        device: str = "auto",
        threads: int = 0,
    ) -> None:
        ort = _onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise S5GeoError(f"model file {str(self.path)!r} not found")
        providers, index = providers_for(device, list(ort.get_available_providers()))
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise S5GeoError(f"{self.path}: onnxruntime cannot load the model ({first})") from error
        self.metadata = metadata or _metadata(self.session, self.path)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise S5GeoError(f"{self.path}: expected one input, found {len(inputs)}")
        self.input_name = inputs[0].name
        channels = inputs[0].shape[1] if len(inputs[0].shape) == 4 else None
        if isinstance(channels, int) and channels != self.metadata.in_channels:
            raise S5GeoError(
                f"{self.path}: the network takes {channels} bands but its metadata lists "
                f"{self.metadata.in_channels}"
            )
        self.provider = self.session.get_providers()[0]
        where = f"cuda:{index}" if self.provider == "CUDAExecutionProvider" else "cpu"
        self.device_name = f"{where} (onnxruntime {ort.__version__} {self.provider})"
        #: Like the PyTorch predictor, return logits: windows are blended in logit space.
        self.returns_logits = True

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Return float32 ``B x K x h x w`` logits (see ``Predictor.predict``)."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        (logits,) = self.session.run(None, {self.input_name: x})
        if logits.ndim != 4 or logits.shape[0] != x.shape[0] or logits.shape[2:] != x.shape[2:]:
            raise S5GeoError(
                f"{self.path}: model returned shape {logits.shape} for input {x.shape}; expected "
                "B x K x h x w logits at the input resolution"
            )
        return logits.astype(np.float32, copy=False)


def load_onnx(
    path: str | Path, device: str = "auto", threads: int = 0
) -> tuple[OnnxPredictor, ModelMetadata]:
    """Load an exported model: ``(predictor, metadata)``."""
    predictor = OnnxPredictor(path, device=device, threads=threads)
    return predictor, predictor.metadata
