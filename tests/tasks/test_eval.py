import pytest
import torch
from torch import nn

from s5geo.tasks import SupervisedSegmentation, sliding_window_logits


class PixelNet(nn.Module):
    """Per-pixel model: windowed inference must equal whole-image inference."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.calls: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape[-2:]))
        return self.conv(x)


def test_sliding_window_covers_every_pixel_and_matches_whole_image() -> None:
    net = PixelNet()
    x = torch.randn(2, 3, 21, 30)
    out = sliding_window_logits(net, x, window=8, stride=6)
    assert out.shape == (2, 4, 21, 30)
    assert torch.allclose(out, net.conv(x), atol=1e-6)
    assert set(net.calls) == {(8, 8)}
    # smaller than the window: padded, then cropped
    small = torch.randn(1, 3, 5, 6)
    assert torch.allclose(sliding_window_logits(net, small, 8, 4), net.conv(small), atol=1e-6)


def test_sliding_window_averages_overlaps() -> None:
    # a model that outputs its window's x-offset marker shows how overlaps are averaged
    class Ones(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1] * 0 + x[:, :1].mean(dim=(2, 3), keepdim=True)

    x = torch.zeros(1, 1, 1, 6)
    x[..., :2] = 1.0
    out = sliding_window_logits(Ones(), x.expand(1, 1, 4, 6).contiguous(), window=4, stride=2)
    # windows at x=0 (mean 0.5) and x=2 (mean 0): columns 2-3 are covered by both
    assert out[0, 0, 0].tolist() == pytest.approx([0.5, 0.5, 0.25, 0.25, 0.0, 0.0])


def test_flip_tta_and_sliding_window_in_task() -> None:
    net = PixelNet()
    task = SupervisedSegmentation(model=net, num_classes=4, sliding_window=(8, 4), flip_tta=True)
    x = torch.rand(1, 3, 12, 12)
    probs = task.predict_probabilities(x)
    ref = net.conv(task.normalize(x)).softmax(1)
    assert torch.allclose(probs, ref, atol=1e-5)  # a per-pixel model is flip-equivariant
    # flip TTA really averages: a model that is not flip-equivariant changes the result
    task.model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    no_tta = SupervisedSegmentation(model=task.model, num_classes=4)
    assert not torch.allclose(task.predict_probabilities(x), no_tta.predict_probabilities(x))
    task.hparams.sliding_window = None
    with torch.no_grad():
        n = task.normalize(x)
        m = task.model
        expected = (
            m(n).softmax(1) + m(n.flip(-1)).softmax(1).flip(-1) + m(n.flip(-2)).softmax(1).flip(-2)
        ) / 3
    assert torch.allclose(task.predict_probabilities(x), expected, atol=1e-6)


def test_validation_metrics_over_split(tiny_data) -> None:
    from lightning.pytorch import Trainer

    task = SupervisedSegmentation(model=PixelNet(), num_classes=4)
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    data = tiny_data(num_classes=4)
    trainer.validate(task, datamodule=data)
    # hand: accumulate the confusion matrix directly
    cm = torch.zeros(4, 4)
    with torch.no_grad():
        for batch in data.val_dataloader():
            pred = task(batch["image"]).argmax(1)
            for t, p in zip(batch["mask"].flatten(), pred.flatten(), strict=True):
                cm[t, p] += 1
    iou = cm.diag() / (cm.sum(0) + cm.sum(1) - cm.diag())
    miou = iou[~iou.isnan()].mean()
    assert trainer.callback_metrics["val/mIoU"].item() == pytest.approx(miou.item(), rel=1e-5)
    assert trainer.callback_metrics["val/OA"].item() == pytest.approx(
        (cm.diag().sum() / cm.sum()).item(), rel=1e-5
    )


def test_eval_modes_whole_sliding_and_resize() -> None:
    net = PixelNet()
    x = torch.rand(1, 3, 24, 20)
    with pytest.raises(ValueError, match="sliding_window"):
        SupervisedSegmentation(model=net, num_classes=4, eval_mode="sliding")
    with pytest.raises(ValueError, match="eval_mode"):
        SupervisedSegmentation(model=net, num_classes=4, eval_mode="tiles")
    default = SupervisedSegmentation(model=net, num_classes=4, sliding_window=(8, 8))
    assert default.evaluation_mode() == "sliding"
    default.predict_probabilities(x)
    assert set(net.calls) == {(8, 8)}
    net.calls.clear()
    whole = SupervisedSegmentation(model=net, num_classes=4, sliding_window=(8, 8), eval_mode="whole")
    whole.predict_probabilities(x)
    assert net.calls == [(24, 20)]
    net.calls.clear()
    resize = SupervisedSegmentation(model=net, num_classes=4, eval_mode="resize", eval_size=16)
    probs = resize.predict_probabilities(x)
    assert net.calls == [(16, 16)] and probs.shape == (1, 4, 24, 20)
    n = resize.normalize(x)
    small = nn.functional.interpolate(n, size=(16, 16), mode="bilinear", align_corners=True)
    back = nn.functional.interpolate(net.conv(small), size=(24, 20), mode="bilinear", align_corners=True)
    assert torch.allclose(probs, back.softmax(1), atol=1e-6)
