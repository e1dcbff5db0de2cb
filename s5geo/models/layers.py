"""Small building blocks shared by the decoders and necks."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

#: Module types whose parameters are normalisation weights (excluded from weight decay).
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)


class ConvBNReLU(nn.Module):
    """Conv (no bias) + BatchNorm + ReLU, named ``conv``/``bn`` like mmcv's ``ConvModule``.

    Keeping mmcv's attribute names makes converting mmseg/S5 decoder weights a pure prefix rename.
    BatchNorm becomes SyncBatchNorm with ``nn.SyncBatchNorm.convert_sync_batchnorm``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Apply conv, norm and activation."""
        return self.act(self.bn(self.conv(x)))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``B x C x H x W`` tensor (the S5 ViT neck's ``Norm2d``)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise each pixel's channel vector."""
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def resize(x: Tensor, size: tuple[int, int] | torch.Size, align_corners: bool = False) -> Tensor:
    """Bilinear resize that skips the call when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)
