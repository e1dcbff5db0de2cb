"""ViT with rotated varied-size window attention (RVSA, as in MTP and the S5 code) and its UPerNet.

Every ``interval``-th block attends globally (with decomposed relative positions over the whole
grid); the others use RVSA: the token map is padded to whole 7x7 windows, and for each window and
head a learned offset, scale and rotation move a sampling grid from which keys and values are
bilinearly sampled (``grid_sample``); each window's queries attend to its sampled keys with
decomposed relative positions and a relative-position bias table.

Parameter names follow the MTP/S5 ``RVSA_MTP`` backbone (``blocks.N.attn.sampling_offsets.2``,
``rel_pos_h``, ``relative_position_bias_table``, ``full_attn_rel_pos_h``, ...) under ``vit.``, and
the neck is :class:`~s5geo.models.vit.ViTPyramidNeck`, so their checkpoints load by the ViT
renames. LayerNorm eps is 1e-6 and stochastic depth applies to both branches, as in that code.
At another input size than the position grid the position embedding and the global blocks'
relative-position tables are resampled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from timm.layers import DropPath, Mlp, resample_abs_pos_embed, trunc_normal_
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from s5geo.models.base import Encoder
from s5geo.models.layers import _exporting
from s5geo.models.registry import Variant, register_variants
from s5geo.models.upernet import build_upernet
from s5geo.models.vit import TINY_VIT_DEFAULTS, ViTPyramidNeck, vit_size


def _rel_table(table: Tensor, length: int) -> Tensor:
    """A ``(2L' - 1) x d`` relative-position table resampled (linearly) to ``2 * length - 1`` rows."""
    rows = 2 * length - 1
    if not _exporting() and table.shape[0] == rows:  # comparing would fix the traced size
        return table
    return F.interpolate(table.t()[None], size=rows, mode="linear", align_corners=False)[0].t()


def _add_decomposed_rel_pos(
    attn: Tensor, q: Tensor, size: tuple[int, int], table_h: Tensor, table_w: Tensor
) -> Tensor:
    """Add ``q . R_h[i - i']`` and ``q . R_w[j - j']`` to square attention logits over an ``h x w`` map.

    Args:
        attn: ``B x heads x hw x hw`` logits.
        q: ``B x heads x hw x d`` queries.
        size: ``(h, w)``.
        table_h: ``(2h - 1) x d``.
        table_w: ``(2w - 1) x d``.
    """
    h, w = size
    ih, iw = torch.arange(h, device=q.device), torch.arange(w, device=q.device)
    rel_h = table_h[ih[:, None] - ih[None, :] + h - 1]  # h x h x d
    rel_w = table_w[iw[:, None] - iw[None, :] + w - 1]  # w x w x d
    b, heads, _, d = q.shape
    r_q = q.reshape(b, heads, h, w, d)
    bias_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, rel_h)
    bias_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, rel_w)
    attn = attn.view(b, heads, h, w, h, w) + bias_h[..., :, None] + bias_w[..., None, :]
    return attn.view(b, heads, h * w, h * w)


def _linspace(steps: int, device: torch.device) -> Tensor:
    """``torch.linspace(-1, 1, steps)``; while exporting, arithmetic on ``arange`` (within 1 ulp).

    The exporter records ``linspace`` with the traced length as a constant.
    """
    if not _exporting():
        return torch.linspace(-1, 1, steps, device=device)
    index = torch.arange(steps, device=device, dtype=torch.float32)
    last = index[-1:]  # steps - 1 as a tensor: symbolic floats do not export
    step = 2.0 / last
    return torch.where(2 * index < last, -1 + index * step, 1 - (last - index) * step)


class GlobalAttention(nn.Module):
    """Multi-head self-attention over all tokens with decomposed relative positions.

    Args:
        dim: token width.
        num_heads: heads.
        grid: the position grid the relative tables are built for.
        qkv_bias: bias in the qkv projection.
    """

    def __init__(self, dim: int, num_heads: int, grid: tuple[int, int], qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        # one table size for both axes, as in the reference (square grids)
        side = max(grid)
        self.full_attn_rel_pos_h = nn.Parameter(torch.zeros(2 * side - 1, head_dim))
        self.full_attn_rel_pos_w = nn.Parameter(torch.zeros(2 * side - 1, head_dim))

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        """Attend over the ``h x w`` token map ``x`` (``B x hw x C``)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        table_h = _rel_table(self.full_attn_rel_pos_h, h)
        table_w = _rel_table(self.full_attn_rel_pos_w, w)
        attn = _add_decomposed_rel_pos(attn, q, (h, w), table_h, table_w).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class RotatedWindowAttention(nn.Module):
    """Rotated varied-size window attention (one sampling grid per window and head).

    Args:
        dim: token width.
        num_heads: heads.
        window_size: window side (7).
        qkv_bias: bias in the qkv projection.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 7, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dim = dim
        self.ws = window_size
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * window_size - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * window_size - 1, head_dim))

        def regressor(outputs: int) -> nn.Sequential:
            return nn.Sequential(
                nn.AvgPool2d(window_size, stride=window_size), nn.LeakyReLU(), nn.Conv2d(dim, outputs, 1)
            )

        self.sampling_offsets = regressor(num_heads * 2)
        self.sampling_scales = regressor(num_heads * 2)
        self.sampling_angles = regressor(num_heads)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(
            torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
        )
        coords = coords.flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * window_size - 1) + rel[..., 1])
        for regress in (self.sampling_offsets, self.sampling_scales):  # start as plain windows
            nn.init.zeros_(regress[-1].weight)
            nn.init.zeros_(regress[-1].bias)

    def _sampling_grid(self, x: Tensor, h: int, w: int) -> Tensor:
        """``(B * heads) x H' x W' x 2`` sampling positions (x, y in [-1, 1]) on the padded map."""
        b, ws, heads = x.shape[0], self.ws, self.num_heads
        eh, ew = x.shape[-2:]
        nh, nw = eh // ws, ew // ws
        dev = x.device
        ref_h, ref_w = _linspace(eh, dev), _linspace(ew, dev)
        # broadcasting sums instead of expand(): exported graphs stay valid at every size
        image_ref = torch.stack([ref_w[None, :] + 0 * ref_h[:, None], ref_h[:, None] + 0 * ref_w[None, :]])
        window_ref = F.avg_pool2d(image_ref[None], ws)  # 1 x 2 x nh x nw: window centres (x, y)
        base_h = torch.arange(ws, device=dev) * 2 / (eh - 1)
        base_w = torch.arange(ws, device=dev) * 2 / (ew - 1)
        # layout (B * heads) x nh x ws x nw x ws; x varies along the last axis, y along the third
        local_x = (base_w - base_w.mean()).view(1, 1, 1, 1, ws)
        local_y = (base_h - base_h.mean()).view(1, 1, ws, 1, 1)
        offsets = self.sampling_offsets(x).reshape(b * heads, 2, nh, 1, nw, 1)
        scales = self.sampling_scales(x).reshape(b * heads, 2, nh, 1, nw, 1)
        angles = self.sampling_angles(x).reshape(b * heads, nh, 1, nw, 1)
        # the reference divides the x offset by the window rows and the y offset by the columns
        rows, cols = torch.sym_max(h // ws, 1), torch.sym_max(w // ws, 1)  # 0 below one window
        local_x = local_x * (scales[:, 0] + 1)
        local_y = local_y * (scales[:, 1] + 1)
        cos, sin = torch.cos(angles), torch.sin(angles)
        coords_x = window_ref[:, 0, :, None, :, None] + (local_x * cos - local_y * sin) + offsets[:, 0] / rows
        coords_y = window_ref[:, 1, :, None, :, None] + (local_y * cos + local_x * sin) + offsets[:, 1] / cols
        coords = torch.stack([coords_x, coords_y], dim=-1)
        return coords.reshape(b * heads, eh, ew, 2)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        """Attend within sampled windows of the ``h x w`` token map ``x`` (``B x hw x C``)."""
        b, _, c = x.shape
        ws, heads, d = self.ws, self.num_heads, c // self.num_heads
        pad_h, pad_w = (ws - h % ws) % ws, (ws - w % ws) % ws
        pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        eh, ew = h + pad_h, w + pad_w
        nh, nw = eh // ws, ew // ws
        grid = self._sampling_grid(F.pad(x.transpose(1, 2).reshape(b, c, h, w), pad), h, w)

        qkv = self.qkv(x).transpose(1, 2).reshape(b, 3, heads, d, h, w).transpose(0, 1)
        qkv = F.pad(qkv.reshape(3 * b * heads, d, h, w), pad).reshape(3, b * heads, d, eh, ew)
        q, k, v = qkv[0], qkv[1], qkv[2]
        k = F.grid_sample(k, grid, padding_mode="zeros", align_corners=True)
        v = F.grid_sample(v, grid, padding_mode="zeros", align_corners=True)

        def windows(t: Tensor) -> Tensor:
            t = t.reshape(b, heads, d, nh, ws, nw, ws).permute(0, 3, 5, 1, 4, 6, 2)
            return t.reshape(b * nh * nw, heads, ws * ws, d)

        q, k, v = windows(q), windows(k), windows(v)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = _add_decomposed_rel_pos(attn, q, (ws, ws), self.rel_pos_h, self.rel_pos_w)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(ws * ws, ws * ws, heads).permute(2, 0, 1)[None]
        out = attn.softmax(dim=-1) @ v  # (b nh nw) x heads x (ws ws) x d
        out = out.reshape(b, nh, nw, heads, ws, ws, d).permute(0, 3, 6, 1, 4, 2, 5).reshape(b, c, eh, ew)
        out = out[:, :, pad[2] : pad[2] + h, pad[0] : pad[0] + w]
        return self.proj(out.flatten(2).transpose(1, 2))


class RVSABlock(nn.Module):
    """Pre-norm block (attention + MLP), stochastic depth on both branches."""

    def __init__(
        self, dim: int, num_heads: int, attn: nn.Module, mlp_ratio: float = 4.0, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = attn
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        """Both residual branches."""
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class _PatchEmbed(nn.Module):
    def __init__(self, img_size: tuple[int, int], patch_size: int, in_channels: int, dim: int) -> None:
        super().__init__()
        self.grid_size = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class _RVSATransformer(nn.Module):
    """Patch embedding, absolute position embedding and the blocks (MTP's ``RVSA_MTP`` names)."""

    def __init__(
        self,
        img_size: tuple[int, int],
        patch_size: int,
        in_channels: int,
        dim: int,
        depth: int,
        num_heads: int,
        interval: int,
        window_size: int,
        drop_path_rate: float,
    ) -> None:
        super().__init__()
        self.patch_embed = _PatchEmbed(img_size, patch_size, in_channels, dim)
        grid = self.patch_embed.grid_size
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1], dim))
        trunc_normal_(self.pos_embed, std=0.02)
        rates = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist()
        self.blocks = nn.ModuleList(
            RVSABlock(
                dim,
                num_heads,
                GlobalAttention(dim, num_heads, grid)
                if (i + 1) % interval == 0
                else RotatedWindowAttention(dim, num_heads, window_size),
                drop_path=rates[i],
            )
            for i in range(depth)
        )
        self.grad_checkpointing = False


class RVSAEncoder(Encoder):
    """RVSA ViT features from four blocks, through :class:`ViTPyramidNeck` (strides 4, 8, 16, 32).

    Args:
        embed_dim: token width.
        depth: number of blocks.
        num_heads: heads.
        out_indices: 0-based blocks whose outputs feed the neck.
        interval: every ``interval``-th block attends globally (B: 3, L: 6).
        img_size: the position grid's image size.
        patch_size: patch size.
        in_channels: input bands.
        window_size: RVSA window side.
        drop_path_rate: stochastic depth rate (linear over blocks).
    """

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        out_indices: Sequence[int],
        interval: int = 3,
        img_size: int | tuple[int, int] = 512,
        patch_size: int = 16,
        in_channels: int = 3,
        window_size: int = 7,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(out_indices) != 4:
            raise ValueError(f"need 4 out_indices, got {list(out_indices)}")
        size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.vit = _RVSATransformer(
            size, patch_size, in_channels, embed_dim, depth, num_heads, interval, window_size, drop_path_rate
        )
        self.out_indices = list(out_indices)
        self.neck = ViTPyramidNeck(embed_dim, "ln")
        self.patch_size = patch_size
        self.out_channels = [embed_dim] * 4
        self.num_layers = depth + 1
        self.stem_weight = "vit.patch_embed.proj.weight"

    def forward(self, x: Tensor) -> list[Tensor]:
        """Pyramid of 4 maps at strides p/4, p/2, p, 2p."""
        height, width = x.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"input size {height}x{width} is not a multiple of the patch size {self.patch_size}"
            )
        x = self.vit.patch_embed(x)
        b, c, h, w = x.shape
        pos = resample_abs_pos_embed(
            self.vit.pos_embed, new_size=(h, w), old_size=self.vit.patch_embed.grid_size, num_prefix_tokens=0
        )
        x = x.flatten(2).transpose(1, 2) + pos
        feats = []
        for i, block in enumerate(self.vit.blocks):
            if self.vit.grad_checkpointing and x.requires_grad:
                x = checkpoint(block, x, h, w, use_reentrant=False)
            else:
                x = block(x, h, w)
            if i in self.out_indices:
                feats.append(x.transpose(1, 2).reshape(b, c, h, w))
            if i >= max(self.out_indices):
                break
        return self.neck(feats)

    def layer_id(self, name: str) -> int:
        """0 for embeddings, ``i + 1`` for block ``i``, ``num_layers`` for the neck."""
        match = re.match(r"vit\.blocks\.(\d+)\.", name)
        if match:
            return int(match.group(1)) + 1
        if name.startswith(("vit.pos_embed", "vit.patch_embed")):
            return 0
        return self.num_layers

    def no_weight_decay(self) -> set[str]:
        """Position embedding and relative-position tables."""
        names = {"vit.pos_embed"}
        for name, _ in self.named_parameters():
            if re.search(r"rel_pos_[hw]$|relative_position_bias_table$", name):
                names.add(name)
        return names

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint every block."""
        self.vit.grad_checkpointing = enable


#: Global-attention interval of each size (MTP: B every 3rd block, L every 6th).
RVSA_INTERVALS = {"tiny": 2, "b": 3, "l": 6}


def _rvsa(size: str) -> Callable[..., RVSAEncoder]:
    return vit_size(RVSAEncoder, size, interval=RVSA_INTERVALS[size])


register_variants(
    "upernet",
    build_upernet,
    {
        "vit_b_rvsa": Variant(_rvsa("b"), "ViT-B + RVSA (MTP; global attention in blocks 3, 6, 9, 12)"),
        "vit_l_rvsa": Variant(_rvsa("l"), "ViT-L + RVSA (MTP; global attention in every 6th block)"),
        "vit_tiny_rvsa": Variant(
            _rvsa("tiny"), "tiny RVSA ViT (every 2nd block global)", {**TINY_VIT_DEFAULTS, "img_size": 112}
        ),
    },
)
