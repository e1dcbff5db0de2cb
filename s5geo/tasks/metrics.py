"""Segmentation metrics accumulated over a whole split: mIoU, mF1, overall accuracy.

The confusion matrix is summed over every batch (and every process under DDP) before any ratio
is taken, so per-class IoU is ``sum of intersections / sum of unions`` over the split, as in the
paper's evaluation, never a mean of per-image scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from s5geo.constants import IGNORE_INDEX


class SegmentationMetrics(Metric):
    """Confusion-matrix metrics for semantic segmentation.

    Classes that never occur in the targets nor in the predictions of the split have no IoU/F1
    (NaN) and are left out of the macro means. ``excluded_classes`` (e.g. iSAID background) are
    left out of the macro means but still counted in the overall accuracy.

    Args:
        num_classes: number of classes.
        ignore_index: target value that is not evaluated.
        excluded_classes: class indices left out of mIoU and mF1.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = IGNORE_INDEX,
        excluded_classes: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.excluded_classes = sorted({int(c) for c in excluded_classes})
        bad = [c for c in self.excluded_classes if not 0 <= c < self.num_classes]
        if bad:
            raise ValueError(f"excluded classes {bad} are outside 0..{self.num_classes - 1}")
        self.add_state(
            "confmat",
            default=torch.zeros(self.num_classes, self.num_classes, dtype=torch.long),
            dist_reduce_fx="sum",
        )

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch.

        Args:
            preds: ``B x H x W`` class indices or ``B x K x H x W`` scores (argmax taken).
            target: ``B x H x W`` class indices with ``ignore_index`` where unlabelled.
        """
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(1)
        if preds.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(preds.shape)} != target {tuple(target.shape)}")
        target = target.long().flatten()
        preds = preds.long().flatten()
        keep = (target != self.ignore_index) & (target >= 0) & (target < self.num_classes)
        index = target[keep] * self.num_classes + preds[keep].clamp(0, self.num_classes - 1)
        counts = torch.bincount(index, minlength=self.num_classes**2)
        self.confmat += counts.reshape(self.num_classes, self.num_classes)

    def compute(self) -> dict[str, Tensor]:
        """Return ``miou``, ``mf1``, ``oa`` and per-class ``iou``, ``f1`` (NaN when absent)."""
        cm = self.confmat.double()
        tp = cm.diag()
        fp = cm.sum(0) - tp  # predicted as the class, labelled otherwise
        fn = cm.sum(1) - tp
        union = tp + fp + fn
        nan = torch.full_like(tp, float("nan"))
        iou = torch.where(union > 0, tp / union.clamp_min(1), nan)
        # F1 = 2PR / (P + R) = 2TP / (2TP + FP + FN) wherever P and R are defined.
        f1 = torch.where(union > 0, 2 * tp / (2 * tp + fp + fn).clamp_min(1), nan)
        included = torch.ones(self.num_classes, dtype=torch.bool, device=cm.device)
        included[self.excluded_classes] = False
        total = cm.sum()
        oa = tp.sum() / total if total > 0 else torch.tensor(float("nan"), device=cm.device)
        return {
            "miou": iou[included].nanmean().float(),
            "mf1": f1[included].nanmean().float(),
            "oa": oa.float(),
            "iou": iou.float(),
            "f1": f1.float(),
        }


def format_class_table(
    values: dict[str, Tensor],
    class_names: Sequence[str] | None = None,
    title: str = "",
    excluded_classes: Sequence[int] = (),
) -> str:
    """Format per-class IoU/F1 and the summary as a plain-text table (values in percent).

    Args:
        values: the output of :meth:`SegmentationMetrics.compute`.
        class_names: one name per class (``class_<i>`` when missing).
        title: first line of the table.
        excluded_classes: classes marked as left out of the means.
    """
    iou = values["iou"].tolist()
    f1 = values["f1"].tolist()
    names = list(class_names) if class_names else []
    names += [f"class_{i}" for i in range(len(names), len(iou))]
    width = max(10, *(len(n) for n in names))
    lines = [title] if title else []
    lines.append(f"{'class':<{width}}  {'IoU':>7}  {'F1':>7}")
    for index, (name, a, b) in enumerate(zip(names, iou, f1, strict=False)):
        note = "  (excluded from the means)" if index in excluded_classes else ""
        lines.append(f"{name:<{width}}  {_pct(a)}  {_pct(b)}{note}")
    lines.append(
        f"{'mean':<{width}}  {_pct(float(values['miou']))}  {_pct(float(values['mf1']))}"
        f"   OA {_pct(float(values['oa'])).strip()}"
    )
    return "\n".join(lines)


def _pct(value: float) -> str:
    return f"{'n/a':>7}" if value != value else f"{100 * value:7.2f}"
