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


def _bin_masks(length: int, bins: int, like: Tensor) -> Tensor:
    """``bins x length`` 0/1 matrix of adaptive pooling's bins ``[floor(i n / s), ceil((i + 1) n / s))``.

    The edges are tensor arithmetic on ``arange(length)``, so an exported graph computes them from
    the input size at run time (no shape-dependent slicing, which also keeps tracing fast).
    """
    index = torch.arange(length, device=like.device)
    n = index[-1:] + 1  # the length as a tensor
    i = torch.arange(bins, device=like.device)[:, None]
    start = torch.div(i * n, bins, rounding_mode="floor")  # non-negative: floor = truncation
    end = torch.div((i + 1) * n + bins - 1, bins, rounding_mode="floor")
    return ((index >= start) & (index < end)).to(like.dtype)


def adaptive_avg_pool2d_explicit(x: Tensor, output_size: int | tuple[int, int]) -> Tensor:
    """``F.adaptive_avg_pool2d`` written with matrix products that export for any input size.

    Each bin is summed over its rows with a 0/1 matrix and divided by its row count, then the same
    over its columns. Within a bin every element has the same weight, so this is the bin mean (up
    to float rounding, ~1e-7 relative). The bins are computed from the input size at run time, so
    ONNX graphs stay valid at every window size (the ATen operator exports with the traced size's
    indices baked in). Unlike the ATen operator, a NaN or inf anywhere reaches every bin.

    Args:
        x: ``... x H x W`` floating tensor.
        output_size: ``s`` or ``(s_h, s_w)``.
    """
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    rows = _bin_masks(x.shape[-2], out_h, x)  # s_h x H
    cols = _bin_masks(x.shape[-1], out_w, x)  # s_w x W
    x = (rows @ x) / rows.sum(-1, keepdim=True)
    return (x @ cols.transpose(0, 1)) / cols.sum(-1)


def _exporting() -> bool:
    """True while ``torch.export``/``torch.onnx.export`` (either exporter) traces the model."""
    return torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` (integer output sizes) whose exported graph works at every size.

    Eager and compiled runs call the ATen operator, so training and prediction numerics are those
    of ``nn.AdaptiveAvgPool2d``; while exporting, :func:`adaptive_avg_pool2d_explicit` is traced
    instead. The module has no parameters: swapping it in keeps state-dict keys.
    """

    def __init__(self, output_size: int | tuple[int, int]) -> None:
        size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
            raise ValueError(f"output_size must be a positive int or a pair of them, got {output_size!r}")
        super().__init__(output_size)

    def forward(self, x: Tensor) -> Tensor:
        """Average-pool ``x`` to ``output_size``."""
        if _exporting():
            return adaptive_avg_pool2d_explicit(x, self.output_size)  # type: ignore[arg-type]
        return super().forward(x)


def resize(x: Tensor, size: tuple[int, int] | torch.Size, align_corners: bool = False) -> Tensor:
    """Bilinear resize that skips the call when the size already matches.

    While exporting the call is always made: comparing sizes would fix the traced window size in
    the graph (a same-size bilinear resize returns its input unchanged).
    """
    if not _exporting() and tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)
