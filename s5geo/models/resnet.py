"""UPerNet with ResNet encoders (timm ``features_only``)."""

from __future__ import annotations

from typing import Any

from s5geo.models.registry import register_model
from s5geo.models.timm_encoder import TimmEncoder
from s5geo.models.upernet import UPerNet

#: ``layer1`` .. ``layer4`` of a timm ResNet get layer ids 1..4 (conv1/bn1: 0).
RESNET_STAGE_PATTERN = r"model\.layer(\d)\."


class ResNetEncoder(TimmEncoder):
    """timm ResNet returning the outputs of ``layer1`` .. ``layer4`` (strides 4..32).

    Args:
        name: timm ResNet name (``resnet18``, ``resnet50``, ``resnet101``, ...).
        in_channels: input bands.
        out_indices: timm feature indices (1..4 are layer1..layer4).
        output_stride: 32, 16 or 8 (dilated later stages).
        drop_path_rate: stochastic depth rate.
    """

    def __init__(
        self,
        name: str,
        in_channels: int = 3,
        out_indices: tuple[int, ...] = (1, 2, 3, 4),
        output_stride: int = 32,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(
            name,
            in_channels,
            out_indices,
            stage_pattern=RESNET_STAGE_PATTERN,
            output_stride=output_stride,
            drop_path_rate=drop_path_rate,
        )
        self.stem_weight = "model.conv1.weight"


def _upernet_resnet(
    name: str,
    num_classes: int,
    in_channels: int,
    channels: int = 256,
    dropout: float = 0.1,
    drop_path_rate: float = 0.0,
    grad_checkpointing: bool = False,
) -> UPerNet:
    encoder = ResNetEncoder(name, in_channels, drop_path_rate=drop_path_rate)
    model = UPerNet(encoder, num_classes, channels=channels, dropout=dropout)
    model.set_grad_checkpointing(grad_checkpointing)
    return model


@register_model("upernet_resnet50")
def upernet_resnet50(num_classes: int, in_channels: int = 3, **kwargs: Any) -> UPerNet:
    """UPerNet with ResNet-50."""
    return _upernet_resnet("resnet50", num_classes, in_channels, **kwargs)


@register_model("upernet_resnet101")
def upernet_resnet101(num_classes: int, in_channels: int = 3, **kwargs: Any) -> UPerNet:
    """UPerNet with ResNet-101."""
    return _upernet_resnet("resnet101", num_classes, in_channels, **kwargs)


@register_model("upernet_resnet18")
def upernet_resnet18(num_classes: int, in_channels: int = 3, **kwargs: Any) -> UPerNet:
    """Small UPerNet with ResNet-18 (head 64 channels) for tests and CPU demos."""
    kwargs.setdefault("channels", 64)
    return _upernet_resnet("resnet18", num_classes, in_channels, **kwargs)
