"""Weak view: random rescale, pad, crop and flips of a batch, on the batch's device.

The whole geometric chain (rescale -> pad -> crop -> flip/rotate) is folded into one sampling grid
per sample, so a batch needs a single ``grid_sample`` for the image and one for the mask, whatever
the per-sample scale factors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from s5geo.constants import IGNORE_INDEX


def _sample_long_sides(
    batch: int, long_side: int, scale: tuple[float, float], generator: torch.Generator | None
) -> Tensor:
    """Draw an integer target long side per sample, uniform in ``[scale[0] * L, scale[1] * L]``."""
    low = max(1, int(long_side * scale[0]))
    high = max(low, int(long_side * scale[1]))
    return torch.randint(low, high + 1, (batch,), generator=generator)


def geometric_resample(
    image: Tensor,
    mask: Tensor | None,
    crop_size: int,
    *,
    scale: tuple[float, float] = (0.5, 2.0),
    hflip: bool = True,
    vflip: bool = True,
    rot90: bool = False,
    degrees: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Rescale, pad, crop, flip and rotate every sample of a batch with its own random parameters.

    Matches the reference weak view: the long side is rescaled to an integer drawn uniformly in
    ``[scale[0], scale[1]] * long side`` (short side proportional, bilinear image / nearest mask),
    the result is padded on the right and bottom to the crop size (image 0, mask 255), a
    ``crop_size`` window is cut at a uniform position, then flipped (p=0.5 each) and rotated.
    Square ``crop_size`` inputs with ``scale=(1, 1)`` and no free angle (the loader already
    rescaled and cropped them) are only flipped and rotated, copying pixels exactly.

    Args:
        image: ``B x C x H x W`` float batch.
        mask: ``B x H x W`` integer batch, or None.
        crop_size: output side ``S``.
        scale: range of the rescale factor of the long side.
        hflip: random horizontal flip with p=0.5.
        vflip: random vertical flip with p=0.5.
        rot90: random rotation by a multiple of 90 degrees.
        degrees: random rotation by an angle uniform in ``[-degrees, degrees]`` about the crop
            centre; pixels coming from outside the rescaled image become padding.
        generator: random generator for the parameters (the global one by default). Parameters are
            drawn on the CPU, so a seed gives the same views on every device.

    Returns:
        ``(image B x C x S x S, mask B x S x S int64)``; the mask is 255 on padding. Without an
        input mask the returned mask is 0 on image pixels and 255 on padding.
    """
    if image.ndim != 4:
        raise ValueError(f"expected a B x C x H x W image batch, got shape {tuple(image.shape)}")
    b, _, h, w = image.shape
    if mask is not None and mask.shape != (b, h, w):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match image shape {tuple(image.shape)}")
    device, s = image.device, crop_size

    long_new = _sample_long_sides(b, max(h, w), scale, generator).double()
    factor = long_new / max(h, w)
    # Reference rounding: the long side is exact, the short side is int(side * factor + 0.5).
    hr = long_new if h >= w else torch.floor(h * factor + 0.5).clamp(min=1)
    wr = long_new if w > h else torch.floor(w * factor + 0.5).clamp(min=1)
    off_y = torch.floor(torch.rand(b, generator=generator, dtype=torch.float64) * ((hr - s).clamp(min=0) + 1))
    off_x = torch.floor(torch.rand(b, generator=generator, dtype=torch.float64) * ((wr - s).clamp(min=0) + 1))
    flip_x = torch.rand(b, generator=generator) < 0.5 if hflip else torch.zeros(b, dtype=torch.bool)
    flip_y = torch.rand(b, generator=generator) < 0.5 if vflip else torch.zeros(b, dtype=torch.bool)
    quarter = torch.randint(0, 4, (b,), generator=generator) if rot90 else torch.zeros(b, dtype=torch.long)
    angle = (torch.rand(b, generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(degrees)
    if tuple(scale) == (1.0, 1.0) and degrees == 0 and h == w == s:
        return _flip_rotate(image, mask, flip_x, flip_y, quarter)
    angle = angle + quarter.double() * (math.pi / 2)

    # Output pixel centres, centred on the crop, then rotated and flipped (the view's inverse
    # mapping).
    coords = torch.arange(s, dtype=torch.float64) - (s - 1) / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    xx = torch.where(flip_x[:, None, None], -xx, xx)
    yy = torch.where(flip_y[:, None, None], -yy, yy)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    xr = cos * xx - sin * yy + (s - 1) / 2
    yr = sin * xx + cos * yy + (s - 1) / 2
    # Position in the rescaled (padded) image, then in the input image (align_corners=False
    # convention).
    xr = xr + off_x[:, None, None]
    yr = yr + off_y[:, None, None]
    valid = (xr >= -0.5) & (yr >= -0.5) & (xr < wr[:, None, None] - 0.5) & (yr < hr[:, None, None] - 0.5)
    x_in = (xr + 0.5) * (w / wr)[:, None, None]
    y_in = (yr + 0.5) * (h / hr)[:, None, None]
    grid = torch.stack((x_in / w * 2 - 1, y_in / h * 2 - 1), dim=-1)
    work_dtype = image.dtype if image.dtype in (torch.float32, torch.float64) else torch.float32
    grid = grid.to(device=device, dtype=work_dtype)
    valid = valid.to(device)

    # "border" keeps the rescaled image's edge pixels unblended with zeros, as a plain resize would.
    out = F.grid_sample(
        image.to(work_dtype), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    out = (out * valid[:, None].to(out.dtype)).to(image.dtype if image.is_floating_point() else work_dtype)
    if mask is None:
        out_mask = torch.where(valid, 0, IGNORE_INDEX).long()
    else:
        # Nearest sampling returns input values exactly (float32 holds every integer below 2**24).
        sampled = F.grid_sample(
            mask[:, None].to(grid.dtype),
            grid,
            mode="nearest",
            padding_mode="border",
            align_corners=False,
        )[:, 0]
        out_mask = torch.where(valid, sampled.round().long(), IGNORE_INDEX)
    return out, out_mask


def _flip_rotate(
    image: Tensor, mask: Tensor | None, flip_x: Tensor, flip_y: Tensor, quarter: Tensor
) -> tuple[Tensor, Tensor]:
    """The view of :func:`geometric_resample` without rescale, shift or free angle, by indexing.

    Same mapping as the sampling grid (output pixel -> flipped -> rotated by ``quarter * 90``
    degrees -> input pixel), on doubled integer coordinates, so values are copied exactly.
    """
    b, _, s, _ = image.shape
    twice = 2 * torch.arange(s) - (s - 1)
    yy, xx = torch.meshgrid(twice, twice, indexing="ij")
    xx = torch.where(flip_x[:, None, None], -xx, xx)
    yy = torch.where(flip_y[:, None, None], -yy, yy)
    q = quarter[:, None, None] % 4
    xr = torch.where(q == 0, xx, torch.where(q == 1, -yy, torch.where(q == 2, -xx, yy)))
    yr = torch.where(q == 0, yy, torch.where(q == 1, xx, torch.where(q == 2, -yy, -xx)))
    index = (((yr + s - 1) // 2) * s + (xr + s - 1) // 2).flatten(1).to(image.device)
    out = image.flatten(2).gather(2, index[:, None].expand(-1, image.shape[1], -1)).view_as(image)
    if not image.is_floating_point():
        out = out.float()
    if mask is None:
        return out, torch.zeros(b, s, s, dtype=torch.long, device=image.device)
    return out, mask.flatten(1).gather(1, index).view_as(mask).long()


class WeakView(nn.Module):
    """The reference weak view: rescale 0.5-2.0, pad, random crop, horizontal and vertical flips.

    Works on whole batches on whatever device they are on; every sample gets its own parameters.
    Masks stay integer and 255 (ignore) stays 255; padding is 0 in the image and 255 in the mask.

    Args:
        crop_size: output side ``S``.
        scale: range of the rescale factor of the long side.
        hflip: random horizontal flip (p=0.5).
        vflip: random vertical flip (p=0.5), as in the S5 code.
        rotate: random rotation by a multiple of 90 degrees (no extra padding on square crops).
        degrees: maximum angle of an extra random rotation (see :func:`geometric_resample`).
    """

    def __init__(
        self,
        crop_size: int,
        scale: tuple[float, float] = (0.5, 2.0),
        hflip: bool = True,
        vflip: bool = True,
        rotate: bool = False,
        degrees: float = 0.0,
    ) -> None:
        super().__init__()
        if scale[0] <= 0 or scale[1] < scale[0]:
            raise ValueError(f"invalid scale range {scale}")
        self.crop_size = int(crop_size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.hflip = hflip
        self.vflip = vflip
        self.rotate = rotate
        self.degrees = float(degrees)

    def forward(self, image: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Make the weak view of a batch.

        Args:
            image: ``B x C x H x W`` float batch.
            mask: ``B x H x W`` integer labels, or None for unlabeled images.

        Returns:
            ``(image B x C x S x S, mask B x S x S int64)``; without labels the mask is 0 on image
            pixels and 255 on padding.
        """
        return geometric_resample(
            image,
            mask,
            self.crop_size,
            scale=self.scale,
            hflip=self.hflip,
            vflip=self.vflip,
            rot90=self.rotate,
            degrees=self.degrees,
        )

    def extra_repr(self) -> str:
        """Parameters shown in the module's repr."""
        return (
            f"crop_size={self.crop_size}, scale={self.scale}, hflip={self.hflip}, "
            f"vflip={self.vflip}, rotate={self.rotate}, degrees={self.degrees}"
        )
