"""UPerNet decoder (pyramid pooling + FPN fusion) and the UPerNet segmentation model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from s5geo.models.base import Encoder, SegmentationModel
from s5geo.models.layers import AdaptiveAvgPool2d, ConvBNReLU, resize


class UPerHead(nn.Module):
    """UPerNet head on a feature pyramid (finest first), returning the fused stride-4 map.

    Attribute names follow mmseg's ``UPerHead`` (``psp_modules``, ``bottleneck``,
    ``lateral_convs``, ``fpn_convs``, ``fpn_bottleneck``), so its weights load by prefix rename.

    Args:
        in_channels: channels of each input level, finest first.
        channels: channels of every head convolution.
        pool_scales: output sizes of the pyramid pooling module on the coarsest level.
    """

    align_corners = False

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: int = 256,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
    ) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.channels = channels
        top = self.in_channels[-1]
        self.psp_modules = nn.ModuleList(
            nn.Sequential(AdaptiveAvgPool2d(scale), ConvBNReLU(top, channels, 1)) for scale in pool_scales
        )
        self.bottleneck = ConvBNReLU(top + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(ConvBNReLU(c, channels, 1) for c in self.in_channels[:-1])
        self.fpn_convs = nn.ModuleList(ConvBNReLU(channels, channels, 3) for _ in self.in_channels[:-1])
        self.fpn_bottleneck = ConvBNReLU(len(self.in_channels) * channels, channels, 3)

    def _psp(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        pooled = [resize(m(x), size, self.align_corners) for m in self.psp_modules]
        return self.bottleneck(torch.cat([x, *pooled], dim=1))

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Fuse the pyramid into one ``B x channels x h0 x w0`` map (h0, w0: finest level)."""
        if len(features) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} feature maps, got {len(features)}")
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features, strict=False)]
        laterals.append(self._psp(features[-1]))
        for i in range(len(laterals) - 1, 0, -1):  # top-down pathway
            laterals[i - 1] = laterals[i - 1] + resize(
                laterals[i], laterals[i - 1].shape[-2:], self.align_corners
            )
        outs = [conv(lat) for conv, lat in zip(self.fpn_convs, laterals, strict=False)]
        outs.append(laterals[-1])
        size = outs[0].shape[-2:]
        outs = [outs[0]] + [resize(o, size, self.align_corners) for o in outs[1:]]
        return self.fpn_bottleneck(torch.cat(outs, dim=1))


class UPerNet(SegmentationModel):
    """UPerNet: a 4-level encoder, :class:`UPerHead`, Dropout2d and a 1x1 classifier.

    Args:
        encoder: backbone returning 4 feature maps, finest first.
        num_classes: number of classes K.
        channels: UPerHead channels (256 in S5).
        pool_scales: pyramid pooling sizes.
        dropout: Dropout2d before the classifier (0.1 in S5).
    """

    def __init__(
        self,
        encoder: Encoder,
        num_classes: int,
        channels: int = 256,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        dropout: float = 0.1,
    ) -> None:
        decoder = UPerHead(encoder.out_channels, channels, pool_scales)
        super().__init__(encoder, decoder, channels, num_classes, dropout)


def build_upernet(
    encoder: Callable[..., Encoder],
    num_classes: int,
    in_channels: int = 3,
    channels: int = 256,
    dropout: float = 0.1,
    grad_checkpointing: bool = False,
    model_cls: type[UPerNet] = UPerNet,
    **encoder_options: Any,
) -> UPerNet:
    """UPerNet on ``encoder(in_channels=in_channels, **encoder_options)``.

    Args:
        encoder: encoder factory returning 4 feature maps, finest first.
        num_classes: number of classes K.
        in_channels: input bands.
        channels: UPerHead channels.
        dropout: Dropout2d before the classifier.
        grad_checkpointing: activation checkpointing in the encoder.
        model_cls: :class:`UPerNet` or a subclass of it.
        **encoder_options: passed to ``encoder`` (size, stochastic depth, ...).
    """
    model = model_cls(
        encoder(in_channels=in_channels, **encoder_options), num_classes, channels, dropout=dropout
    )
    model.set_grad_checkpointing(grad_checkpointing)
    return model
