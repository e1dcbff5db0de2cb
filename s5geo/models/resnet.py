"""UPerNet with ResNet encoders (timm ``features_only``)."""

from __future__ import annotations

from functools import partial

from s5geo.models.registry import Variant, register_variants
from s5geo.models.timm_encoder import TimmEncoder
from s5geo.models.upernet import build_upernet

#: ``layer1`` .. ``layer4`` of a timm ResNet get layer ids 1..4 (conv1/bn1: 0).
RESNET_STAGE_PATTERN = r"model\.layer(\d)\."


class ResNetEncoder(TimmEncoder):
    """timm ResNet returning the outputs of ``layer1`` .. ``layer4`` (strides 4..32).

    Args:
        name: timm ResNet name (``resnet18``, ``resnet50``, ``resnet101``, ...).
        in_channels: input bands.
        out_indices: timm feature indices (1..4 are layer1..layer4).
        output_stride: 32, 16 or 8 (dilated later stages).
        drop_path_rate: stochastic depth rate.
    """

    def __init__(
        self,
        name: str,
        in_channels: int = 3,
        out_indices: tuple[int, ...] = (1, 2, 3, 4),
        output_stride: int = 32,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(
            name,
            in_channels,
            out_indices,
            stage_pattern=RESNET_STAGE_PATTERN,
            output_stride=output_stride,
            drop_path_rate=drop_path_rate,
        )
        self.stem_weight = "model.conv1.weight"


#: ResNet encoders of the registered UPerNet and DeepLabV3+ models.
RESNETS = {
    "resnet50": Variant(partial(ResNetEncoder, "resnet50"), "ResNet-50"),
    "resnet101": Variant(
        partial(ResNetEncoder, "resnet101"),
        "ResNet-101 (DeepLabV3+: the S5 paper's semi-supervised comparison)",
    ),
    "resnet18": Variant(
        partial(ResNetEncoder, "resnet18"),
        "ResNet-18, head 64 channels, for tests and CPU demos",
        {"channels": 64},
    ),
}

register_variants("upernet", build_upernet, RESNETS)
