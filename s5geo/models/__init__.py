"""Segmentation networks for s5geo: registry, UPerNet (ViT/Swin/ResNet), DeepLabV3+, checkpoints.

Importing this package registers every model; build one with :func:`build_model`.
"""

from s5geo.models import (  # noqa: F401  (register models)
    deeplabv3plus,
    efficientnet,
    resnet,
    rvsa,
    swin,
    upernet_mdf,
    vit,
    vit_moe,
)
from s5geo.models.base import Encoder, SegmentationModel
from s5geo.models.checkpoints import CheckpointError, LoadReport, load_pretrained
from s5geo.models.registry import UnknownModelError, build_model, list_models, register_model

__all__ = [
    "CheckpointError",
    "Encoder",
    "LoadReport",
    "SegmentationModel",
    "UnknownModelError",
    "build_model",
    "list_models",
    "load_pretrained",
    "register_model",
]
