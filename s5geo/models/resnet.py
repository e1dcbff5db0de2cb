"""UPerNet with ResNet encoders (timm ``features_only``)."""

from __future__ import annotations

from functools import partial

from s5geo.models.registry import Variant, register_variants
from s5geo.models.timm_encoder import TimmEncoder
from s5geo.models.upernet import build_upernet

#: ``layer1`` .. ``layer4`` of a timm ResNet get layer ids 1..4 (conv1/bn1: 0).
RESNET_STAGE_PATTERN = r"model\.layer(\d)\."


class ResNetEncoder(TimmEncoder):
    """timm ResNet (``resnet18``, ``resnet50``, ...) returning ``layer1`` .. ``layer4`` (timm indices 1..4).

    See :class:`TimmEncoder` for the arguments.
    """

    stage_pattern = RESNET_STAGE_PATTERN
    stem_weight = "model.conv1.weight"


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
