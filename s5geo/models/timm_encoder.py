"""Hierarchical timm backbones (ResNet, Swin) as s5geo encoders via ``features_only``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import timm
from torch import Tensor

from s5geo.models.base import Encoder


class TimmEncoder(Encoder):
    """A timm model created with ``features_only=True`` (random init, no download).

    Subclasses describe their family with the class attributes below (``stage_pattern`` at least).

    Attributes:
        stage_pattern: regex on parameter names whose group 1 is a stage number ``s``; such
            parameters get layer id ``s + stage_offset``, anything else 0 (the stem).
        stage_offset: added to the stage number (so that the first stage gets id 1).
        num_stages: number of stages (layer ids 1..num_stages).
        nhwc: the timm model returns channels-last ``B x H x W x C`` features (Swin).

    Args:
        name: timm architecture name, e.g. ``"resnet50"``.
        in_channels: input bands (timm builds the stem for them).
        out_indices: feature levels to return (timm indices).
        **timm_kwargs: passed to ``timm.create_model``, e.g. ``output_stride`` (32, 16 or 8:
            dilated later stages) and ``drop_path_rate`` (stochastic depth).
    """

    stage_pattern: ClassVar[str]
    stage_offset: ClassVar[int] = 0
    num_stages: ClassVar[int] = 4
    nhwc: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        in_channels: int = 3,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        **timm_kwargs: Any,
    ) -> None:
        super().__init__()
        self.model = timm.create_model(
            name,
            pretrained=False,
            features_only=True,
            out_indices=tuple(out_indices),
            in_chans=in_channels,
            **timm_kwargs,
        )
        self.out_channels = list(self.model.feature_info.channels())
        self.reductions = list(self.model.feature_info.reduction())
        self._stage_re = re.compile(self.stage_pattern)
        self.num_layers = self.num_stages + 1

    def forward(self, x: Tensor) -> list[Tensor]:
        """Feature maps as ``B x C x h x w``, finest first."""
        feats = self.model(x)
        if self.nhwc:
            feats = [f.permute(0, 3, 1, 2) for f in feats]
        return list(feats)

    def layer_id(self, name: str) -> int:
        """0 for the stem, 1..num_stages for the stages."""
        match = self._stage_re.match(name)
        return int(match.group(1)) + self.stage_offset if match else 0

    def no_weight_decay(self) -> set[str]:
        """Relative position bias tables and absolute position embeddings (Swin)."""
        keys = ("relative_position_bias_table", "absolute_pos_embed")
        return {n for n, _ in self.named_parameters() if any(k in n for k in keys)}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint each top-level stage of the timm feature extractor."""
        self.model.set_grad_checkpointing(enable)
