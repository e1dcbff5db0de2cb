"""Supervised fine-tuning augmentation, batched on the device.

Paper Table 12: rotation, flips, resize, crop, colour jitter, grayscale, blur.
"""

from __future__ import annotations

import kornia.augmentation as K  # noqa: N812
from torch import Tensor, nn

from s5geo.transforms.strong import blur_kernel_size
from s5geo.transforms.weak import geometric_resample


class SegmentationAugmentation(nn.Module):
    """Geometric + photometric augmentation of labeled batches for supervised training.

    Geometry (per sample, one resampling): rescale of the long side by ``U(scale)``, pad (image 0,
    mask 255), random ``crop_size`` crop, horizontal/vertical flips, a random multiple of 90
    degrees and, with ``degrees > 0``, a small random rotation whose uncovered corners become
    ignore (255). Photometry on [0, 1] images: colour jitter, grayscale and Gaussian blur
    (brightness/contrast/blur only for non-RGB band counts). Masks stay integer; 255 stays 255.

    Args:
        crop_size: output side ``S``.
        scale: range of the rescale factor.
        hflip: random horizontal flip (p=0.5).
        vflip: random vertical flip (p=0.5).
        rot90: random rotation by a multiple of 90 degrees.
        degrees: maximum angle of the extra random rotation.
        jitter: brightness, contrast, saturation, hue strengths.
        p_jitter: probability of the colour jitter.
        p_gray: probability of grayscale (3 bands only).
        p_blur: probability of the Gaussian blur.
        sigma: range of the blur's sigma.
    """

    def __init__(
        self,
        crop_size: int = 512,
        scale: tuple[float, float] = (0.5, 2.0),
        hflip: bool = True,
        vflip: bool = True,
        rot90: bool = True,
        degrees: float = 0.0,
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        p_jitter: float = 0.5,
        p_gray: float = 0.1,
        p_blur: float = 0.2,
        sigma: tuple[float, float] = (0.1, 2.0),
    ) -> None:
        super().__init__()
        self.crop_size = int(crop_size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.hflip, self.vflip, self.rot90, self.degrees = hflip, vflip, rot90, float(degrees)
        kernel = blur_kernel_size(sigma[1])
        brightness, contrast, saturation, hue = jitter
        self.rgb = nn.Sequential(
            K.ColorJitter(brightness, contrast, saturation, hue, p=p_jitter),
            K.RandomGrayscale(p=p_gray),
            K.RandomGaussianBlur(kernel, sigma, p=p_blur),
        )
        self.multiband = nn.Sequential(
            K.ColorJitter(brightness, contrast, 0.0, 0.0, p=p_jitter),
            K.RandomGaussianBlur(kernel, sigma, p=p_blur),
        )

    def forward(self, image: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Augment a batch.

        Args:
            image: ``B x C x H x W`` batch in [0, 1].
            mask: ``B x H x W`` integer labels (None: the 0/255 padding marker is returned).

        Returns:
            ``(image B x C x S x S in [0, 1], mask B x S x S int64)``.
        """
        image, mask = geometric_resample(
            image,
            mask,
            self.crop_size,
            scale=self.scale,
            hflip=self.hflip,
            vflip=self.vflip,
            rot90=self.rot90,
            degrees=self.degrees,
        )
        pipeline = self.rgb if image.shape[1] == 3 else self.multiband
        image = pipeline(image).clamp_(0.0, 1.0)
        return image, mask
