import math

import pytest
import torch

from s5geo.tasks.metrics import SegmentationMetrics, format_class_table


def test_metrics_accumulate_over_split_against_hand_computation() -> None:
    metric = SegmentationMetrics(num_classes=3, ignore_index=255)
    # batch 1: target / prediction (1 x 2 x 3)
    t1 = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
    p1 = torch.tensor([[[0, 1, 1], [1, 2, 0]]])
    # batch 2
    t2 = torch.tensor([[[2, 2, 0], [0, 1, 255]]])
    p2 = torch.tensor([[[2, 0, 0], [0, 2, 2]]])
    metric.update(p1, t1)
    metric.update(p2, t2)
    out = metric.compute()
    # hand count over the split (ignored pixels dropped):
    # pairs (t, p): (0,0) (0,1) (1,1) (1,1) (2,2) | (2,2) (2,0) (0,0) (0,0) (1,2)
    tp = {0: 3, 1: 2, 2: 2}
    fp = {0: 1, 1: 1, 2: 1}  # predicted c but labelled otherwise
    fn = {0: 1, 1: 1, 2: 1}
    iou = [tp[c] / (tp[c] + fp[c] + fn[c]) for c in range(3)]
    f1 = []
    for c in range(3):
        p, r = tp[c] / (tp[c] + fp[c]), tp[c] / (tp[c] + fn[c])
        f1.append(2 * p * r / (p + r))
    assert out["iou"].tolist() == pytest.approx(iou)
    assert out["miou"].item() == pytest.approx(sum(iou) / 3)
    assert out["mf1"].item() == pytest.approx(sum(f1) / 3)
    assert out["oa"].item() == pytest.approx(7 / 10)
    # split-level IoU differs from the mean of per-batch IoUs for class 0
    per_batch = SegmentationMetrics(3)
    per_batch.update(p1, t1)
    first = per_batch.compute()["iou"][0].item()
    assert first == pytest.approx(1 / 2) and iou[0] == pytest.approx(3 / 5)


def test_excluded_classes_and_absent_classes() -> None:
    metric = SegmentationMetrics(num_classes=4, excluded_classes=[0])
    target = torch.tensor([[0, 0, 1, 2]])
    preds = torch.tensor([[0, 1, 1, 2]])
    metric.update(preds, target)
    out = metric.compute()
    # class 3 never appears: NaN, left out; class 0 excluded from the mean
    assert math.isnan(out["iou"][3].item())
    assert out["iou"][0].item() == pytest.approx(1 / 2)
    assert out["miou"].item() == pytest.approx((1 / 2 + 1) / 2)
    assert out["oa"].item() == pytest.approx(3 / 4)
    table = format_class_table(out, ["bg", "a", "b", "c"], excluded_classes=[0])
    assert "n/a" in table and "50.00" in table and "75.00" in table
    assert "excluded" in next(line for line in table.splitlines() if line.startswith("bg"))


def test_metrics_accept_logits() -> None:
    metric = SegmentationMetrics(num_classes=2)
    logits = torch.tensor([[[[1.0, -1.0]], [[0.0, 2.0]]]])  # B=1, K=2, H=1, W=2
    metric.update(logits, torch.tensor([[[0, 0]]]))
    assert metric.compute()["oa"].item() == pytest.approx(0.5)
