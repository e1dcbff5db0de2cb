"""Plain ViT encoder (timm) with the S5 4-level pyramid neck, and the UPerNet-ViT models.

The encoder matches the S5 reference network: no class token (S5 drops it before the blocks),
no final norm, features taken after blocks B [3, 5, 7, 11], L [7, 11, 15, 23],
H [15, 23, 27, 31] (0-based), and patch size 16 for every size, ViT-H included (MAE's
ImageNet ViT-H uses patch 14; pass ``patch_size=14`` for it, or load it into a patch-16 model
and let :func:`s5geo.models.load_pretrained` resample the patch embedding).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from timm.models.vision_transformer import Block, VisionTransformer
from torch import Tensor, nn

from s5geo.models.base import Encoder
from s5geo.models.layers import LayerNorm2d
from s5geo.models.registry import Variant, register_variants
from s5geo.models.upernet import build_upernet


class ViTPyramidNeck(nn.Module):
    """Turn four stride-p ViT maps into strides p/4, p/2, p, 2p (the S5/BEiT neck).

    ``fpn1``: ConvTranspose2d, norm, GELU, ConvTranspose2d (x4); ``fpn2``: ConvTranspose2d (x2);
    ``fpn3``: identity; ``fpn4``: 2x2 max-pool. Module names match S5's, so its weights load by
    prefix rename.

    Args:
        dim: channels of the ViT features.
        norm: ``"ln"`` (channel LayerNorm, as S5) or ``"bn"`` (BatchNorm, SyncBN-convertible,
            as mmseg's MAE/BEiT configs).
    """

    def __init__(self, dim: int, norm: str = "ln") -> None:
        super().__init__()
        if norm == "ln":
            norm_layer: nn.Module = LayerNorm2d(dim)
        elif norm == "bn":
            norm_layer = nn.BatchNorm2d(dim)
        else:
            raise ValueError(f"neck norm must be 'ln' or 'bn', got {norm!r}")
        self.fpn1 = nn.Sequential(
            nn.ConvTranspose2d(dim, dim, 2, stride=2),
            norm_layer,
            nn.GELU(),
            nn.ConvTranspose2d(dim, dim, 2, stride=2),
        )
        self.fpn2 = nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, stride=2))
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(2, stride=2)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Apply one branch per level."""
        ops = (self.fpn1, self.fpn2, self.fpn3, self.fpn4)
        return [op(f) for op, f in zip(ops, features, strict=True)]


class ViTBlock(Block):
    """timm's pre-norm block with optional stochastic depth on the attention branch.

    The S5 code's layer (mmcv ``FFN`` with a ``DropPath`` dropout layer, ``MultiheadAttention``
    without one) drops only the FFN branch: ``drop_path_attn = False``. With True it is timm's
    block, dropping both branches. ``drop_path1`` keeps timm's rate schedule either way, so the
    modules and state-dict keys do not depend on the choice.
    """

    drop_path_attn: bool = True

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        """Attention and MLP residual branches."""
        branch = self.ls1(self.attn(self.norm1(x), attn_mask=attn_mask, is_causal=is_causal))
        x = x + (self.drop_path1(branch) if self.drop_path_attn else branch)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class ViTEncoder(Encoder):
    """timm ``VisionTransformer`` features from four blocks, through :class:`ViTPyramidNeck`.

    Any input whose sides are multiples of ``patch_size`` works: timm interpolates the position
    embedding (``dynamic_img_size``) from the ``img_size`` grid it was built for.

    Args:
        embed_dim: token width.
        depth: number of blocks.
        num_heads: attention heads.
        out_indices: 0-based blocks whose outputs feed the neck (4 of them).
        img_size: size of the position-embedding grid (the pre-training crop).
        patch_size: patch size.
        in_channels: input bands.
        mlp_ratio: MLP hidden width / embed_dim.
        drop_path_rate: stochastic depth rate (linearly increasing over blocks).
        neck_norm: ``"ln"`` or ``"bn"``, see :class:`ViTPyramidNeck`.
        norm_eps: epsilon of the blocks' LayerNorms: 1e-5 as the S5 code (mmcv's ``LN``); MAE and
            timm use 1e-6.
        drop_path_attn: also apply stochastic depth to the attention branch (timm's block). The
            S5 code's layer drops only the FFN branch (the default, False).
    """

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        out_indices: Sequence[int],
        img_size: int | tuple[int, int] = 512,
        patch_size: int = 16,
        in_channels: int = 3,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        neck_norm: str = "ln",
        norm_eps: float = 1e-5,
        drop_path_attn: bool = False,
    ) -> None:
        super().__init__()
        if len(out_indices) != 4:
            raise ValueError(f"need 4 out_indices, got {list(out_indices)}")
        self.vit = VisionTransformer(
            img_size=img_size,
            patch_size=patch_size,
            in_chans=in_channels,
            num_classes=0,
            global_pool="",
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            class_token=False,
            final_norm=False,
            dynamic_img_size=True,
            drop_path_rate=drop_path_rate,
            norm_layer=partial(nn.LayerNorm, eps=norm_eps),
            block_fn=ViTBlock,
        )
        for block in self.vit.blocks:
            block.drop_path_attn = drop_path_attn
        # Blocks after the last used one would only cost time and confuse DDP.
        self.out_indices = self.vit.prune_intermediate_layers(
            list(out_indices), prune_norm=True, prune_head=True
        )
        self.neck = ViTPyramidNeck(embed_dim, neck_norm)
        self.patch_size = patch_size
        self.out_channels = [embed_dim] * 4
        self.num_layers = len(self.vit.blocks) + 1
        self.stem_weight = "vit.patch_embed.proj.weight"

    def forward(self, x: Tensor) -> list[Tensor]:
        """Pyramid of 4 maps at strides p/4, p/2, p, 2p."""
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"input size {h}x{w} is not a multiple of the patch size {self.patch_size}")
        feats = self.vit.forward_intermediates(
            x, indices=self.out_indices, intermediates_only=True, output_fmt="NCHW"
        )
        return self.neck(feats)

    def layer_id(self, name: str) -> int:
        """0 for embeddings, ``i + 1`` for block ``i``, ``num_layers`` for the neck."""
        if name.startswith("vit."):
            match = re.match(r"vit\.blocks\.(\d+)\.", name)
            if match:
                return int(match.group(1)) + 1
            if name.startswith(("vit.pos_embed", "vit.cls_token", "vit.patch_embed")):
                return 0
        return self.num_layers

    def no_weight_decay(self) -> set[str]:
        """Position embedding (and class token if any)."""
        names = ("pos_embed", "cls_token")
        return {f"vit.{n}" for n in names if getattr(self.vit, n, None) is not None}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint every transformer block."""
        self.vit.set_grad_checkpointing(enable)


#: ViT sizes: embed_dim, depth, num_heads, out_indices (GUIDE section 1).
VIT_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"embed_dim": 64, "depth": 4, "num_heads": 4, "out_indices": (0, 1, 2, 3)},
    "b": {"embed_dim": 768, "depth": 12, "num_heads": 12, "out_indices": (3, 5, 7, 11)},
    "l": {"embed_dim": 1024, "depth": 24, "num_heads": 16, "out_indices": (7, 11, 15, 23)},
    "h": {"embed_dim": 1280, "depth": 32, "num_heads": 16, "out_indices": (15, 23, 27, 31)},
}


_E = TypeVar("_E", bound=Encoder)


def vit_size(encoder_cls: Callable[..., _E], size: str, **defaults: Any) -> Callable[..., _E]:
    """``encoder_cls`` with the :data:`VIT_CONFIGS` entry ``size`` and stochastic depth 0.1 (as S5).

    Args:
        encoder_cls: a ViT encoder class taking the :data:`VIT_CONFIGS` keys.
        size: a :data:`VIT_CONFIGS` key.
        **defaults: further encoder defaults; every default can be overridden at the call.
    """
    return partial(encoder_cls, **{**VIT_CONFIGS[size], "drop_path_rate": 0.1, **defaults})


#: Tiny ViT defaults (width 64, 4 blocks, head 64 channels) for tests and CPU demos.
TINY_VIT_DEFAULTS: Mapping[str, Any] = {"img_size": 64, "channels": 64, "drop_path_rate": 0.0}

register_variants(
    "upernet",
    build_upernet,
    {
        "vit_b": Variant(vit_size(ViTEncoder, "b"), "ViT-B/16, features from blocks 3, 5, 7, 11"),
        "vit_l": Variant(vit_size(ViTEncoder, "l"), "ViT-L/16, features from blocks 7, 11, 15, 23"),
        "vit_h": Variant(vit_size(ViTEncoder, "h"), "ViT-H/16 as in S5, features from blocks 15, 23, 27, 31"),
        "vit_tiny": Variant(
            vit_size(ViTEncoder, "tiny"), "tiny ViT for tests and CPU demos", TINY_VIT_DEFAULTS
        ),
    },
)
