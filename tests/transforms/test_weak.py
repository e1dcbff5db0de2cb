import pytest
import torch

from s5geo.transforms import SegmentationAugmentation, WeakView, geometric_resample


def _labeled_batch(b: int = 4, h: int = 16, w: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, 5, (b, h, w), generator=g)
    mask[:, :2] = 255
    # Channel 0 encodes the label, so image/mask consistency is visible after any permutation.
    image = torch.rand(b, 3, h, w, generator=g) * 0.5 + 0.5
    image[:, 0] = mask.float() / 1000
    return image, mask


def test_shapes_dtype_and_valid_mask_values() -> None:
    image, mask = _labeled_batch(h=20, w=28)
    torch.manual_seed(1)
    out, out_mask = WeakView(24)(image, mask)
    assert out.shape == (4, 3, 24, 24)
    assert out_mask.shape == (4, 24, 24)
    assert out_mask.dtype == torch.int64
    assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist()) | {255}


def test_scale_one_is_a_flipped_crop_and_keeps_image_and_mask_aligned() -> None:
    image, mask = _labeled_batch(b=6, h=12, w=12)
    torch.manual_seed(3)
    out, out_mask = geometric_resample(image, mask, 8, scale=(1.0, 1.0))
    for i in range(6):
        found = False
        for dy in range(5):
            for dx in range(5):
                crop = image[i, :, dy : dy + 8, dx : dx + 8]
                crop_mask = mask[i, dy : dy + 8, dx : dx + 8]
                for fy in (False, True):
                    for fx in (False, True):
                        dims = [d for d, f in ((-2, fy), (-1, fx)) if f]
                        c = crop.flip(dims) if dims else crop
                        cm = crop_mask.flip(dims) if dims else crop_mask
                        if torch.allclose(c, out[i], atol=1e-5) and torch.equal(cm, out_mask[i]):
                            found = True
        assert found, f"sample {i} is not a flipped crop of its input"


def test_upscale_by_two_is_nearest_for_mask() -> None:
    image, mask = _labeled_batch(b=2, h=8, w=8)
    out, out_mask = geometric_resample(image, mask, 16, scale=(2.0, 2.0), hflip=False, vflip=False)
    expected = mask.repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert torch.equal(out_mask, expected)
    assert out.shape == (2, 3, 16, 16)


def test_padding_is_zero_in_image_and_255_in_mask() -> None:
    image, mask = _labeled_batch(b=3, h=16, w=16)
    mask[mask == 255] = 1
    out, out_mask = geometric_resample(image, mask, 16, scale=(0.5, 0.5), hflip=False, vflip=False)
    assert (out_mask[:, 8:, :] == 255).all() and (out_mask[:, :, 8:] == 255).all()
    assert (out[:, :, 8:, :] == 0).all() and (out[:, :, :, 8:] == 0).all()
    assert (out_mask[:, :8, :8] != 255).all()


def test_without_mask_returns_validity_mask() -> None:
    torch.manual_seed(0)
    image = torch.rand(16, 3, 16, 16) * 0.9 + 0.1
    out, valid = WeakView(32, hflip=False, vflip=False)(image)
    assert set(valid.unique().tolist()) <= {0, 255}
    assert (out.amin(1)[valid == 0] > 0).all()
    assert (out[valid.unsqueeze(1).expand_as(out) == 255] == 0).all()
    sides = []
    for v in valid:
        rows = (v == 0).any(1).sum().item()
        cols = (v == 0).any(0).sum().item()
        # Real pixels form the top-left rescaled image (long side 8..32 for scale 0.5-2.0).
        assert (v[:rows, :cols] == 0).all() and (v[rows:] == 255).all() and (v[:, cols:] == 255).all()
        assert rows == cols and 8 <= rows <= 32
        sides.append(rows)
    assert len(set(sides)) > 3


def test_long_side_rescale_keeps_aspect_ratio() -> None:
    image = torch.rand(2, 3, 12, 24) + 0.1
    _, valid = geometric_resample(image, None, 32, scale=(0.5, 0.5), hflip=False, vflip=False)
    for v in valid:
        assert (v == 0).any(1).sum() == 6 and (v == 0).any(0).sum() == 12


def test_seed_reproducible_and_generator() -> None:
    image, mask = _labeled_batch()
    view = WeakView(12)
    torch.manual_seed(5)
    a = view(image, mask)
    torch.manual_seed(5)
    b = view(image, mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    c = geometric_resample(image, mask, 12, generator=g1)
    d = geometric_resample(image, mask, 12, generator=g2)
    assert torch.equal(c[1], d[1])
    e = geometric_resample(image, mask, 12, generator=torch.Generator().manual_seed(10))
    assert not torch.equal(c[1], e[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_device_and_dtype_follow_input(dtype: torch.dtype) -> None:
    image, mask = _labeled_batch()
    out, out_mask = WeakView(10)(image.to(dtype), mask)
    assert out.dtype == dtype and out.device == image.device
    assert out_mask.device == image.device


def test_rotation_keeps_mask_valid() -> None:
    image, mask = _labeled_batch(b=8)
    torch.manual_seed(0)
    out, out_mask = WeakView(16, scale=(1.0, 1.0), rotate=True)(image, mask)
    assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist()) | {255}
    real = out_mask != 255
    assert torch.allclose(out[:, 0][real] * 1000, out_mask[real].float(), atol=1e-3)


def test_finetune_augmentation() -> None:
    image, mask = _labeled_batch(b=4, h=20, w=20)
    torch.manual_seed(0)
    aug = SegmentationAugmentation(16, scale=(1.0, 1.0), degrees=30, p_jitter=0, p_gray=0, p_blur=0)
    out, out_mask = aug(image, mask)
    assert out.shape == (4, 3, 16, 16) and out_mask.dtype == torch.int64
    assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist()) | {255}
    full = SegmentationAugmentation(16)
    out, out_mask = full(image, mask)
    assert out.min() >= 0 and out.max() <= 1
    assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist()) | {255}


def test_scale_one_on_crop_size_inputs_copies_pixels_of_a_flip_or_rotation() -> None:
    image, mask = _labeled_batch(b=16, h=9, w=9)
    generic, fast = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    out, out_mask = geometric_resample(image, mask, 9, scale=(1.0, 1.0), rot90=True, generator=fast)
    # A negligible free angle takes the sampling-grid path with the same random draws.
    ref, ref_mask = geometric_resample(
        image, mask, 9, scale=(1.0, 1.0), rot90=True, degrees=1e-12, generator=generic
    )
    assert torch.equal(out_mask, ref_mask) and torch.allclose(out, ref, atol=1e-5)
    for i in range(16):
        views = [
            (image[i].flip(dims).rot90(k, (-2, -1)), mask[i].flip(dims).rot90(k, (-2, -1)))
            for dims in ([], [-1], [-2], [-2, -1])
            for k in range(4)
        ]
        assert any(torch.equal(v, out[i]) and torch.equal(m, out_mask[i]) for v, m in views)
    pad, _ = geometric_resample(image, None, 9, scale=(1.0, 1.0), rot90=True)
    assert pad.shape == image.shape


def test_finetune_strengths_are_the_reference_and_the_mild_ones_stay_available() -> None:
    jitter, gray, blur = SegmentationAugmentation(16).photometry.rgb
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (0.5, 0.5, 0.5, 0.25)
    assert (jitter.p, gray.p, blur.p) == (0.8, 0.2, 0.5)
    jitter, gray, blur = SegmentationAugmentation(16, **SegmentationAugmentation.MILD).photometry.rgb
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (0.4, 0.4, 0.4, 0.1)
    assert (jitter.p, gray.p, blur.p) == (0.5, 0.1, 0.2)
