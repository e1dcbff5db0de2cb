import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from s5geo.errors import S5GeoError
from s5geo.tasks import FixMatch, UniMatch
from s5geo.tasks.losses import fixmatch_unlabeled_loss


class ModeNet(nn.Module):
    """1x1 conv whose output also depends on train/eval mode (like BN/dropout would)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + 5.0 * torch.arange(y.shape[1]).view(1, -1, 1, 1) * self.training


def _batch(b_l: int = 2, b_u: int = 3, size: int = 8, k: int = 3) -> dict:
    g = torch.Generator().manual_seed(0)
    pad = torch.zeros(b_u, size, size, dtype=torch.bool)
    pad[0, :, -2:] = True
    return {
        "labeled": {
            "image": torch.rand(b_l, 3, size, size, generator=g),
            "mask": torch.randint(0, k, (b_l, size, size), generator=g),
        },
        "unlabeled": {"image": torch.rand(b_u, 3, size, size, generator=g), "padding": pad},
        "unlabeled_mix": {"image": torch.rand(b_u, 3, size, size, generator=g), "padding": pad.flip(0)},
    }


def test_cutmix_with_the_batch_flipped_mixes_image_label_confidence_and_padding() -> None:
    task = FixMatch(model=ModeNet(), num_classes=3, cutmix_p=1.0, cutmix_partner="flip")
    task.strong_view = nn.Identity()  # isolate CutMix
    b, size = 4, 16
    image = torch.rand(b, 3, size, size)
    label = torch.randint(0, 3, (b, size, size))
    conf = torch.rand(b, size, size)
    pad = torch.zeros(b, size, size, dtype=torch.long)
    pad[1, :4] = 255
    x, y, c, p, box = task.strong_cutmix(image, label, conf, pad)
    assert box.any(dim=(1, 2)).all()  # p = 1: every sample has a box
    assert (~box).any()
    partner = torch.arange(b).flip(0)  # the batch flipped
    for i in range(b):
        inside, j = box[i], partner[i]
        assert torch.equal(x[i][:, inside], image[j][:, inside])
        assert torch.equal(y[i][inside], label[j][inside])
        assert torch.equal(c[i][inside], conf[j][inside])
        assert torch.equal(p[i][inside], pad[j][inside] == 255)
        assert torch.equal(x[i][:, ~inside], image[i][:, ~inside])
        assert torch.equal(y[i][~inside], label[i][~inside])
        assert torch.equal(p[i][~inside], pad[i][~inside] == 255)


def test_pseudo_labels_use_eval_mode_without_gradient() -> None:
    net = ModeNet()
    with torch.no_grad():  # eval mode predicts class 0 (margin 1), train mode class 2 (+10)
        net.conv.weight.mul_(0.1)
        net.conv.bias.copy_(torch.tensor([2.0, 0.0, 0.0]))
    task = FixMatch(model=net, num_classes=3, mean=(0, 0, 0), std=(1, 1, 1))
    task.train()
    x = torch.rand(2, 3, 4, 4)
    label, conf = task.pseudo_labels(x)
    assert not conf.requires_grad and task.model.training  # mode restored
    net.eval()
    expected = net(x).softmax(1)
    assert torch.allclose(conf, expected.max(1).values) and torch.equal(label, expected.argmax(1))
    task.hparams.teacher_mode = "train"
    net.train()
    label_t, _ = task.pseudo_labels(x)
    assert torch.equal(label_t, net(x).argmax(1))
    assert (label == 0).all() and (label_t == 2).all()


def test_fixmatch_total_loss_is_reference_weighting() -> None:
    torch.manual_seed(0)
    net = ModeNet()
    task = FixMatch(
        model=net,
        num_classes=3,
        mean=(0, 0, 0),
        std=(1, 1, 1),
        tau=0.4,
        cutmix_p=0.0,
        unlabeled_weight=0.7,
    )
    task.strong_view = nn.Identity()
    task.train()
    batch = _batch()
    out = task.compute_losses(batch)
    x_l, y_l = batch["labeled"]["image"], batch["labeled"]["mask"]
    x_u, pad = batch["unlabeled"]["image"], batch["unlabeled"]["padding"]
    with torch.no_grad():
        net.eval()
        probs = net(x_u).softmax(1)
        net.train()
    loss_s = F.cross_entropy(net(x_l), y_l)
    loss_u = fixmatch_unlabeled_loss(net(x_u), probs.argmax(1), probs.max(1).values, pad, 0.4)
    assert out["loss_s"].item() == pytest.approx(loss_s.item(), rel=1e-5)
    assert out["loss_u"].item() == pytest.approx(loss_u.item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx((loss_s + 0.7 * loss_u).item() / 2, rel=1e-5)
    real = ~pad
    expected_ratio = ((probs.max(1).values >= 0.4) & real).sum() / real.sum()
    assert out["mask_ratio"].item() == pytest.approx(expected_ratio.item())
    out["loss"].backward()
    assert net.conv.weight.grad is not None


def test_ema_teacher_update_and_pseudo_labels() -> None:
    task = FixMatch(model=ModeNet(), num_classes=3, ema=0.9)
    assert task.teacher is not None
    assert all(not p.requires_grad for p in task.teacher.parameters())
    task.teacher.load_state_dict(task.model.state_dict())
    with torch.no_grad():
        for p in task.model.parameters():
            p.add_(1.0)
    t0 = task.teacher.conv.weight.clone()
    s = task.model.conv.weight.detach().clone()
    task.update_teacher(100)  # decay = min(1 - 1/101, 0.9) = 0.9
    assert torch.allclose(task.teacher.conv.weight, 0.9 * t0 + 0.1 * s)
    task.update_teacher(0)  # decay = 0 at the first iteration: copy
    assert torch.allclose(task.teacher.conv.weight, s)
    # pseudo-labels come from the teacher
    with torch.no_grad():
        task.teacher.conv.weight.zero_()
        task.teacher.conv.bias.copy_(torch.tensor([0.0, 3.0, 0.0]))
    label, _ = task.pseudo_labels(torch.rand(1, 3, 4, 4))
    assert (label == 1).all()


def test_unimatch_losses_and_weights() -> None:
    torch.manual_seed(0)
    task = UniMatch(model="upernet_vit_tiny", model_kwargs={"img_size": 32}, num_classes=3, tau=0.0)
    task.train()
    out = task.compute_losses(_batch(size=32))
    expected = out["loss_s"] + 0.25 * out["loss_s1"] + 0.25 * out["loss_s2"] + 0.5 * out["loss_fp"]
    assert out["loss"].item() == pytest.approx(expected.item() / 2, rel=1e-5)
    assert out["loss_s1"].item() != out["loss_s2"].item()  # independent strong views
    # pseudo-labels from the joint forward; only the partner's and the strong forwards remain
    assert task.hparams.teacher_mode == "train"
    calls = []
    task.model.register_forward_pre_hook(lambda module, _: calls.append(module.training))
    task.compute_losses(_batch(size=32))
    assert calls == [False, True]
    calls.clear()
    task.hparams.cutmix_partner = "flip"
    task.compute_losses(_batch(size=32))
    assert calls == [True]


def test_cutmix_with_the_loader_partner_takes_the_partner_inside_the_box() -> None:
    task = FixMatch(model=ModeNet(), num_classes=3, cutmix_p=1.0)
    task.strong_view = nn.Identity()
    b, size = 3, 16
    g = torch.Generator().manual_seed(1)
    image, other = torch.rand(b, 3, size, size, generator=g), torch.rand(b, 3, size, size, generator=g)
    label, other_label = torch.randint(0, 3, (2, b, size, size), generator=g)
    conf, other_conf = torch.rand(2, b, size, size, generator=g)
    pad = torch.zeros(b, size, size, dtype=torch.bool)
    other_pad = torch.ones(b, size, size, dtype=torch.bool)
    x, y, c, p, box = task.strong_cutmix(image, label, conf, pad, (other, other_label, other_conf, other_pad))
    assert box.any(dim=(1, 2)).all() and (~box).any()
    for i in range(b):  # the middle sample of an odd batch too
        inside = box[i]
        assert torch.equal(x[i][:, inside], other[i][:, inside]) and torch.equal(
            x[i][:, ~inside], image[i][:, ~inside]
        )
        assert torch.equal(y[i][inside], other_label[i][inside]) and torch.equal(
            c[i][inside], other_conf[i][inside]
        )
        assert torch.equal(p[i], inside)


def test_loader_partner_pseudo_labels_come_from_the_same_forward() -> None:
    torch.manual_seed(0)
    task = FixMatch(model=ModeNet(), num_classes=3, mean=(0, 0, 0), std=(1, 1, 1), cutmix_p=1.0)
    task.train()
    seen = {}

    def record(weak, label, confidence, padding, partner=None):
        seen.update(label=label, partner=partner)
        return FixMatch.strong_cutmix(task, weak, label, confidence, padding, partner)

    task.strong_cutmix = record
    calls = []
    task.model.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    batch = _batch()
    task.compute_losses(batch)
    assert calls == [6, 5]  # weak + partner (3 + 3) without gradient, then labeled + strong (2 + 3)
    net = task.model.eval()
    expected = net(batch["unlabeled_mix"]["image"]).argmax(1)
    assert torch.equal(seen["partner"][1], expected) and seen["partner"][0] is batch["unlabeled_mix"]["image"]
    del batch["unlabeled_mix"]
    with pytest.raises(S5GeoError, match="cutmix_partner='flip'"):
        task.compute_losses(batch)


@pytest.mark.parametrize(("autocast", "dtype"), [(False, torch.float32), (True, torch.bfloat16)])
def test_pseudo_label_forward_is_float32_under_mixed_precision(autocast: bool, dtype: torch.dtype) -> None:
    net = ModeNet()
    seen = []
    net.conv.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    task = FixMatch(model=net, num_classes=3, pseudo_label_autocast=autocast)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        task.pseudo_labels(torch.rand(2, 3, 4, 4))
        task(torch.rand(2, 3, 4, 4))
    assert seen == [dtype, torch.bfloat16]  # the training forwards keep the autocast


class ModeSegNet(ModeNet):
    """ModeNet split into forward_features / forward_decode, as UniMatch needs."""

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]

    def forward_decode(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return super().forward(features[0])


@pytest.mark.parametrize("teacher_mode", ["train", "eval"])
def test_unimatch_pseudo_labels_from_the_joint_forward_by_default(teacher_mode: str) -> None:
    net = ModeSegNet()
    with torch.no_grad():  # eval mode predicts class 0, train mode class 2
        net.conv.weight.mul_(0.1)
        net.conv.bias.copy_(torch.tensor([2.0, 0.0, 0.0]))
    kwargs = {} if teacher_mode == "train" else {"teacher_mode": "eval"}
    task = UniMatch(model=net, num_classes=3, mean=(0, 0, 0), std=(1, 1, 1), fp_dropout=0.0, **kwargs)
    task.train()
    seen = []

    def record(weak, label, confidence, padding, partner=None):
        seen.append((label, partner[1]))
        return FixMatch.strong_cutmix(task, weak, label, confidence, padding, partner)

    task.strong_cutmix = record
    task.compute_losses(_batch())
    (label, partner_label), _ = seen
    assert (label == (2 if teacher_mode == "train" else 0)).all()
    assert (partner_label == 0).all()  # the partner batch is predicted in eval mode either way
