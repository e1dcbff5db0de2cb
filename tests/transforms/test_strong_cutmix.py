import math

import pytest
import torch

from s5geo.transforms import StrongView, cutmix_boxes, mix


def test_strong_view_range_shape_and_per_sample_randomness() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 24, 24).expand(8, -1, -1, -1).contiguous()
    image[:, :, :4] = 1.0
    image[:, :, 4:8] = 0.0
    out = StrongView()(image)
    assert out.shape == image.shape
    assert out.min() >= 0 and out.max() <= 1
    distinct = {tuple(o.flatten()[:50].tolist()) for o in out}
    assert len(distinct) > 1


def test_strong_view_probabilities_are_wired() -> None:
    image = torch.rand(4, 3, 16, 16)
    off = StrongView(p_jitter=0, p_gray=0, p_blur=0)
    assert torch.allclose(off(image), image)
    gray = StrongView(p_jitter=0, p_gray=1, p_blur=0)(image)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    blurred = StrongView(p_jitter=0, p_gray=0, p_blur=1, sigma=(2.0, 2.0))(image)
    assert blurred.std() < image.std()


@pytest.mark.parametrize("bands", [1, 4])
def test_strong_view_other_band_counts(bands: int) -> None:
    torch.manual_seed(0)
    image = torch.rand(4, bands, 16, 16)
    out = StrongView(p_jitter=1.0)(image)
    assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, image)


def test_strong_view_seed_reproducible() -> None:
    image = torch.rand(4, 3, 16, 16)
    view = StrongView()
    torch.manual_seed(3)
    a = view(image)
    torch.manual_seed(3)
    b = view(image)
    assert torch.equal(a, b)


def _box_extent(box: torch.Tensor) -> tuple[int, int]:
    rows = box.any(1).nonzero()
    cols = box.any(0).nonzero()
    h = int(rows.max() - rows.min() + 1)
    w = int(cols.max() - cols.min() + 1)
    return h, w


def test_cutmix_box_distribution() -> None:
    n, size = 2000, 64
    boxes = cutmix_boxes(n, size, size, p=0.5, generator=torch.Generator().manual_seed(0))
    assert boxes.shape == (n, size, size) and boxes.dtype == torch.bool
    nonempty = boxes.flatten(1).any(1)
    # Binomial(2000, 0.5): 5 standard deviations is about 0.056.
    assert abs(nonempty.float().mean().item() - 0.5) < 0.056
    fractions, ratios = [], []
    for box in boxes[nonempty]:
        h, w = _box_extent(box)
        assert box.sum() == h * w, "a box must be one filled rectangle"
        fractions.append(h * w / size**2)
        ratios.append(h / w)
    fractions_t, ratios_t = torch.tensor(fractions), torch.tensor(ratios)
    # int() truncation of both sides can only shrink the area, by at most one row/column each.
    assert fractions_t.max() <= 0.4
    assert fractions_t.min() >= 0.02 * (1 - 2 / math.sqrt(0.02 * size**2 * 0.3))
    assert 0.17 < fractions_t.mean() < 0.23
    assert ratios_t.min() >= 0.25 and ratios_t.max() <= 1 / 0.25
    assert (ratios_t < 0.6).any() and (ratios_t > 1.7).any()


def test_cutmix_probability_extremes_device_and_seed() -> None:
    assert not cutmix_boxes(16, 32, 32, p=0.0).any()
    assert cutmix_boxes(16, 32, 32, p=1.0).flatten(1).any(1).all()
    a = cutmix_boxes(8, 20, 30, generator=torch.Generator().manual_seed(1), device="cpu")
    b = cutmix_boxes(8, 20, 30, generator=torch.Generator().manual_seed(1))
    assert a.shape == (8, 20, 30) and torch.equal(a, b)


def test_mix_takes_partner_inside_box() -> None:
    g = torch.Generator().manual_seed(0)
    box = cutmix_boxes(4, 16, 16, p=1.0, generator=g)
    img_a, img_b = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    lab_a, lab_b = torch.randint(0, 5, (4, 16, 16)), torch.randint(5, 10, (4, 16, 16))
    mixed = mix(box, img_a, img_b)
    mixed_lab = mix(box, lab_a, lab_b)
    inside = box.unsqueeze(1).expand_as(img_a)
    assert torch.equal(mixed[inside], img_b[inside])
    assert torch.equal(mixed[~inside], img_a[~inside])
    assert torch.equal(mixed_lab[box], lab_b[box]) and torch.equal(mixed_lab[~box], lab_a[~box])
    assert mixed_lab.dtype == torch.int64
    with pytest.raises(ValueError):
        mix(box, img_a, img_b[:, :2])
