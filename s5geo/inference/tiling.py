"""Sliding-window grids and the streaming stitcher: moved to :mod:`s5geo.runtime.tiling`."""

from s5geo.runtime.tiling import (
    BLEND_MODES,
    BlendMode,
    Block,
    StreamingStitcher,
    Window,
    WindowGrid,
    argmax,
    iter_windows,
    softmax,
    stride_from_overlap,
    window_starts,
)

__all__ = [
    "BLEND_MODES",
    "BlendMode",
    "Block",
    "StreamingStitcher",
    "Window",
    "WindowGrid",
    "argmax",
    "iter_windows",
    "softmax",
    "stride_from_overlap",
    "window_starts",
]
