"""Collate functions that bring samples of different sizes to one size before stacking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from s5geo.constants import IGNORE_INDEX

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
        batch: dict[str, Any] = {"image": torch.stack(images)}
        if masks:
            if len(masks) != len(images):
                raise ValueError("some samples of the batch have a mask and others do not")
            batch["padding" if self.mark_padding else "mask"] = torch.stack(masks)
        rest = [k for k in samples[0] if k not in ("image", "mask")]
        batch.update(_stack_rest(samples, rest))
        return batch
