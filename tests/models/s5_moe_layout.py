"""Seeded fake checkpoints in the key layout of the S5 authors' multi-dataset ViT-MoE UperNet.

The layout is read from their fine-tuning code: ``model/backbone/vit_moe.py`` (mmcv layers:
``ln1``/``ln2``, ``attn.attn.in_proj_*``/``out_proj``, ``ffn.layers.0.0`` and ``ffn.layers.1`` shared,
``ffn.experts.E``; ``cls_token`` unused; ``pos_embed`` without a class slot; ``fpn1``/``fpn2`` with the
neck's ``Norm2d`` as ``.ln``), ``model/semseg/upernet_mdf.py`` (``semsegdecoder`` for Vaihingen and
``semsegdecoder_potsdam``/``_OpenEarthMap``/``_loveda``, each an mmseg ``UPerHead`` under
``decode_head`` with SyncBN ``ConvModule``s and a 1-class ``conv_seg``; heads
``semseghead_<dataset>`` = Dropout2d + Conv2d, so ``.1.``), saved by ``md_finetune.py`` as
``{"model": ddp_model.state_dict()}`` (``module.`` prefix).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

DECODERS = {
    "vaihingen": "semsegdecoder",
    "potsdam": "semsegdecoder_potsdam",
    "openearthmap": "semsegdecoder_OpenEarthMap",
    "loveda": "semsegdecoder_loveda",
}
HEADS = {
    "vaihingen": "semseghead_vaihingen",
    "potsdam": "semseghead_potsdam",
    "openearthmap": "semseghead_OpenEarthMap",
    "loveda": "semseghead_loveda",
}
CLASSES = {"vaihingen": 5, "potsdam": 5, "openearthmap": 9, "loveda": 7}


def _conv_module(prefix: str, cin: int, cout: int, k: int) -> dict[str, tuple[int, ...]]:
    shapes = {f"{prefix}.conv.weight": (cout, cin, k, k)}
    for name in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{prefix}.bn.{name}"] = (cout,)
    shapes[f"{prefix}.bn.num_batches_tracked"] = ()
    return shapes


def moe_shapes(
    dim: int = 64, depth: int = 4, grid: int = 4, part: int = 16, experts: int = 4, channels: int = 64
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of ``model.state_dict()`` of their UperNet (ViT-MoE backbone), unprefixed."""
    hidden = 4 * dim
    s: dict[str, tuple[int, ...]] = {
        "encoder.cls_token": (1, 1, dim),
        "encoder.pos_embed": (1, grid * grid, dim),
        "encoder.patch_embed.projection.weight": (dim, 3, 16, 16),
        "encoder.patch_embed.projection.bias": (dim,),
    }
    for i in range(depth):
        p = f"encoder.layers.{i}."
        s |= {
            p + "ln1.weight": (dim,),
            p + "ln1.bias": (dim,),
            p + "attn.attn.in_proj_weight": (3 * dim, dim),
            p + "attn.attn.in_proj_bias": (3 * dim,),
            p + "attn.attn.out_proj.weight": (dim, dim),
            p + "attn.attn.out_proj.bias": (dim,),
            p + "ln2.weight": (dim,),
            p + "ln2.bias": (dim,),
            p + "ffn.layers.0.0.weight": (hidden, dim),
            p + "ffn.layers.0.0.bias": (hidden,),
            p + "ffn.layers.1.weight": (dim - part, hidden),
            p + "ffn.layers.1.bias": (dim - part,),
        }
        for e in range(experts):
            s |= {p + f"ffn.experts.{e}.weight": (part, hidden), p + f"ffn.experts.{e}.bias": (part,)}
    s |= {
        "encoder.fpn1.0.weight": (dim, dim, 2, 2),
        "encoder.fpn1.0.bias": (dim,),
        "encoder.fpn1.1.ln.weight": (dim,),
        "encoder.fpn1.1.ln.bias": (dim,),
        "encoder.fpn1.3.weight": (dim, dim, 2, 2),
        "encoder.fpn1.3.bias": (dim,),
        "encoder.fpn2.0.weight": (dim, dim, 2, 2),
        "encoder.fpn2.0.bias": (dim,),
    }
    for dataset, decoder in DECODERS.items():
        d = f"{decoder}.decode_head."
        s |= {d + "conv_seg.weight": (1, channels, 1, 1), d + "conv_seg.bias": (1,)}
        for k in range(4):
            s |= _conv_module(d + f"psp_modules.{k}.1", dim, channels, 1)
        s |= _conv_module(d + "bottleneck", dim + 4 * channels, channels, 3)
        for k in range(3):
            s |= _conv_module(d + f"lateral_convs.{k}", dim, channels, 1)
            s |= _conv_module(d + f"fpn_convs.{k}", channels, channels, 3)
        s |= _conv_module(d + "fpn_bottleneck", 4 * channels, channels, 3)
        s |= {
            f"{HEADS[dataset]}.1.weight": (CLASSES[dataset], channels, 1, 1),
            f"{HEADS[dataset]}.1.bias": (CLASSES[dataset],),
        }
    return s


def fake_moe_checkpoint(seed: int = 0, **kwargs: int) -> dict[str, dict[str, Tensor]]:
    """``{"model": {"module.<key>": tensor}}`` with seeded values (variances positive)."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    for key, shape in moe_shapes(**kwargs).items():
        if key.endswith("num_batches_tracked"):
            value = torch.tensor(100)
        elif key.endswith("running_var"):
            value = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith(("ln1.weight", "ln2.weight", "ln.weight", "bn.weight")):
            value = 1 + 0.1 * torch.randn(shape, generator=generator)
        elif len(shape) >= 2 and not key.endswith(("pos_embed", "cls_token")):
            fan_in = math.prod(shape[1:])
            value = torch.randn(shape, generator=generator) / math.sqrt(fan_in)
        else:
            value = 0.1 * torch.randn(shape, generator=generator)
        state[f"module.{key}"] = value
    return {"model": state}
