"""Optimiser and learning-rate schedule of the s5geo tasks.

AdamW (betas 0.9, 0.999) over parameter groups that carry the weight decay (none on norms, biases
and position embeddings) and the layer-wise lr scale, with a linear warm-up then cosine schedule
stepped every iteration.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from torch import nn

from s5geo.errors import S5GeoError


def warmup_cosine(step: int, warmup: int, total: float, min_ratio: float) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine to ``min_ratio``.

    Args:
        step: optimiser step (0-based).
        warmup: warm-up length in steps.
        total: total number of steps (``inf`` keeps the factor at 1 after the warm-up).
        min_ratio: final factor of the cosine.
    """
    if step < warmup:
        return (step + 1) / warmup
    if not math.isfinite(total):
        return 1.0
    progress = min(1.0, (step - warmup) / max(1.0, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def parameter_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    layer_decay: float | None = None,
    no_weight_decay_norm_pos: bool = True,
) -> list[dict[str, Any]]:
    """Group the trainable parameters of ``model`` by (lr scale, weight decay) for AdamW.

    Args:
        model: the network; ``no_weight_decay()`` names parameters without weight decay, and
            ``layer_id(name)`` / ``num_layers`` give the depth used by ``layer_decay``.
        lr: peak learning rate (of the last layer under layer decay).
        weight_decay: weight decay of the decayed parameters.
        layer_decay: layer-wise lr decay factor, None (or 1) to disable.
        no_weight_decay_norm_pos: no weight decay on 1-D parameters (norms, biases) and the
            model's ``no_weight_decay()`` parameters.

    Returns:
        One ``{"params", "lr", "weight_decay", "lr_scale"}`` dict per group, sorted by scale and decay.

    Raises:
        S5GeoError: if ``layer_decay`` is set but the model has no ``layer_id``/``num_layers``.
    """
    no_decay_names: set[str] = set()
    if no_weight_decay_norm_pos and hasattr(model, "no_weight_decay"):
        no_decay_names = set(model.no_weight_decay())
    use_layer_decay = layer_decay is not None and layer_decay != 1.0
    if use_layer_decay and not (hasattr(model, "layer_id") and hasattr(model, "num_layers")):
        raise S5GeoError(
            f"layer_decay needs a model with layer_id() and num_layers; {type(model).__name__} has none"
        )
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = no_weight_decay_norm_pos and (
            param.ndim <= 1
            or name in no_decay_names
            or any(name.endswith(f".{n}") or name == n for n in no_decay_names)
        )
        wd = 0.0 if no_decay else float(weight_decay)
        scale = 1.0
        if use_layer_decay:
            # Layer ids run from 0 (stem) to num_layers - 1 (decoder and head, full lr).
            top = int(model.num_layers) - 1
            scale = float(layer_decay) ** (top - int(model.layer_id(name)))  # type: ignore[arg-type]
        groups.setdefault((scale, wd), []).append(param)
    return [
        {"params": params, "lr": float(lr) * scale, "weight_decay": wd, "lr_scale": scale}
        for (scale, wd), params in sorted(groups.items(), key=lambda kv: kv[0])
    ]


def adamw_warmup_cosine(
    groups: list[dict[str, Any]],
    lr: float,
    weight_decay: float,
    warmup_steps: int,
    total_steps: float,
    min_lr_ratio: float,
) -> dict[str, Any]:
    """Lightning's ``configure_optimizers`` answer: AdamW and a per-step warm-up + cosine schedule.

    Args:
        groups: parameter groups (see :func:`parameter_groups`).
        lr: peak learning rate.
        weight_decay: default weight decay of AdamW.
        warmup_steps: linear warm-up length in optimiser steps.
        total_steps: length of the schedule (``inf``: constant after the warm-up).
        min_lr_ratio: final lr as a fraction of the peak.
    """
    optimizer = torch.optim.AdamW(groups, lr=float(lr), betas=(0.9, 0.999), weight_decay=float(weight_decay))
    schedule = partial(
        warmup_cosine, warmup=int(warmup_steps), total=float(total_steps), min_ratio=float(min_lr_ratio)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
    }
