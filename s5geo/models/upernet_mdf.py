"""The S5 multi-dataset network: one ViT-MoE encoder, one UPerNet decoder and classifier per dataset.

The S5 authors fine-tuned Vaihingen, Potsdam, OpenEarthMap and LoveDA at once: every training
iteration runs one batch of each dataset through the shared encoder (routed through that dataset's
FFN experts), that dataset's UPerNet decoder and its classifier. :class:`MultiDatasetUPerNet` is
that network. Its state dict holds ``encoder.*`` (as :class:`~s5geo.models.vit_moe.MoEUPerNet`),
``decoders.<dataset>.*`` and ``classifiers.<dataset>.*``; :meth:`MultiDatasetUPerNet.dataset_model`
gives one dataset's :class:`~s5geo.models.vit_moe.MoEUPerNet`, the network that prediction and
ONNX export take, and :meth:`MultiDatasetUPerNet.load_pretrained` loads the authors' multi-dataset
checkpoints (and S4P, MAE and s5geo ones) one dataset at a time through
:func:`s5geo.models.load_pretrained`.

Registered as ``upernet_mdf_vit_b_moe``, ``upernet_mdf_vit_l_moe`` and ``upernet_mdf_vit_tiny_moe``;
the ``datasets`` option names the datasets (expert order) and their class counts.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from s5geo.models.layers import NORM_TYPES, resize
from s5geo.models.registry import Variant, register_variants
from s5geo.models.upernet import UPerHead
from s5geo.models.vit import TINY_VIT_DEFAULTS, vit_size
from s5geo.models.vit_moe import S5_MDF_NUM_CLASSES, S5_MDF_TASKS, MoEUPerNet, ViTMoEEncoder

if TYPE_CHECKING:
    from s5geo.models.checkpoints import LoadReport

#: Registry-name prefix of the multi-dataset networks; the single-dataset ones drop ``_mdf``.
MDF_PREFIX = "upernet_mdf_"


def dataset_classes(datasets: Mapping[str, int] | Sequence[str] | None, num_classes: int) -> dict[str, int]:
    """Dataset name (lower case) -> class count, in expert order.

    Args:
        datasets: names with their class counts, names alone (each gets ``num_classes``), or None
            for the datasets of the released models (Vaihingen 5, Potsdam 5, OpenEarthMap 9, LoveDA 7).
        num_classes: class count of datasets given by name alone.

    Raises:
        ValueError: no dataset, a repeated or unusable name, or a class count below 1.
    """
    if datasets is None:
        return dict(S5_MDF_NUM_CLASSES)
    if isinstance(datasets, str):
        datasets = [datasets]
    pairs = (
        [(str(k), int(v)) for k, v in datasets.items()]
        if isinstance(datasets, Mapping)
        else [(str(name), int(num_classes)) for name in datasets]
    )
    if not pairs:
        raise ValueError("a multi-dataset network needs at least one dataset")
    out: dict[str, int] = {}
    for name, count in pairs:
        key = name.lower()
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", key):
            raise ValueError(f"dataset name {name!r} must be letters, digits and underscores")
        if key in out:
            raise ValueError(f"dataset {name!r} is given twice")
        if count < 1:
            raise ValueError(f"dataset {name!r} needs at least 1 class, got {count}")
        out[key] = count
    return out


class MultiDatasetUPerNet(nn.Module):
    """A shared :class:`ViTMoEEncoder` with one UPerNet decoder and classifier per dataset.

    ``forward(x, dataset)`` is the network of one dataset (its experts, decoder and classifier);
    :meth:`forward_datasets` runs one batch per dataset, the encoder once over all of them when
    their images have one size. Without ``dataset``, ``forward`` uses the selected dataset (the
    first until :meth:`select_dataset`), so the network also fits the single-model contract.

    Args:
        encoder: the ViT-MoE encoder; its ``tasks`` are the datasets, in expert order.
        num_classes: dataset -> class count, in the encoder's task order.
        channels: UPerHead channels.
        pool_scales: pyramid pooling sizes.
        dropout: Dropout2d before each classifier.
    """

    #: Final upsampling as the single-dataset models (bilinear, align_corners=True).
    align_corners: bool = True

    def __init__(
        self,
        encoder: ViTMoEEncoder,
        num_classes: Mapping[str, int],
        channels: int = 256,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        names = [str(n).lower() for n in num_classes]
        if names != list(encoder.tasks):
            raise ValueError(f"datasets {names} differ from the encoder's experts {list(encoder.tasks)}")
        self.encoder = encoder
        self.decoders = nn.ModuleDict(
            {name: UPerHead(encoder.out_channels, channels, pool_scales) for name in names}
        )
        self.dropout = nn.Dropout2d(dropout)
        self.num_classes: dict[str, int] = {
            n: int(k) for n, k in zip(names, num_classes.values(), strict=True)
        }
        self.classifiers = nn.ModuleDict(
            {name: self._new_classifier(channels, k) for name, k in self.num_classes.items()}
        )
        self.channels = channels
        self.pool_scales = tuple(pool_scales)
        self.channels_last = False
        self.model_name: str | None = None
        self._grad_checkpointing = False

    @staticmethod
    def _new_classifier(channels: int, num_classes: int) -> nn.Conv2d:
        conv = nn.Conv2d(channels, num_classes, kernel_size=1)
        if conv.weight.device.type != "meta":
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        return conv

    # --- datasets ------------------------------------------------------------------------------
    @property
    def datasets(self) -> list[str]:
        """Dataset names in expert order."""
        return list(self.num_classes)

    @property
    def dataset(self) -> str:
        """The selected dataset (used by ``forward`` without ``dataset``)."""
        return self.encoder.dataset

    @property
    def classifier(self) -> nn.Conv2d:
        """The selected dataset's classifier."""
        return self.classifiers[self.dataset]  # type: ignore[return-value]

    def _name(self, dataset: str) -> str:
        name = str(dataset).lower()
        if name not in self.num_classes:
            raise ValueError(
                f"unknown dataset {dataset!r}; this network's datasets: {', '.join(self.datasets)}"
            )
        return name

    def select_dataset(self, dataset: str) -> None:
        """Make ``dataset`` the one ``forward`` uses without ``dataset``."""
        self.encoder.select_dataset(self._name(dataset))

    # --- forward -------------------------------------------------------------------------------
    def _encode(self, x: Tensor) -> list[Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return list(self.encoder(x))

    def forward_features(self, x: Tensor, dataset: str | None = None) -> list[Tensor]:
        """Encoder features of a normalised batch through ``dataset``'s experts (selecting it)."""
        self.encoder.select_dataset(self._name(dataset or self.dataset))
        return self._encode(x)

    def forward_decode(
        self, features: Sequence[Tensor], size: Sequence[int], dataset: str | None = None
    ) -> Tensor:
        """``dataset``'s logits at ``size`` (H, W) from encoder features."""
        name = self._name(dataset or self.dataset)
        y = self.classifiers[name](self.dropout(self.decoders[name](list(features))))
        height, width = (s if isinstance(s, torch.SymInt) else int(s) for s in size[:2])
        return resize(y, (height, width), align_corners=self.align_corners)

    def forward(self, x: Tensor, dataset: str | None = None) -> Tensor:
        """``B x K x H x W`` logits of ``dataset`` (default: the selected one) for a normalised batch."""
        return self.forward_decode(self.forward_features(x, dataset), x.shape[-2:], dataset)

    def forward_datasets(self, images: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Logits of one normalised batch per dataset, keyed like ``images``.

        Batches of one image size share one encoder pass (each sample through its dataset's
        experts); batches of different sizes run one after the other, which activation
        checkpointing does not allow (the recomputation would meet the last dataset's routing).

        Raises:
            ValueError: an unknown dataset, or differing sizes with activation checkpointing on.
        """
        names = [self._name(n) for n in images]
        batches = list(images.values())
        if len(batches) == 1:
            return {names[0]: self(batches[0], names[0])}
        if len({tuple(b.shape[1:]) for b in batches}) > 1:
            if self._grad_checkpointing:
                raise ValueError(
                    "activation checkpointing needs every dataset's training batch at one size, got "
                    + ", ".join(f"{n} {tuple(b.shape[-2:])}" for n, b in zip(names, batches, strict=True))
                )
            return {name: self(batch, name) for name, batch in zip(names, batches, strict=True)}
        counts = [b.shape[0] for b in batches]
        self.encoder.route_batch(list(zip(names, counts, strict=True)))
        features = [f.split(counts) for f in self._encode(torch.cat(batches))]
        size = batches[0].shape[-2:]
        return {
            name: self.forward_decode([f[i] for f in features], size, name) for i, name in enumerate(names)
        }

    # --- classifier and options ------------------------------------------------------------------
    def reset_classifier(self, num_classes: int, dataset: str | None = None) -> None:
        """Replace ``dataset``'s (default: the selected one's) classifier with a fresh one."""
        name = self._name(dataset or self.dataset)
        old = self.classifiers[name]
        new = self._new_classifier(old.in_channels, num_classes).to(
            device=old.weight.device, dtype=old.weight.dtype
        )
        if self.channels_last:
            new = new.to(memory_format=torch.channels_last)
        self.classifiers[name] = new
        self.num_classes[name] = int(num_classes)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing in the encoder (trades compute for memory)."""
        self.encoder.set_grad_checkpointing(enable)
        self._grad_checkpointing = enable

    def set_channels_last(self, enable: bool = True) -> None:
        """Run in ``torch.channels_last`` memory format (parameters and inputs)."""
        self.to(memory_format=torch.channels_last if enable else torch.contiguous_format)
        self.channels_last = enable

    # --- optimiser helpers -----------------------------------------------------------------------
    def no_weight_decay(self) -> set[str]:
        """Parameter names that take no weight decay: norms, position embedding."""
        names = {f"encoder.{n}" for n in self.encoder.no_weight_decay()}
        for mod_name, module in self.named_modules():
            if isinstance(module, NORM_TYPES):
                names.update(f"{mod_name}.{p}" for p, _ in module.named_parameters(recurse=False))
        return names & {n for n, _ in self.named_parameters()}

    @property
    def num_layers(self) -> int:
        """Layer-decay groups: the encoder's plus one for every decoder and classifier."""
        return self.encoder.num_layers + 1

    def layer_id(self, name: str) -> int:
        """Layer-decay group of a parameter: encoder layers, then decoders and classifiers on top."""
        if name.startswith("encoder."):
            return self.encoder.layer_id(name[len("encoder.") :])
        return self.num_layers - 1

    # --- one dataset ---------------------------------------------------------------------------
    def single_model_name(self) -> str | None:
        """Registry name of one dataset's network (``upernet_mdf_vit_b_moe`` -> ``upernet_vit_b_moe``)."""
        if not self.model_name or not self.model_name.startswith(MDF_PREFIX):
            return None
        return "upernet_" + self.model_name[len(MDF_PREFIX) :]

    def dataset_model(self, dataset: str, share: bool = False) -> MoEUPerNet:
        """``dataset``'s network: the encoder (all experts, routed through its own), decoder and classifier.

        Args:
            dataset: the dataset.
            share: return a view on this network's modules (loading weights into it loads them
                here; it also selects ``dataset`` here) instead of an independent copy.
        """
        name = self._name(dataset)
        with torch.device("meta"):  # its own decoder and classifier are replaced right away
            model = MoEUPerNet(
                self.encoder, self.num_classes[name], self.channels, self.pool_scales, self.dropout.p
            )
        model.decoder = self.decoders[name]
        model.classifier = self.classifiers[name]  # type: ignore[assignment]
        model.channels_last = self.channels_last
        model.model_name = self.single_model_name()
        if not share:
            model = copy.deepcopy(model)
        model.select_dataset(name)
        return model

    def dataset_state_dict(self, dataset: str) -> dict[str, Tensor]:
        """The state dict of :meth:`dataset_model` (``encoder.``, ``decoder.``, ``classifier.`` keys)."""
        return self.dataset_model(dataset, share=True).state_dict()

    # --- checkpoints -------------------------------------------------------------------------------
    def load_pretrained(
        self,
        source: str | Path | Mapping[str, Any],
        kind: str = "auto",
        strict: bool = False,
        adapt: bool = True,
    ) -> LoadReport:
        """Load a checkpoint into every dataset's network with :func:`s5geo.models.load_pretrained`.

        * The authors' multi-dataset models (``semsegdecoder_<dataset>``, ``semseghead_<dataset>``):
          each dataset gets its own decoder, classifier and expert (their experts are in the
          order ``vaihingen, potsdam, openearthmap, loveda`` and are matched by name); a dataset
          they lack gets the encoder only.
        * One decoder (S5 S4P models, single-dataset s5geo checkpoints): every dataset gets it, as
          the authors' fine-tuning starts; a plain-ViT FFN is split into shared rows and experts.
        * Encoder-only layouts (MAE): the encoder.
        * A checkpoint of this network (s5geo, ``decoders.*``): loaded as it is.

        Args:
            source: checkpoint path or loaded dict.
            kind: layout, as :func:`s5geo.models.load_pretrained`.
            strict: raise unless every tensor of this network is loaded and every checkpoint
                tensor used or deliberately dropped.
            adapt: resize position and patch embeddings and stems (see :func:`s5geo.models.load_pretrained`).

        Returns:
            One :class:`~s5geo.models.LoadReport` in this network's key names.

        Raises:
            CheckpointError: unreadable or unrecognised file, or ``strict`` and not ``report.ok``.
        """
        from s5geo.models.checkpoints import (
            S5_MDF_PREFIXES,
            CheckpointError,
            detect_kind,
            read_state_dict,
        )
        from s5geo.models.checkpoints import load_pretrained as load_into

        path = str(source) if isinstance(source, str | Path) else "<state dict>"
        state = read_state_dict(source)
        if kind == "auto":
            kind = detect_kind(state)
        if kind == "s5geo":
            plain = {k.removeprefix("model."): v for k, v in state.items()}
            if any(k.startswith("decoders.") for k in plain):
                report = load_into(self, plain, kind="s5geo", strict=strict, adapt=adapt)
                report.path = path
                return report
        heads = [d for d, (_, head) in S5_MDF_PREFIXES.items() if kind == "s5" and f"{head}weight" in state]
        dropped: list[str] = []
        if heads:
            state, dropped = _match_experts(state, self.datasets)
        previous = self.dataset
        reports: dict[str, tuple[LoadReport, bool]] = {}
        try:
            for name in self.datasets:
                view = self.dataset_model(name, share=True)
                if heads and name not in heads:
                    encoder = {k: v for k, v in state.items() if k.startswith("encoder.")}
                    reports[name] = (load_into(view, encoder, kind="s5", adapt=adapt), False)
                else:
                    options = {"dataset": name} if heads else {}
                    reports[name] = (load_into(view, state, kind=kind, adapt=adapt, **options), True)  # type: ignore[arg-type]
        finally:
            self.select_dataset(previous)
        report = _merge_reports(reports, path, kind, dropped)
        if strict and not report.ok:
            raise CheckpointError(f"strict loading failed: {report}")
        return report


def _match_experts(
    state: Mapping[str, Tensor], datasets: Sequence[str]
) -> tuple[dict[str, Tensor], list[str]]:
    """Renumber the experts of an authors' multi-dataset checkpoint to the order of ``datasets``.

    Returns:
        The renumbered dict and the checkpoint keys of experts no dataset takes.
    """
    pattern = re.compile(r"^(encoder\.layers\.\d+\.ffn\.experts\.)(\d+)(\..*)$")
    found = {int(m.group(2)) for k in state if (m := pattern.match(k))}
    if found != set(range(len(S5_MDF_TASKS))):
        return dict(state), []  # not the released expert layout: leave the indices alone
    target = {S5_MDF_TASKS.index(n): i for i, n in enumerate(datasets) if n in S5_MDF_TASKS}
    out: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        match = pattern.match(key)
        if match is None:
            out[key] = value
        elif int(match.group(2)) in target:
            out[f"{match.group(1)}{target[int(match.group(2))]}{match.group(3)}"] = value
        else:
            dropped.append(key)
    return out, dropped


def _network_key(key: str, dataset: str) -> str:
    """A key of one dataset's network -> the multi-dataset network's key."""
    for part, group in (("decoder.", "decoders"), ("classifier.", "classifiers")):
        if key.startswith(part):
            return f"{group}.{dataset}.{key[len(part) :]}"
    return key


def _merge_reports(
    reports: Mapping[str, tuple[LoadReport, bool]], path: str, kind: str, dropped: list[str]
) -> LoadReport:
    """One report in network key names from the per-dataset reports (``(report, full state)``)."""
    from s5geo.models.checkpoints import LoadReport

    loaded: set[str] = set()
    missing: set[str] = set()
    unexpected: set[str] = set()
    adapted: set[str] = set()
    mismatched: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {}
    dropped_by_all: set[str] | None = None
    for name, (report, full) in reports.items():
        loaded.update(_network_key(k, name) for k in report.loaded)
        missing.update(_network_key(k, name) for k in report.missing)
        unexpected.update(_network_key(k, name) for k in report.unexpected)
        adapted.update(_network_key(k, name) for k in report.adapted)
        for key, have, want in report.mismatched:
            mismatched.setdefault(_network_key(key, name), (_network_key(key, name), have, want))
        if full:
            # another dataset's decoder is dropped by this one's view but loaded by its own
            dropped_by_all = (
                set(report.dropped) if dropped_by_all is None else dropped_by_all & set(report.dropped)
            )
    return LoadReport(
        path=path,
        kind=kind,
        loaded=sorted(loaded),
        missing=sorted(missing - loaded - set(mismatched)),
        unexpected=sorted(unexpected),
        mismatched=[mismatched[k] for k in sorted(mismatched) if k not in loaded],
        dropped=sorted((dropped_by_all or set()) | set(dropped)),
        adapted=sorted(adapted),
    )


def build_mdf_upernet(
    encoder: Callable[..., ViTMoEEncoder],
    num_classes: int,
    in_channels: int = 3,
    datasets: Mapping[str, int] | Sequence[str] | None = None,
    channels: int = 256,
    dropout: float = 0.1,
    grad_checkpointing: bool = False,
    **encoder_options: Any,
) -> MultiDatasetUPerNet:
    """A :class:`MultiDatasetUPerNet` whose encoder has one expert per dataset.

    Args:
        encoder: ViT-MoE encoder factory.
        num_classes: class count of datasets named without one.
        in_channels: input bands.
        datasets: dataset -> class count (or names alone), in expert order; default the released
            models' ``vaihingen: 5, potsdam: 5, openearthmap: 9, loveda: 7``.
        channels: UPerHead channels.
        dropout: Dropout2d before the classifiers.
        grad_checkpointing: activation checkpointing in the encoder.
        **encoder_options: passed to ``encoder`` (``part_features``, ``img_size``, stochastic depth, ...).

    Raises:
        ValueError: bad ``datasets``, or encoder options that name the experts themselves.
    """
    classes = dataset_classes(datasets, num_classes)
    clashes = sorted({"tasks", "num_experts", "dataset"} & set(encoder_options))
    if clashes:
        raise ValueError(f"{', '.join(clashes)}: the experts follow the datasets option")
    names = list(classes)
    vit = encoder(
        in_channels=in_channels, tasks=names, num_experts=len(names), dataset=names[0], **encoder_options
    )
    model = MultiDatasetUPerNet(vit, classes, channels, dropout=dropout)
    model.set_grad_checkpointing(grad_checkpointing)
    return model


register_variants(
    "upernet_mdf",
    build_mdf_upernet,
    {
        "vit_b_moe": Variant(
            vit_size(ViTMoEEncoder, "b"),
            "the S5 multi-dataset ViT-B-MoE UperNet (experts of 256 channels, one per dataset)",
        ),
        "vit_l_moe": Variant(
            vit_size(ViTMoEEncoder, "l"),
            "the S5 multi-dataset ViT-L-MoE UperNet (experts of 256 channels, one per dataset)",
        ),
        "vit_tiny_moe": Variant(
            vit_size(ViTMoEEncoder, "tiny"),
            "tiny multi-dataset ViT-MoE UperNet (experts of 16 channels)",
            {**TINY_VIT_DEFAULTS, "part_features": 16},
        ),
    },
)
