"""Strong view: photometric perturbations of a [0, 1] batch (Kornia), per sample, on device."""

from __future__ import annotations

import math

import kornia.augmentation as K  # noqa: N812
from torch import Tensor, nn


def blur_kernel_size(sigma_max: float) -> int:
    """Odd Gaussian kernel size covering +-3 sigma of the largest sigma."""
    return 2 * math.ceil(3 * sigma_max) + 1


class StrongView(nn.Module):
    """The reference strong view (without CutMix, which the tasks apply to mix pseudo-labels too).

    RGB batches get colour jitter (brightness 0.5, contrast 0.5, saturation 0.5, hue 0.25) with
    p=0.8, grayscale with p=0.2 and Gaussian blur with p=0.5, sigma uniform in [0.1, 2.0]. Batches
    with another band count get only brightness/contrast jitter (saturation, hue and grayscale have
    no meaning there) and blur. Each sample draws its own parameters. Input and output are in
    [0, 1]; the transform is purely photometric, so the geometry (and any label) is unchanged.

    Args:
        brightness: brightness jitter strength.
        contrast: contrast jitter strength.
        saturation: saturation jitter strength (3-band input only).
        hue: hue jitter strength (3-band input only).
        p_jitter: probability of the colour jitter.
        p_gray: probability of grayscale (3-band input only).
        p_blur: probability of the Gaussian blur.
        sigma: range of the blur's sigma.
    """

    def __init__(
        self,
        brightness: float = 0.5,
        contrast: float = 0.5,
        saturation: float = 0.5,
        hue: float = 0.25,
        p_jitter: float = 0.8,
        p_gray: float = 0.2,
        p_blur: float = 0.5,
        sigma: tuple[float, float] = (0.1, 2.0),
    ) -> None:
        super().__init__()
        kernel = blur_kernel_size(sigma[1])
        self.rgb = nn.Sequential(
            K.ColorJitter(brightness, contrast, saturation, hue, p=p_jitter),
            K.RandomGrayscale(p=p_gray),
            K.RandomGaussianBlur(kernel, sigma, p=p_blur),
        )
        self.multiband = nn.Sequential(
            K.ColorJitter(brightness, contrast, 0.0, 0.0, p=p_jitter),
            K.RandomGaussianBlur(kernel, sigma, p=p_blur),
        )

    def forward(self, image: Tensor) -> Tensor:
        """Perturb a ``B x C x H x W`` batch in [0, 1]; returns the same shape, in [0, 1]."""
        if image.ndim != 4:
            raise ValueError(f"expected a B x C x H x W batch, got shape {tuple(image.shape)}")
        pipeline = self.rgb if image.shape[1] == 3 else self.multiband
        return pipeline(image).clamp_(0.0, 1.0)
