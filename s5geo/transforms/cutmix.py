"""CutMix for segmentation.

A box per sample and a mixing helper for images, labels and confidences.
"""

from __future__ import annotations

import torch
from torch import Tensor

_MAX_ROUNDS = 1000


def cutmix_boxes(
    batch_size: int,
    height: int,
    width: int,
    p: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one CutMix box per sample, with the reference distribution.

    With probability ``p`` a sample gets a box of area ``U(area) * height * width`` and aspect ratio
    ``h / w = U(ratio)``, with ``w = int(sqrt(area / ratio))`` and ``h = int(sqrt(area * ratio))``;
    its top-left corner is uniform over the image and the (ratio, corner) draw is repeated until
    the box fits, as in the reference loop. Otherwise the sample's box is empty.

    Args:
        batch_size: number of boxes ``B``.
        height: image height ``H``.
        width: image width ``W``.
        p: probability that a sample gets a box.
        area: range of the box area as a fraction of the image.
        ratio: range of the box's height/width ratio.
        device: device of the returned tensor.
        generator: random generator (CPU) for reproducible boxes.

    Returns:
        ``B x H x W`` bool tensor, True inside each box.
    """
    b = batch_size
    apply = torch.rand(b, generator=generator) < p
    box_area = area[0] + (area[1] - area[0]) * torch.rand(b, generator=generator, dtype=torch.float64)
    box_area = box_area * height * width
    bw = torch.zeros(b, dtype=torch.long)
    bh = torch.zeros(b, dtype=torch.long)
    x0 = torch.zeros(b, dtype=torch.long)
    y0 = torch.zeros(b, dtype=torch.long)
    todo = apply.clone()
    for _ in range(_MAX_ROUNDS):
        if not todo.any():
            break
        r = ratio[0] + (ratio[1] - ratio[0]) * torch.rand(b, generator=generator, dtype=torch.float64)
        cw = torch.sqrt(box_area / r).long()
        ch = torch.sqrt(box_area * r).long()
        cx = torch.randint(0, width, (b,), generator=generator)
        cy = torch.randint(0, height, (b,), generator=generator)
        fits = todo & (cx + cw <= width) & (cy + ch <= height)
        bw, bh = torch.where(fits, cw, bw), torch.where(fits, ch, bh)
        x0, y0 = torch.where(fits, cx, x0), torch.where(fits, cy, y0)
        todo &= ~fits
    if todo.any():
        # Only reachable for extreme area/ratio settings: fall back to a square box clipped to the
        # image.
        side = torch.sqrt(box_area[todo])
        bw[todo] = side.long().clamp(max=width)
        bh[todo] = side.long().clamp(max=height)
        x0[todo] = 0
        y0[todo] = 0
    ys = torch.arange(height)[None, :, None]
    xs = torch.arange(width)[None, None, :]
    box = (
        (ys >= y0[:, None, None])
        & (ys < (y0 + bh)[:, None, None])
        & (xs >= x0[:, None, None])
        & (xs < (x0 + bw)[:, None, None])
    )
    box &= apply[:, None, None]
    return box.to(device) if device is not None else box


def mix(box: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Take ``b`` inside the box and ``a`` outside it.

    Args:
        box: ``B x H x W`` bool tensor.
        a: ``B x H x W`` or ``B x C x H x W`` tensor (the box broadcasts over channels).
        b: tensor shaped like ``a`` (the partner).

    Returns:
        The mixed tensor, shaped and typed like ``a``.
    """
    if a.shape != b.shape:
        raise ValueError(f"cannot mix tensors of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if box.ndim != 3 or box.shape[0] != a.shape[0] or box.shape[-2:] != a.shape[-2:]:
        raise ValueError(f"box shape {tuple(box.shape)} does not fit tensor shape {tuple(a.shape)}")
    selector = box.to(device=a.device, dtype=torch.bool)
    while selector.ndim < a.ndim:
        selector = selector.unsqueeze(1)
    return torch.where(selector, b, a)


__all__ = ["cutmix_boxes", "mix"]
