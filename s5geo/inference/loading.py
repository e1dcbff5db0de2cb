"""Load trained s5geo models for inference."""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import pickle
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from s5geo.errors import S5GeoError
from s5geo.metadata import CHECKPOINT_METADATA_KEY, ModelMetadata

_T = TypeVar("_T")


def checkpoint_safe_globals() -> list[Any]:
    """Plain-data types besides tensors that s5geo and Lightning checkpoints may hold.

    They are allowed for ``torch.load(weights_only=True)``; none of them runs code when unpickled.
    Lightning saves hyper-parameters (possibly ``argparse.Namespace`` or paths), optimizer and
    scheduler state and callback state; s5geo code may store numpy scalars.
    """
    core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [
        argparse.Namespace,
        core.multiarray.scalar,
        np.dtype,
        pathlib.PosixPath,
        pathlib.PurePosixPath,
        pathlib.WindowsPath,
        pathlib.PureWindowsPath,
    ]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [t for n, t in vars(dtypes).items() if n.endswith("DType") and isinstance(t, type)]
    return allowed


@contextlib.contextmanager
def safe_checkpoint_loading() -> Iterator[None]:
    """Context in which ``torch.load(weights_only=True)`` accepts :func:`checkpoint_safe_globals`.

    Also hides torch's notice about pickle protocols, which says nothing a user can act on.
    """
    with torch.serialization.safe_globals(checkpoint_safe_globals()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pickle protocol.*", category=UserWarning)
        yield


def checkpoint_error(path: str | Path, error: BaseException) -> S5GeoError:
    """Return a one-line :class:`S5GeoError` for a checkpoint that ``torch.load`` refused.

    Torch's own message advises retrying with ``weights_only=False``, i.e. running whatever code the
    file holds; this message names the real cause instead and never gives that advice.
    """
    text = str(error)
    unsafe = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    if unsafe:
        return S5GeoError(
            f"{path}: refused: the checkpoint holds a {unsafe.group(1)} object, which could run code "
            "when loaded; s5geo loads only tensors and plain data (re-save the weights from a trusted "
            "session)"
        )
    if isinstance(error, EOFError) or "central directory" in text or "zip archive" in text:
        return S5GeoError(f"{path}: not a PyTorch checkpoint, or truncated or damaged")
    if isinstance(error, OSError) and error.strerror:
        return S5GeoError(f"{path}: cannot read checkpoint ({error.strerror})")
    lines = [line.strip() for line in text.splitlines() if line.strip() and "weights_only" not in line]
    detail = lines[0] if lines and "WeightsUnpickler" not in lines[0] else type(error).__name__
    return S5GeoError(f"{path}: not a PyTorch checkpoint, or damaged ({detail})")


def _existing_checkpoint(path: str | Path) -> Path:
    """Return ``path`` as a ``Path``; raises ``S5GeoError`` when no such file exists."""
    path = Path(path)
    if not path.is_file():
        raise S5GeoError(f"checkpoint {str(path)!r} not found")
    return path


def load_checkpoint_file(path: str | Path, **kwargs: Any) -> Any:
    """Read a checkpoint with ``torch.load(weights_only=True)``; never unpickles code.

    Args:
        path: checkpoint file.
        **kwargs: more ``torch.load`` arguments (``map_location``, ``mmap``).

    Raises:
        S5GeoError: the file is missing, not a checkpoint, or holds objects other than plain data.
    """
    path = _existing_checkpoint(path)
    kwargs.setdefault("map_location", "cpu")
    try:
        with safe_checkpoint_loading():
            return torch.load(path, weights_only=True, **kwargs)
    except Exception as error:  # torch raises many types for corrupt or unsafe files
        raise checkpoint_error(path, error) from error


def read_checkpoint_metadata(path: str | Path, key: str = CHECKPOINT_METADATA_KEY) -> dict[str, Any] | None:
    """Return a checkpoint's metadata dict (memory-mapped read), None when absent or unreadable.

    Args:
        path: checkpoint file.
        key: the entry to read: ``s5geo_metadata`` (one network), or ``s5geo_datasets`` (each
            dataset's metadata in a multi-dataset checkpoint).
    """
    try:
        with safe_checkpoint_loading():
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint, or not readable: the metadata is optional for callers
        return None
    metadata = checkpoint.get(key) if isinstance(checkpoint, dict) else None
    return metadata if isinstance(metadata, dict) else None


def load_from_checkpoint(cls: type[_T], path: str | Path, **kwargs: Any) -> _T:
    """``cls.load_from_checkpoint(path, weights_only=True, **kwargs)`` with one-line errors.

    Use it instead of calling a LightningModule's ``load_from_checkpoint`` directly: Lightning
    would otherwise leave ``weights_only`` to torch's default, which an environment variable
    (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) can turn off.

    Args:
        cls: a ``LightningModule`` or ``LightningDataModule`` class.
        path: checkpoint file.
        **kwargs: passed on (``map_location``, ``strict``, hyper-parameter overrides...).

    Raises:
        S5GeoError: as :func:`load_checkpoint_file`.
    """
    path = _existing_checkpoint(path)
    kwargs["weights_only"] = True
    try:
        with safe_checkpoint_loading():
            return cls.load_from_checkpoint(path, **kwargs)  # type: ignore[attr-defined]
    except S5GeoError:
        raise
    except (pickle.UnpicklingError, EOFError, OSError) as error:
        raise checkpoint_error(path, error) from error
    except RuntimeError as error:
        if "PytorchStreamReader" not in str(error) and "zip archive" not in str(error):
            raise
        raise checkpoint_error(path, error) from error


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
    checkpoint = load_checkpoint_file(path)
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
