"""Export trained s5geo models to ONNX with their metadata.

The ONNX graph is the **bare network on normalised input**: ``logits = net((raw - mean) / std)``
with input ``image`` (``batch x C x height x width``, float32) and output ``logits``
(``batch x K x height x width``). Batch, height and width are dynamic. Normalisation is not
baked in: every runtime (``s5geo segment``, the QGIS plugin, Deepness-style tools) reads the
raw-unit ``mean``/``std`` from the metadata and normalises, exactly as for PyTorch checkpoints, so
one code path serves both. The :class:`~s5geo.metadata.ModelMetadata` JSON is stored in the model's
``metadata_props`` under the key ``s5geo``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s5geo.errors import OutputExistsError, S5GeoError
from s5geo.inference.files import check_not_input, check_writable_folder, remove_stale_temps, temp_name
from s5geo.metadata import METADATA_KEY, ModelMetadata

logger = logging.getLogger("s5geo.inference")

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 18
#: Names given to the dynamic dimensions of the input and output.
DYNAMIC_DIMS = {0: "batch", 2: "height", 3: "width"}


class _Logits(nn.Module):
    """Returns plain logits (unwraps ``{"out": ...}`` dicts of torchvision-style models)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = self.module(image)
        return out["out"] if isinstance(out, dict) else out


def _export_graph(module: nn.Module, sample: torch.Tensor, path: Path, opset: int) -> str:
    """Write the ONNX graph with dynamic batch/height/width; return the exporter used."""

    def export(**options: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (sample,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], **options
            )

    dim = torch.export.Dim.DYNAMIC
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            export(
                dynamo=True,
                dynamic_shapes={"image": dict.fromkeys(DYNAMIC_DIMS, dim)},
                opset_version=opset,
                external_data=False,
            )
        return "dynamo"
    except Exception as error:  # the dynamo exporter raises many types; fall back below
        logger.info("dynamo ONNX export failed (%s); using the TorchScript exporter", error)
    axes = {name: dict(DYNAMIC_DIMS) for name in (INPUT_NAME, OUTPUT_NAME)}
    export(dynamo=False, dynamic_axes=axes, opset_version=min(opset, 17))
    return "torchscript"


def _finalise(path: Path, metadata: ModelMetadata) -> None:
    """Name the dynamic dims, store the metadata and check the model."""
    import onnx

    model = onnx.load(str(path))
    renames: dict[str, str] = {}
    for value in (*model.graph.input, *model.graph.output):
        for index, dim in enumerate(value.type.tensor_type.shape.dim):
            if index in DYNAMIC_DIMS and dim.dim_param:
                renames.setdefault(dim.dim_param, DYNAMIC_DIMS[index])
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renames:
                dim.dim_param = renames[dim.dim_param]
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {METADATA_KEY: metadata.to_json()})
    model.doc_string = f"s5geo {metadata.model or 'model'}: {', '.join(metadata.classes)}"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def verify_onnx(
    module: nn.Module,
    path: str | Path,
    sizes: list[tuple[int, int, int]],
    in_channels: int,
    seed: int = 0,
) -> float:
    """Run the ONNX model and ``module`` on random inputs; return the largest logit difference.

    Args:
        module: the PyTorch network (eval mode).
        path: the exported ONNX file.
        sizes: ``(batch, height, width)`` shapes to try (different sizes prove the dynamic axes).
        in_channels: number of input bands.
        seed: random seed.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for batch, height, width in sizes:
        x = rng.standard_normal((batch, in_channels, height, width), dtype=np.float32)
        (onnx_logits,) = session.run(None, {INPUT_NAME: x})
        with torch.inference_mode():
            torch_logits = _Logits(module)(torch.from_numpy(x)).float().numpy()
        if onnx_logits.shape != torch_logits.shape:
            raise S5GeoError(
                f"{path}: ONNX output shape {onnx_logits.shape} differs from PyTorch "
                f"{torch_logits.shape} for input {x.shape}"
            )
        scale = max(1.0, float(np.abs(torch_logits).max()))
        worst = max(worst, float(np.abs(onnx_logits - torch_logits).max()) / scale)
    return worst


def export_onnx(
    module: nn.Module,
    metadata: ModelMetadata,
    output: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    verify: bool = True,
    tolerance: float = 1e-3,
) -> Path:
    """Export ``module`` (normalised input -> logits) to ONNX with ``metadata``.

    Args:
        module: the network.
        metadata: its metadata (classes, colours, bands, raw-unit mean/std, window, overlap, gsd).
        output: the ``.onnx`` file to write (written to a temporary name, renamed when complete).
        opset: ONNX opset version.
        overwrite: replace an existing ``output``.
        verify: compare ONNX Runtime with PyTorch on random inputs of three sizes (one not square).
        tolerance: largest allowed logit difference relative to the logit magnitude.

    Returns:
        The path of the ONNX file.

    Raises:
        OutputExistsError: ``output`` exists and ``overwrite`` is False.
        S5GeoError: the export failed or the exported model disagrees with PyTorch.
    """
    output = Path(output)
    if output.exists() and not overwrite:
        raise OutputExistsError(f"output {str(output)!r} exists (use --overwrite to replace it)")
    if output.is_dir():
        raise S5GeoError(f"output {str(output)!r} is a folder")
    check_writable_folder(output.parent)
    remove_stale_temps(output)
    module = module.eval().cpu()
    wrapped = _Logits(module).eval()
    window = int(metadata.window_size)
    # batch 2: a batch-1 example lets the tracer fix the batch size where it meets a broadcast
    sample = torch.zeros(2, metadata.in_channels, window, window)
    temp = temp_name(output).with_suffix(".part" + output.suffix)
    try:
        try:
            exporter = _export_graph(wrapped, sample, temp, opset)
        except Exception as error:  # any exporter failure is the user's model not exporting
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise S5GeoError(f"cannot export the model to ONNX: {first}") from error
        _finalise(temp, metadata)
        if verify:
            # multiples of 32 suit every backbone's stride and patch size; one shape is not square
            half = max(32, window // 64 * 32)
            sizes = [(1, window, window), (2, half, half + 32), (1, half + 32, window)]
            try:
                difference = verify_onnx(module, temp, sizes, metadata.in_channels)
            except S5GeoError:
                raise
            except Exception as error:  # onnxruntime and the model raise many types
                first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
                raise S5GeoError(f"the ONNX export fails verification: {first}") from error
            if difference > tolerance:
                raise S5GeoError(
                    f"the ONNX export differs from PyTorch (relative logit difference "
                    f"{difference:.2g} > {tolerance:g})"
                )
            logger.info("ONNX (%s exporter) matches PyTorch: max diff %.2g", exporter, difference)
        os.replace(temp, output)
    finally:
        temp.unlink(missing_ok=True)
    return output


def export_checkpoint(
    checkpoint: str | Path, output: str | Path, **kwargs: object
) -> tuple[Path, ModelMetadata]:
    """Export an s5geo task checkpoint to ONNX (see :func:`export_onnx` for ``kwargs``)."""
    from s5geo.inference.loading import load_model

    output = Path(output)
    check_not_input(output, [checkpoint])
    if output.exists() and not kwargs.get("overwrite"):
        raise OutputExistsError(f"output {str(output)!r} exists (use --overwrite to replace it)")
    module, metadata = load_model(checkpoint)
    return export_onnx(module, metadata, output, **kwargs), metadata  # type: ignore[arg-type]
