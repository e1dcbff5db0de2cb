"""Loss functions of the S5 objective (FixMatch for segmentation)."""

from __future__ import annotations

import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from s5geo.constants import IGNORE_INDEX


def supervised_loss(logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Pixel-wise cross-entropy averaged over the labelled (non-ignored) pixels.

    Args:
        logits: ``B x K x H x W`` scores.
        target: ``B x H x W`` class indices, ``ignore_index`` where unlabelled.
        ignore_index: mask value that carries no label.

    Returns:
        A scalar; zero (still attached to the graph) when every pixel is ignored, where
        ``F.cross_entropy`` would return NaN.
    """
    valid = target != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), target.long(), ignore_index=ignore_index)


def fixmatch_unlabeled_loss(
    logits_strong: Tensor,
    pseudo_label: Tensor,
    confidence: Tensor,
    padding: Tensor,
    tau: float = 0.95,
) -> Tensor:
    """Unlabelled FixMatch loss of the reference S5/UniMatch loop.

    ``sum_p CE(pseudo_label_p, logits_p) * 1[confidence_p >= tau] * 1[p not padding]`` divided by
    the number of non-padding pixels (not by the number of confident pixels), so that the loss shrinks
    when few pixels pass the threshold.

    Args:
        logits_strong: ``B x K x H x W`` predictions on the strong view (with gradient).
        pseudo_label: ``B x H x W`` class indices predicted on the weak view.
        confidence: ``B x H x W`` maximum softmax probability of the weak prediction.
        padding: ``B x H x W`` padding flag, True (or non-zero) on padding.
        tau: confidence threshold.

    Returns:
        A scalar; zero when the whole batch is padding.
    """
    padding = padding.bool()
    # Pseudo-labels never hold ignore_index, but a mixed-in padded pixel may carry any value:
    # clamp so cross_entropy never indexes out of range; those pixels have weight 0 anyway.
    target = pseudo_label.long().clamp(0, logits_strong.shape[1] - 1)
    ce = F.cross_entropy(logits_strong.float(), target, reduction="none")
    weight = (confidence >= tau) & ~padding
    num_real = (~padding).sum()
    return (ce * weight).sum() / num_real.clamp_min(1)
