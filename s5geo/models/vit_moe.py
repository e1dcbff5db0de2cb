"""ViT with mixture-of-experts FFNs and its UPerNet: the S5 authors' multi-dataset fine-tuned models.

The authors fine-tuned one network on Vaihingen, Potsdam, OpenEarthMap and LoveDA at once. The
encoder is their ViT with, in every block, an FFN whose output is split: the first
``embed_dim - part_features`` channels come from a shared last layer, the last ``part_features``
from one expert layer per dataset (all experts read the same hidden activations). Each dataset also
has its own UPerNet decoder and classifier. An s5geo model is that network for **one** dataset: the
encoder holds every expert and routes through the chosen dataset's, and the decoder and classifier
are that dataset's (:func:`s5geo.models.load_pretrained` with ``dataset=`` picks them from the
checkpoint and selects the expert).

Released settings: 4 experts in the order ``vaihingen, potsdam, openearthmap, loveda``, 256 expert
channels, 512-pixel position-embedding grid; classes: Vaihingen 5, Potsdam 5, OpenEarthMap 9,
LoveDA 7.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from s5geo.models.registry import Variant, register_variants
from s5geo.models.upernet import UPerNet, build_upernet
from s5geo.models.vit import TINY_VIT_DEFAULTS, ViTEncoder, vit_size

#: Datasets of the released multi-dataset models, in expert order.
S5_MDF_TASKS: tuple[str, ...] = ("vaihingen", "potsdam", "openearthmap", "loveda")
#: Classes of each dataset's head in the released models.
S5_MDF_NUM_CLASSES: dict[str, int] = {"vaihingen": 5, "potsdam": 5, "openearthmap": 9, "loveda": 7}


class MoEMlp(nn.Module):
    """FFN with a shared first layer and a last layer split into shared rows and per-task experts.

    ``out = cat(fc2(h), experts[expert](h))`` with ``h = GELU(fc1(x))``. With ``routes`` set, a
    batch that stacks several tasks' samples goes through one expert per contiguous segment:
    ``routes = ((expert, count), ...)`` covers the batch in order.

    Args:
        dim: token width.
        hidden: hidden width.
        part_features: output channels produced by the experts (the last ones).
        num_experts: number of experts.
    """

    def __init__(self, dim: int, hidden: int, part_features: int, num_experts: int) -> None:
        super().__init__()
        if not 0 < part_features < dim:
            raise ValueError(f"part_features must be in (0, {dim}), got {part_features}")
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {num_experts}")
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim - part_features)
        self.experts = nn.ModuleList(nn.Linear(hidden, part_features) for _ in range(num_experts))
        self.expert = 0
        self.routes: tuple[tuple[int, int], ...] | None = None

    def forward(self, x: Tensor) -> Tensor:
        """Shared channels followed by the selected expert's (or each segment's expert's) channels."""
        hidden = self.act(self.fc1(x))
        if self.routes is None:
            own = self.experts[self.expert](hidden)
        else:
            counts = [count for _, count in self.routes]
            parts = hidden.split(counts)
            own = torch.cat([self.experts[e](h) for (e, _), h in zip(self.routes, parts, strict=True)])
        return torch.cat([self.fc2(hidden), own], dim=-1)


class ViTMoEEncoder(ViTEncoder):
    """:class:`ViTEncoder` whose blocks use :class:`MoEMlp`, routed by a selected task.

    Args:
        num_experts: experts per FFN.
        part_features: channels produced by the experts.
        tasks: task (dataset) names in expert order.
        dataset: task to route through (name or expert index).
        **kwargs: :class:`ViTEncoder` arguments.
    """

    def __init__(
        self,
        *,
        num_experts: int = 4,
        part_features: int = 256,
        tasks: Sequence[str] = S5_MDF_TASKS,
        dataset: str | int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if len(tasks) != num_experts:
            raise ValueError(f"{num_experts} experts need {num_experts} task names, got {list(tasks)}")
        self.tasks = [t.lower() for t in tasks]
        for block in self.vit.blocks:
            dim, hidden = block.mlp.fc1.in_features, block.mlp.fc1.out_features
            block.mlp = MoEMlp(dim, hidden, part_features, num_experts)
        self.dataset = self.tasks[0]
        self.select_dataset(dataset)

    def expert_index(self, dataset: str | int) -> int:
        """The expert index of ``dataset`` (a task name or an expert index).

        Raises:
            ValueError: if ``dataset`` names no task.
        """
        if isinstance(dataset, str):
            if dataset.lower() not in self.tasks:
                raise ValueError(
                    f"unknown dataset {dataset!r}; this model's experts: {', '.join(self.tasks)}"
                )
            return self.tasks.index(dataset.lower())
        index = int(dataset)
        if not 0 <= index < len(self.tasks):
            raise ValueError(f"expert index {index} out of range 0..{len(self.tasks) - 1}")
        return index

    def select_dataset(self, dataset: str | int) -> None:
        """Route every FFN through the expert of ``dataset`` (a task name or an expert index).

        Raises:
            ValueError: if ``dataset`` names no task.
        """
        index = self.expert_index(dataset)
        for block in self.vit.blocks:
            block.mlp.expert = index
            block.mlp.routes = None
        self.dataset = self.tasks[index]

    def route_batch(self, segments: Sequence[tuple[str | int, int]]) -> None:
        """Route a batch stacking several datasets' samples: ``(dataset, count)`` per segment, in order.

        The routing stays until the next :meth:`select_dataset` or :meth:`route_batch`: activation
        checkpointing recomputes the blocks during the backward pass and must route them alike.

        Raises:
            ValueError: if a segment names no task.
        """
        routes = tuple((self.expert_index(dataset), int(count)) for dataset, count in segments)
        for block in self.vit.blocks:
            block.mlp.routes = routes


class MoEUPerNet(UPerNet):
    """UPerNet on a :class:`ViTMoEEncoder`: one dataset's expert, decoder and classifier."""

    encoder: ViTMoEEncoder

    @property
    def dataset(self) -> str:
        """The dataset whose experts the encoder uses."""
        return self.encoder.dataset

    def select_dataset(self, dataset: str | int) -> None:
        """Route the encoder through ``dataset``'s experts (see :meth:`ViTMoEEncoder.select_dataset`)."""
        self.encoder.select_dataset(dataset)


def _moe(size: str) -> Callable[..., ViTMoEEncoder]:
    return vit_size(ViTMoEEncoder, size, dataset="vaihingen")


register_variants(
    "upernet",
    partial(build_upernet, model_cls=MoEUPerNet),
    {
        "vit_b_moe": Variant(
            _moe("b"), "the S5 ViT-B-MoE (4 experts of 256 channels; ``dataset`` picks one)"
        ),
        "vit_l_moe": Variant(
            _moe("l"), "the S5 ViT-L-MoE (4 experts of 256 channels; ``dataset`` picks one)"
        ),
        "vit_tiny_moe": Variant(
            _moe("tiny"), "tiny ViT-MoE (experts of 16 channels)", {**TINY_VIT_DEFAULTS, "part_features": 16}
        ),
    },
)
