"""Load trained s5geo models for inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from s5geo.errors import S5GeoError
from s5geo.metadata import CHECKPOINT_METADATA_KEY, ModelMetadata


def _build_model(name: str, num_classes: int, in_channels: int, **kwargs: Any) -> nn.Module:
    from s5geo.models import build_model

    return build_model(name, num_classes=num_classes, in_channels=in_channels, **kwargs)


def load_model(path: str | Path) -> tuple[nn.Module, ModelMetadata]:
    """Load the network and metadata of an s5geo task checkpoint (``.ckpt``).

    The checkpoint holds hyper-parameters ``model``, ``model_kwargs``, ``num_classes``,
    ``in_channels``, the network weights under ``state_dict`` with prefix ``model.`` and the model
    metadata under ``s5geo_metadata``. It is read with ``torch.load(weights_only=True)``.

    Args:
        path: checkpoint file.

    Returns:
        The network in eval mode (on the CPU) and its metadata.

    Raises:
        S5GeoError: the file is missing or not an s5geo checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise S5GeoError(f"model file {str(path)!r} not found")
    if path.suffix.lower() == ".onnx":
        raise S5GeoError(f"{path}: an ONNX model has no PyTorch module; use s5geo.inference.load_onnx")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or unsafe files
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise S5GeoError(f"{path}: cannot read checkpoint ({first})") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise S5GeoError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    if CHECKPOINT_METADATA_KEY not in checkpoint:
        raise S5GeoError(f"{path}: checkpoint has no model metadata ({CHECKPOINT_METADATA_KEY!r})")
    metadata = ModelMetadata.from_dict(checkpoint[CHECKPOINT_METADATA_KEY])
    hparams = checkpoint.get("hyper_parameters", {})
    name = hparams.get("model") or metadata.model
    if not isinstance(name, str) or not name:
        raise S5GeoError(f"{path}: checkpoint does not name its model architecture ('model')")
    module = _build_model(
        name,
        num_classes=int(hparams.get("num_classes", metadata.num_classes)),
        in_channels=int(hparams.get("in_channels", metadata.in_channels)),
        **dict(hparams.get("model_kwargs") or {}),
    )
    prefix = "model."
    weights = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    if not weights:
        raise S5GeoError(f"{path}: checkpoint has no weights under the prefix {prefix!r}")
    try:
        module.load_state_dict(weights)
    except RuntimeError as error:
        raise S5GeoError(
            f"{path}: weights do not match model {name!r}: {str(error).splitlines()[0]}"
        ) from error
    return module.eval(), metadata
