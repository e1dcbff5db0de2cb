"""Supervised fine-tuning augmentation, batched on the device.

Paper Table 12: rotation, flips, resize, crop, colour jitter, grayscale, blur; the strengths are
those of the S5 fine-tuning code.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from s5geo.transforms.strong import StrongView
from s5geo.transforms.weak import WeakView


class SegmentationAugmentation(nn.Module):
    """Geometric + photometric augmentation of labeled batches for supervised training.

    A :class:`WeakView` (with an optional small rotation) followed by a :class:`StrongView`, with
    the strengths of the S5 fine-tuning code: colour jitter 0.5/0.5/0.5/0.25 at p=0.8, grayscale
    p=0.2, blur p=0.5 (:attr:`MILD` holds s5geo's earlier, milder ones:
    ``SegmentationAugmentation(512, **SegmentationAugmentation.MILD)``).

    Geometry (per sample, one resampling): rescale of the long side by ``U(scale)``, pad (image 0,
    mask 255), random ``crop_size`` crop (with ``scale=(1, 1)`` on ``crop_size`` inputs, as after
    the datamodules' loader-side rescale, only what follows), horizontal/vertical flips, a random
    multiple of 90 degrees and, with ``degrees > 0``, a small random rotation whose uncovered
    corners become ignore (255). Flips at p=0.5 with a uniform multiple of 90 degrees give each of
    the 8 flips/rotations of a square the same probability, as the reference's flips with one
    90-degree rotation at p=0.5 do. Photometry on [0, 1] images: colour jitter, grayscale and
    Gaussian blur (brightness/contrast/blur only for non-RGB band counts). Masks stay integer; 255
    stays 255.

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

    #: s5geo's earlier photometric strengths, milder than the reference's.
    MILD: ClassVar[dict[str, Any]] = {
        "jitter": (0.4, 0.4, 0.4, 0.1),
        "p_jitter": 0.5,
        "p_gray": 0.1,
        "p_blur": 0.2,
    }

    def __init__(
        self,
        crop_size: int = 512,
        scale: tuple[float, float] = (0.5, 2.0),
        hflip: bool = True,
        vflip: bool = True,
        rot90: bool = True,
        degrees: float = 0.0,
        jitter: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.25),
        p_jitter: float = 0.8,
        p_gray: float = 0.2,
        p_blur: float = 0.5,
        sigma: tuple[float, float] = (0.1, 2.0),
    ) -> None:
        super().__init__()
        self.geometry = WeakView(crop_size, scale, hflip, vflip, rotate=rot90, degrees=degrees)
        self.photometry = StrongView(*jitter, p_jitter=p_jitter, p_gray=p_gray, p_blur=p_blur, sigma=sigma)

    def forward(self, image: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Augment a batch.

        Args:
            image: ``B x C x H x W`` batch in [0, 1].
            mask: ``B x H x W`` integer labels (None: the 0/255 padding marker is returned).

        Returns:
            ``(image B x C x S x S in [0, 1], mask B x S x S int64)``.
        """
        image, mask = self.geometry(image, mask)
        return self.photometry(image), mask
