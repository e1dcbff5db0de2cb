import math

import pytest
import torch

from s5geo.tasks.losses import fixmatch_unlabeled_loss, supervised_loss


def _ce(logits: list[float], label: int) -> float:
    return math.log(sum(math.exp(v) for v in logits)) - logits[label]


def test_fixmatch_loss_matches_hand_computation() -> None:
    # one image, 2 classes, 1 x 5 pixels; logits per pixel (class 0, class 1)
    pixels = [(2.0, -1.0), (0.5, 0.3), (-1.0, 3.0), (1.0, 1.0), (0.0, 2.0)]
    logits = torch.tensor(pixels).t().reshape(1, 2, 1, 5)
    label = torch.tensor([[[0, 1, 1, 0, 0]]])
    conf = torch.tensor([[[0.96, 0.50, 0.95, 0.99, 0.97]]])
    # pixel 3 is padding (255), pixel 4 is real but its label disagrees with the logits
    pad = torch.tensor([[[0, 0, 0, 255, 0]]])
    loss = fixmatch_unlabeled_loss(logits, label, conf, pad, tau=0.95)

    # confident (>= tau, so 0.95 counts) and not padding: pixels 0, 2, 4; normaliser: 4 real pixels
    ce = [_ce(list(pixels[i]), int(label[0, 0, i])) for i in range(5)]
    expected = (ce[0] + ce[2] + ce[4]) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # not the mean over confident pixels
    assert loss.item() != pytest.approx((ce[0] + ce[2] + ce[4]) / 3, rel=1e-3)


def test_fixmatch_loss_threshold_and_bool_padding() -> None:
    logits = torch.randn(2, 3, 4, 4)
    label = torch.randint(0, 3, (2, 4, 4))
    conf = torch.rand(2, 4, 4)
    pad_bool = torch.zeros(2, 4, 4, dtype=torch.bool)
    pad_bool[1, :, :2] = True
    pad_int = pad_bool.long() * 255
    a = fixmatch_unlabeled_loss(logits, label, conf, pad_bool, tau=0.5)
    b = fixmatch_unlabeled_loss(logits, label, conf, pad_int, tau=0.5)
    assert a.item() == pytest.approx(b.item())
    ce = torch.nn.functional.cross_entropy(logits, label, reduction="none")
    keep = (conf >= 0.5) & ~pad_bool
    assert a.item() == pytest.approx((ce * keep).sum().item() / (~pad_bool).sum().item(), rel=1e-6)
    # nothing above the threshold: zero loss, zero gradient
    logits.requires_grad_(True)
    none = fixmatch_unlabeled_loss(logits, label, conf, pad_bool, tau=1.01)
    none.backward()
    assert none.item() == 0.0 and logits.grad.abs().sum() == 0
    # all padding: no division by zero
    assert fixmatch_unlabeled_loss(logits, label, conf, torch.ones_like(pad_bool), 0.0).item() == 0


def test_supervised_loss_ignores_255() -> None:
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    target = torch.tensor([[[0, 255], [2, 255]]])
    expected = (_ce(logits[0, :, 0, 0].tolist(), 0) + _ce(logits[0, :, 1, 0].tolist(), 2)) / 2
    assert supervised_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    all_ignored = supervised_loss(logits, torch.full((1, 2, 2), 255))
    assert all_ignored.item() == 0.0
    all_ignored.backward()  # still attached to the graph
