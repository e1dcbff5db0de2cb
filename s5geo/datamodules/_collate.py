"""Collate functions that bring samples of different sizes to one size before stacking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from s5geo.constants import IGNORE_INDEX
from s5geo.transforms.weak import geometric_resample

Sample = dict[str, Any]


def _crop_or_pad(tensor: Tensor, top: int, left: int, height: int, width: int, fill: float) -> Tensor:
    """Cut ``height x width`` at ``(top, left)`` from the last two dims, padding right/bottom."""
    part = tensor[..., top : top + height, left : left + width]
    pad_h, pad_w = height - part.shape[-2], width - part.shape[-1]
    if pad_h or pad_w:
        part = F.pad(part, (0, pad_w, 0, pad_h), value=fill)
    return part


def _stack_rest(samples: Sequence[Sample], keys: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in samples]
        if all(isinstance(v, Tensor) for v in values) and len({v.shape for v in values}) == 1:
            out[key] = torch.stack(values)
        elif all(isinstance(v, (int, float, bool)) for v in values):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out


def _stack_views(
    samples: Sequence[Sample], images: list[Tensor], masks: list[Tensor], mark_padding: bool
) -> dict[str, Any]:
    """Stack the views of a batch with the samples' other keys."""
    batch: dict[str, Any] = {"image": torch.stack(images)}
    if masks:
        if len(masks) != len(images):
            raise ValueError("some samples of the batch have a mask and others do not")
        batch["padding" if mark_padding else "mask"] = torch.stack(masks)
    rest = [k for k in samples[0] if k not in ("image", "mask")]
    batch.update(_stack_rest(samples, rest))
    return batch


class CropPadCollate:
    """Bring every sample to ``size x size`` (random crop if larger, pad if smaller) and stack.

    Images are padded with 0 and masks with 255, padding on the right and bottom. With
    ``mark_padding=True`` (the unlabeled stream) any mask in the samples is dropped and the batch
    holds ``"padding"`` instead, a boolean ``B x size x size`` tensor that is True on padding (see
    ``docs/architecture.md``).

    Args:
        size: common side; None pads every sample to the largest height/width in the batch
            without cropping (for evaluation).
        mark_padding: write the boolean ``"padding"`` flag instead of masks.
    """

    def __init__(self, size: int | None = None, mark_padding: bool = False) -> None:
        self.size = size
        self.mark_padding = mark_padding

    def __call__(self, samples: Sequence[Sample]) -> dict[str, Any]:
        """Collate a list of sample dicts into a batch dict."""
        if self.size is None:
            height = max(int(s["image"].shape[-2]) for s in samples)
            width = max(int(s["image"].shape[-1]) for s in samples)
        else:
            height = width = self.size
        images, masks = [], []
        for sample in samples:
            image = sample["image"]
            h, w = image.shape[-2:]
            top = int(torch.randint(0, h - height + 1, ()).item()) if h > height else 0
            left = int(torch.randint(0, w - width + 1, ()).item()) if w > width else 0
            images.append(_crop_or_pad(image, top, left, height, width, 0.0))
            if self.mark_padding:
                image_pixels = torch.zeros(h, w, dtype=torch.bool)
                masks.append(_crop_or_pad(image_pixels, top, left, height, width, True))
            elif "mask" in sample:
                mask = torch.as_tensor(sample["mask"]).long()
                masks.append(_crop_or_pad(mask, top, left, height, width, IGNORE_INDEX))
        return _stack_views(samples, images, masks, self.mark_padding)


class RescaleCropCollate:
    """Rescale every whole sample by its own random factor, then crop ``size x size``, and stack.

    The reference weak view's geometry, in the loader: the long side of each image is rescaled to
    an integer drawn uniformly in ``[scale[0], scale[1]] * long side`` (bilinear image, nearest
    mask), the result is padded right/bottom only where it is smaller than ``size`` (image 0,
    mask 255) and a ``size`` window is cut at a uniform position. Only the pixels of that window
    are resampled (:func:`~s5geo.transforms.geometric_resample` on the whole image, no flips), so
    the cost does not grow with the factor. Flips and rotations are left to the device.

    Args:
        size: side of the views.
        scale: range of the rescale factor of the long side.
        mark_padding: write the boolean ``"padding"`` flag instead of masks (the unlabeled stream).
    """

    def __init__(
        self, size: int, scale: tuple[float, float] = (0.5, 2.0), mark_padding: bool = False
    ) -> None:
        if scale[0] <= 0 or scale[1] < scale[0]:
            raise ValueError(f"invalid scale range {scale}")
        self.size = int(size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.mark_padding = mark_padding

    def __call__(self, samples: Sequence[Sample]) -> dict[str, Any]:
        """Collate a list of sample dicts into a batch dict."""
        images, masks = [], []
        for sample in samples:
            mask = sample.get("mask") if not self.mark_padding else None
            if mask is not None:
                mask = torch.as_tensor(mask).long()[None]
            view, view_mask = geometric_resample(
                torch.as_tensor(sample["image"])[None],
                mask,
                self.size,
                scale=self.scale,
                hflip=False,
                vflip=False,
            )
            images.append(view[0])
            if self.mark_padding:
                masks.append(view_mask[0] == IGNORE_INDEX)
            elif mask is not None:
                masks.append(view_mask[0])
        return _stack_views(samples, images, masks, self.mark_padding)
