"""Evaluation of the s5geo tasks: whole, sliding-window or resized inputs, flip TTA, metric logging."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from s5geo.inference.tiling import window_starts
from s5geo.tasks.metrics import SegmentationMetrics, format_class_table

Model = Callable[[Tensor], Tensor]


def sliding_window_logits(model: Model, image: Tensor, window: int, stride: int) -> Tensor:
    """Average a model's logits over overlapping windows covering the image.

    Windows start every ``stride`` pixels and the last one is moved back to touch the border, so
    every pixel is covered; images smaller than the window are zero-padded (after normalisation, i.e.
    with the mean) and the padding is cropped from the result.

    Args:
        model: maps ``B x C x window x window`` to ``B x K x window x window``.
        image: normalised ``B x C x H x W`` batch.
        window: window side.
        stride: step between windows.
    """
    if stride < 1 or window < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    _, _, h, w = image.shape
    ph, pw = max(0, window - h), max(0, window - w)
    if ph or pw:
        image = F.pad(image, (0, pw, 0, ph))
    hp, wp = image.shape[-2:]
    ys, xs = window_starts(hp, window, stride), window_starts(wp, window, stride)
    total: Tensor | None = None
    count = torch.zeros(1, 1, hp, wp, device=image.device)
    for y in ys:
        for x in xs:
            out = model(image[..., y : y + window, x : x + window]).float()
            if total is None:
                total = image.new_zeros(image.shape[0], out.shape[1], hp, wp, dtype=torch.float32)
            total[..., y : y + window, x : x + window] += out
            count[..., y : y + window, x : x + window] += 1
    assert total is not None
    return (total / count)[..., :h, :w]


def resized_logits(model: Model, image: Tensor, size: int) -> Tensor:
    """Logits of the image resized to ``size x size``, resized back to the image's size.

    Both resizes are bilinear with ``align_corners=True``, as the S5 code evaluates LoveDA and
    OpenEarthMap.

    Args:
        model: maps ``B x C x size x size`` to ``B x K x size x size``.
        image: normalised ``B x C x H x W`` batch.
        size: side the model sees.
    """
    h, w = image.shape[-2:]
    small = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=True)
    return F.interpolate(model(small).float(), size=(h, w), mode="bilinear", align_corners=True)


@torch.no_grad()
def predict_probabilities(
    model: Model,
    image: Tensor,
    sliding_window: Sequence[int] | None = None,
    flip_tta: bool = False,
    resize_to: int | None = None,
) -> Tensor:
    """Softmax ``B x K x H x W`` of a normalised batch.

    Args:
        model: maps a normalised batch to logits.
        image: normalised ``B x C x H x W`` batch.
        sliding_window: ``(window, stride)``, None to run the model on the whole input.
        flip_tta: average over the input and its horizontal and vertical flips.
        resize_to: run the model on the input resized to this side (see :func:`resized_logits`);
            not together with ``sliding_window``.
    """
    if sliding_window and resize_to:
        raise ValueError("sliding_window and resize_to exclude each other")

    def run(inp: Tensor) -> Tensor:
        if sliding_window:
            logits = sliding_window_logits(model, inp, int(sliding_window[0]), int(sliding_window[1]))
        elif resize_to:
            logits = resized_logits(model, inp, int(resize_to))
        else:
            logits = model(inp)
        return logits.float().softmax(1)

    probs = run(image)
    if flip_tta:
        probs = probs + run(image.flip(-1)).flip(-1) + run(image.flip(-2)).flip(-2)
        probs = probs / 3
    return probs


def probability_loss(probs: Tensor, mask: Tensor, ignore_index: int) -> Tensor | None:
    """Cross-entropy of predicted probabilities, None when every pixel is ignored."""
    if not bool((mask != ignore_index).any()):
        return None
    return F.nll_loss(probs.clamp_min(1e-8).log(), mask.long(), ignore_index=ignore_index)


def log_metrics(
    task: LightningModule, metrics: SegmentationMetrics, prefix: str, names: Sequence[str]
) -> dict[str, Any] | None:
    """Log mIoU/mF1/OA and per-class IoU of a split, print the class table and reset ``metrics``.

    Args:
        task: the module that logs.
        metrics: the split's accumulated metrics.
        prefix: ``"val"`` or ``"test"``.
        names: class names, index ``i`` is class ``i``.

    Returns:
        The computed values, None when nothing was accumulated.
    """
    if not metrics.update_called:
        return None
    values = metrics.compute()
    metrics.reset()
    # compute() already reduced the confusion matrix over ranks; sync_dist averages equal values.
    task.log(f"{prefix}/mIoU", values["miou"], prog_bar=True, sync_dist=True)
    task.log(f"{prefix}/mF1", values["mf1"], sync_dist=True)
    task.log(f"{prefix}/OA", values["oa"], sync_dist=True)
    for index, name in enumerate(names):
        if not math.isnan(float(values["iou"][index])):
            task.log(f"{prefix}/IoU_{name}", values["iou"][index], sync_dist=True)
    if task._trainer is None or not task.trainer.sanity_checking:
        rank_zero_info(
            format_class_table(values, names, f"{prefix} (per class, %)", metrics.excluded_classes)
        )
    return values
