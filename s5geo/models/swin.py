"""UPerNet with a Swin Transformer encoder (timm ``features_only``)."""

from __future__ import annotations

from functools import partial

from s5geo.models.registry import Variant, register_variants
from s5geo.models.timm_encoder import TimmEncoder
from s5geo.models.upernet import build_upernet


class SwinEncoder(TimmEncoder):
    """timm Swin returning its four stage outputs (strides 4..32) as ``B x C x h x w``.

    Args:
        name: timm Swin name, e.g. ``swin_tiny_patch4_window7_224``.
        in_channels: input bands.
        img_size: size the attention masks are built for; other sizes work
            (``strict_img_size=False``), at the cost of rebuilding masks.
        drop_path_rate: stochastic depth rate (0.3 for Swin-T in S5).
    """

    stage_pattern = r"model\.layers_(\d)\."
    stage_offset = 1
    nhwc = True
    stem_weight = "model.patch_embed.proj.weight"

    def __init__(
        self, name: str, in_channels: int = 3, img_size: int = 512, drop_path_rate: float = 0.3
    ) -> None:
        super().__init__(
            name,
            in_channels,
            (0, 1, 2, 3),
            img_size=img_size,
            strict_img_size=False,
            drop_path_rate=drop_path_rate,
        )


register_variants(
    "upernet",
    build_upernet,
    {"swin_t": Variant(partial(SwinEncoder, "swin_tiny_patch4_window7_224"), "Swin-T (patch 4, window 7)")},
)
