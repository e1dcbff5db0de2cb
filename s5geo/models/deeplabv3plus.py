"""DeepLabV3+ (ASPP on a stride-16 ResNet, fused with stride-4 low-level features).

Follows the UniMatch/S5 DeepLabV3+: ``forward_features`` returns ``[c1, c4]`` (layer1 and the
dilated layer4), the two maps UniMatch's feature perturbation drops channels from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from s5geo.models.base import Encoder, SegmentationModel
from s5geo.models.layers import ConvBNReLU, resize
from s5geo.models.registry import register_variants
from s5geo.models.resnet import RESNETS, ResNetEncoder


class ASPPPooling(nn.Module):
    """Image-level branch of ASPP: global average, 1x1 conv, broadcast back."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = ConvBNReLU(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Pooled features expanded to the input's spatial size."""
        return self.conv(self.pool(x)).expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3, image pooling, 1x1 projection."""

    def __init__(self, in_channels: int, channels: int = 256, dilations: Sequence[int] = (6, 12, 18)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvBNReLU(in_channels, channels, 1)]
            + [ConvBNReLU(in_channels, channels, 3, dilation=d) for d in dilations]
            + [ASPPPooling(in_channels, channels)]
        )
        self.project = ConvBNReLU(channels * len(self.branches), channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Concatenate the branches and project."""
        return self.project(torch.cat([b(x) for b in self.branches], dim=1))


class DeepLabV3PlusDecoder(nn.Module):
    """ASPP on the deep map, upsample to the low-level map, concatenate, two 3x3 convs.

    Args:
        low_channels: channels of the stride-4 map.
        high_channels: channels of the stride-16 map.
        channels: ASPP/decoder channels.
        low_reduced: channels the low-level map is reduced to (48).
        dilations: ASPP dilations.
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        channels: int = 256,
        low_reduced: int = 48,
        dilations: Sequence[int] = (6, 12, 18),
    ) -> None:
        super().__init__()
        self.aspp = ASPP(high_channels, channels, dilations)
        self.reduce = ConvBNReLU(low_channels, low_reduced, 1)
        self.fuse = nn.Sequential(
            ConvBNReLU(channels + low_reduced, channels, 3),
            ConvBNReLU(channels, channels, 3),
        )

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Fuse ``[low, high]`` into one stride-4 map."""
        low, high = features
        high = resize(self.aspp(high), low.shape[-2:], align_corners=True)
        return self.fuse(torch.cat([self.reduce(low), high], dim=1))


class DeepLabV3Plus(SegmentationModel):
    """DeepLabV3+ on an encoder at output stride 16 (a timm ResNet by default).

    Args:
        backbone: timm ResNet name, or an encoder returning ``[stride-4 map, deep map]``.
        num_classes: number of classes K.
        in_channels: input bands.
        channels: ASPP/decoder channels.
        output_stride: 16 (S5/UniMatch) or 8.
        dropout: Dropout2d before the classifier (the reference has none: 0).
        drop_path_rate: stochastic depth in the ResNet.
    """

    def __init__(
        self,
        backbone: str | Encoder,
        num_classes: int,
        in_channels: int = 3,
        channels: int = 256,
        output_stride: int = 16,
        dropout: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        if isinstance(backbone, Encoder):
            encoder = backbone
        else:
            encoder = ResNetEncoder(
                backbone,
                in_channels,
                out_indices=(1, 4),
                output_stride=output_stride,
                drop_path_rate=drop_path_rate,
            )
        decoder = DeepLabV3PlusDecoder(
            encoder.out_channels[0],
            encoder.out_channels[1],
            channels,
            dilations=(6, 12, 18) if output_stride == 16 else (12, 24, 36),
        )
        super().__init__(encoder, decoder, channels, num_classes, dropout)


def build_deeplabv3plus(
    encoder: Callable[..., Encoder],
    num_classes: int,
    in_channels: int = 3,
    channels: int = 256,
    output_stride: int = 16,
    dropout: float = 0.0,
    grad_checkpointing: bool = False,
    **encoder_options: Any,
) -> DeepLabV3Plus:
    """DeepLabV3+ on ``encoder(in_channels=..., out_indices=(1, 4), output_stride=..., **encoder_options)``.

    Args:
        encoder: factory of a timm-style encoder (feature 1: stride 4, feature 4: the deep map).
        num_classes: number of classes K.
        in_channels: input bands.
        channels: ASPP/decoder channels.
        output_stride: 16 (S5/UniMatch) or 8.
        dropout: Dropout2d before the classifier.
        grad_checkpointing: activation checkpointing in the encoder.
        **encoder_options: passed to ``encoder`` (e.g. ``drop_path_rate``).
    """
    backbone = encoder(
        in_channels=in_channels, out_indices=(1, 4), output_stride=output_stride, **encoder_options
    )
    model = DeepLabV3Plus(
        backbone, num_classes, in_channels, channels=channels, output_stride=output_stride, dropout=dropout
    )
    model.set_grad_checkpointing(grad_checkpointing)
    return model


register_variants("deeplabv3plus", build_deeplabv3plus, RESNETS)
