"""Batched augmentations that run on the device.

Weak view, strong view, CutMix and the supervised fine-tuning augmentation.
"""

from s5geo.transforms.cutmix import cutmix_boxes, mix
from s5geo.transforms.finetune import SegmentationAugmentation
from s5geo.transforms.strong import StrongView
from s5geo.transforms.weak import IGNORE_INDEX, WeakView, geometric_resample

__all__ = [
    "IGNORE_INDEX",
    "SegmentationAugmentation",
    "StrongView",
    "WeakView",
    "cutmix_boxes",
    "geometric_resample",
    "mix",
]
