"""Export trained s5geo models to ONNX with their metadata.

The ONNX graph is the **bare network on normalised input**: ``logits = net((raw - mean) / std)``
with input ``image`` (``batch x C x height x width``, float32) and output ``logits``
(``batch x K x height x width``). Batch, height and width are dynamic. Normalisation is not
baked in: every runtime (``s5geo segment``, the QGIS plugin, Deepness-style tools) reads the
raw-unit ``mean``/``std`` from the metadata and normalises, exactly as for PyTorch checkpoints, so
one code path serves both. The :class:`~s5geo.metadata.ModelMetadata` JSON is stored in the model's
``metadata_props`` under the key ``s5geo``.

:func:`export_checkpoint` exports an s5geo task checkpoint, or with ``head=`` one dataset's head of
the S5 authors' multi-dataset fine-tuned models (:func:`load_s5_head`, :func:`s5_head_metadata`).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import math
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s5geo.errors import OutputExistsError, S5GeoError
from s5geo.inference.files import check_not_input, check_writable_folder, remove_stale_temps, temp_name
from s5geo.metadata import CHECKPOINT_DATASETS_KEY, METADATA_KEY, ModelMetadata
from s5geo.models.checkpoints import S5_MDF_PREFIXES

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
            # multiples of 32 suit every backbone's stride and patch size; one shape is not square and
            # at least 256 px tall: a graph traced on small windows can keep shapes larger inputs break
            half = max(32, window // 64 * 32)
            sizes = [(1, window, window), (2, half, half + 32), (1, max(window + 32, 256), half + 32)]
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


#: Datamodule of each dataset of the S5 multi-dataset heads: its dataset's classes and colours (in
#: the authors' class order: ISPRS without clutter, LoveDA without no-data, OpenEarthMap with
#: "other" first) and its gsd.
S5_HEAD_DATAMODULES: dict[str, str] = {
    "vaihingen": "s5geo.datamodules.vaihingen:VaihingenDataModule",
    "potsdam": "s5geo.datamodules.potsdam:PotsdamDataModule",
    "openearthmap": "s5geo.datamodules.openearthmap:OpenEarthMapDataModule",
    "loveda": "s5geo.datamodules.loveda:LoveDADataModule",
}
#: Window the authors fine-tuned with (their crop size).
S5_HEAD_WINDOW = 512
#: Weights entry whose normalisation the released S5 models share (ImageNet mean/std on RGB).
_S5_NORMALISATION_ENTRY = "s5_moe_mdf_vit_b"


def s5_heads(state: Mapping[str, Any]) -> list[str]:
    """The datasets whose decoder and classifier a flat S5 checkpoint dict holds, in expert order."""
    return [name for name, (_, head) in S5_MDF_PREFIXES.items() if f"{head}weight" in state]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)


def _s5_architecture(
    state: Mapping[str, torch.Tensor], head: str, path: str
) -> tuple[str | None, dict[str, Any]]:
    """Registry name (None for a ViT of no registered width and depth) and the options the shapes give."""
    from s5geo.models.vit import VIT_CONFIGS

    proj = state.get("encoder.patch_embed.projection.weight")
    layers = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    if proj is None or not layers:
        raise S5GeoError(
            f"{path}: no ViT encoder in the S5 layout (encoder.layers.N, patch_embed.projection)"
        )
    dim, depth = int(proj.shape[0]), max(layers) + 1
    experts = [k for k in state if re.fullmatch(r"encoder\.layers\.0\.ffn\.experts\.\d+\.weight", k)]
    options: dict[str, Any] = {"in_channels": int(proj.shape[1]), "patch_size": int(proj.shape[-1])}
    fc1 = state.get("encoder.layers.0.ffn.layers.0.0.weight")
    if fc1 is not None:
        options["mlp_ratio"] = fc1.shape[0] / dim
    pos_embed = state.get("encoder.pos_embed")
    if pos_embed is not None and pos_embed.ndim == 3:
        for tokens in (pos_embed.shape[1], pos_embed.shape[1] - 1):  # without, then with a class slot
            if math.isqrt(tokens) ** 2 == tokens:
                options["img_size"] = math.isqrt(tokens) * options["patch_size"]
                break
    decoder = S5_MDF_PREFIXES[head][0]
    bottleneck = state.get(f"{decoder}decode_head.bottleneck.conv.weight")
    if bottleneck is not None:
        options["channels"] = int(bottleneck.shape[0])
    if experts:
        options["part_features"] = int(state[experts[0]].shape[0])
    size = next((s for s, c in VIT_CONFIGS.items() if (c["embed_dim"], c["depth"]) == (dim, depth)), None)
    if size is None:
        return None, options
    return f"upernet_vit_{size}" + ("_moe" if experts else ""), options


def load_s5_head(
    source: str | Path | Mapping[str, Any],
    head: str,
    model: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, str]:
    """Build one dataset's network from an S5 multi-dataset fine-tuned checkpoint.

    Every tensor of that dataset (encoder, its experts, decoder and classifier) must load; the
    other datasets' decoders and classifiers are dropped. The file is read with
    ``torch.load(weights_only=True)``.

    Args:
        source: the authors' file (e.g. ``s5_vit_b_moe_mdf.pth``) or its loaded dict.
        head: the dataset (``vaihingen``, ``potsdam``, ``openearthmap``, ``loveda``).
        model: registry name of the architecture; default inferred from the tensor shapes
            (``upernet_vit_b_moe`` for width 768 and 12 blocks, ``upernet_vit_l_moe`` for 1024 and 24).
        model_kwargs: model options overriding those inferred from the shapes (patch and grid
            size, decoder channels, expert channels).

    Returns:
        The network in eval mode and its registry name.

    Raises:
        S5GeoError: one line naming the file: unreadable, no per-dataset heads, unknown head, an
            architecture that cannot be inferred, or tensors that do not fit it.
    """
    from s5geo.models import build_model, load_pretrained
    from s5geo.models.checkpoints import read_state_dict

    path = str(source) if isinstance(source, str | Path) else "<state dict>"
    state = read_state_dict(source)
    heads = s5_heads(state)
    if not heads:
        raise S5GeoError(
            f"{path}: --head needs an S5 multi-dataset model with per-dataset heads, this file has none"
        )
    name = head.lower()
    if name not in heads:
        raise S5GeoError(f"{path}: no head {head!r}; its heads: {', '.join(heads)}")
    inferred, options = _s5_architecture(state, name, path)
    hint = "check --model" if model else "name the architecture with --model"
    model = model or inferred
    if model is None:
        width = state["encoder.patch_embed.projection.weight"].shape[0]
        raise S5GeoError(f"{path}: a ViT of width {width} is no registered size; {hint}")
    classifier = state[f"{S5_MDF_PREFIXES[name][1]}weight"]
    options = {**options, **dict(model_kwargs or {})}
    if not model.endswith("_moe"):
        options.pop("part_features", None)
    try:
        module = build_model(model, num_classes=int(classifier.shape[0]), **options)
    except (KeyError, TypeError, ValueError) as error:
        raise S5GeoError(f"{path}: cannot build {model!r}: {_first_line(error)}") from error
    try:
        report = load_pretrained(module, state, kind="s5", dataset=name)
    except S5GeoError as error:
        raise S5GeoError(f"{path}: {_first_line(error)}") from error
    if not report.ok:
        problems = [*report.missing, *report.unexpected, *(k for k, _, _ in report.mismatched)]
        raise S5GeoError(
            f"{path}: the {name} head does not fit {model}: {len(report.missing)} missing, "
            f"{len(report.unexpected)} unexpected, {len(report.mismatched)} mismatched tensors "
            f"(first: {problems[0]}); {hint}"
        )
    return module.eval(), model


def s5_head_metadata(head: str, model: str, num_classes: int, entry: Any = None) -> ModelMetadata:
    """Metadata of one dataset's head of the S5 authors' models.

    Classes, colours and gsd are those of the s5geo dataset and datamodule; input: bands 1-3 of
    8-bit imagery (RGB; for Vaihingen the IR-R-G of its tiles), ImageNet mean/std in 0-255 units as
    the authors normalised, window 512.

    Args:
        head: the dataset.
        model: the architecture's registry name (informational).
        num_classes: classes of the checkpoint's head (checked against the dataset's).
        entry: the :class:`~s5geo.models.weights.WeightsEntry` of the file, if any (its mean/std).

    Raises:
        S5GeoError: unknown dataset, or a class count that differs from the dataset's.
    """
    from s5geo.models.weights import get_weights

    if head not in S5_HEAD_DATAMODULES:
        raise S5GeoError(f"no s5geo dataset for head {head!r}; known: {', '.join(S5_HEAD_DATAMODULES)}")
    module_name, class_name = S5_HEAD_DATAMODULES[head].split(":")
    datamodule = getattr(importlib.import_module(module_name), class_name)
    dataset = datamodule.dataset
    if len(dataset.classes) != num_classes:
        raise S5GeoError(
            f"the {head} head has {num_classes} classes but s5geo's {dataset.__name__} has "
            f"{len(dataset.classes)} ({', '.join(dataset.classes)})"
        )
    entry = entry or get_weights(_S5_NORMALISATION_ENTRY)
    return ModelMetadata(
        classes=list(dataset.classes),
        colors=list(dataset.colors),
        bands=[1, 2, 3],
        mean=[round(255.0 * m, 6) for m in entry.mean],
        std=[round(255.0 * s, 6) for s in entry.std],
        window_size=S5_HEAD_WINDOW,
        gsd=datamodule.gsd,
        dtype="uint8",
        scale=255.0,
        model=model,
    )


def export_s5_head(
    checkpoint: str | Path,
    output: str | Path,
    head: str,
    model: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[Path, ModelMetadata]:
    """Export one dataset's head of an S5 multi-dataset model (file or registry name) to ONNX.

    Args:
        checkpoint: the authors' file, or a weights registry name (``s5_moe_mdf_vit_b``) resolved
            through the weights cache.
        output: the ``.onnx`` file.
        head: the dataset whose experts, decoder and classifier to export.
        model: the architecture (default: inferred from the tensor shapes).
        model_kwargs: model options overriding the inferred ones.
        **kwargs: :func:`export_onnx` options (``opset``, ``overwrite``, ``verify``, ``tolerance``).
    """
    from s5geo.models.weights import resolve_weights

    output = Path(output)
    path, entry = resolve_weights(checkpoint)
    check_not_input(output, [path])
    if output.exists() and not kwargs.get("overwrite"):
        raise OutputExistsError(f"output {str(output)!r} exists (use --overwrite to replace it)")
    module, name = load_s5_head(path, head, model, model_kwargs)
    try:
        metadata = s5_head_metadata(head.lower(), name, module.classifier.out_channels, entry)
    except S5GeoError as error:
        raise S5GeoError(f"{path}: {error}") from error
    return export_onnx(module, metadata, output, **kwargs), metadata


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path,
    head: str | None = None,
    model: str | None = None,
    **kwargs: Any,
) -> tuple[Path, ModelMetadata]:
    """Export an s5geo task checkpoint to ONNX (see :func:`export_onnx` for ``kwargs``).

    With ``head``, ``checkpoint`` is a multi-dataset checkpoint of s5geo
    (:func:`s5geo.tasks.multi_dataset.export_dataset_head`) or an S5 multi-dataset model of the
    authors (see :func:`export_s5_head`), and that dataset's network is exported.
    """
    from s5geo.inference.loading import load_model, read_checkpoint_metadata

    datasets = (
        read_checkpoint_metadata(checkpoint, CHECKPOINT_DATASETS_KEY) if Path(checkpoint).is_file() else None
    )
    if datasets and model is None:
        if head is None:
            raise S5GeoError(
                f"{checkpoint}: a multi-dataset checkpoint; choose a dataset with --head "
                f"({', '.join(datasets)})"
            )
        from s5geo.tasks.multi_dataset import export_dataset_head

        return export_dataset_head(checkpoint, output, head, **kwargs)
    if head is not None:
        return export_s5_head(checkpoint, output, head, model, **kwargs)
    if model is not None:
        raise S5GeoError(f"{checkpoint}: --model applies to the S5 multi-dataset models, with --head")
    output = Path(output)
    check_not_input(output, [checkpoint])
    if output.exists() and not kwargs.get("overwrite"):
        raise OutputExistsError(f"output {str(output)!r} exists (use --overwrite to replace it)")
    try:
        module, metadata = load_model(checkpoint)
    except S5GeoError as error:
        heads = _heads_of(checkpoint)
        if heads:
            raise S5GeoError(
                f"{checkpoint}: an S5 multi-dataset model; choose a head with --head ({', '.join(heads)})"
            ) from error
        raise
    return export_onnx(module, metadata, output, **kwargs), metadata


def _heads_of(checkpoint: str | Path) -> list[str]:
    """The S5 per-dataset heads of a file or registry name; empty when it has none or is unreadable."""
    from s5geo.models.checkpoints import read_state_dict
    from s5geo.models.weights import list_weights

    if not Path(checkpoint).is_file():
        entry = next((w for w in list_weights() if w.name == str(checkpoint)), None)
        moe = entry is not None and entry.architecture.endswith("_moe")
        return list(S5_MDF_PREFIXES) if moe else []
    try:
        return s5_heads(read_state_dict(checkpoint))
    except S5GeoError:
        return []
