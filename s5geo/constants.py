"""Constants shared by the datasets, transforms, datamodules and tasks (no imports, torch-free)."""

from __future__ import annotations

#: Mask value that means "no label": never trained on nor evaluated, and the fill of padded masks.
IGNORE_INDEX = 255

#: The 16 iSAID / MillionSeg classes, in mask-index order (the S5 pre-training head predicts them).
ISAID_CLASSES = (
    "background",
    "ship",
    "storage_tank",
    "baseball_diamond",
    "tennis_court",
    "basketball_court",
    "ground_track_field",
    "bridge",
    "large_vehicle",
    "small_vehicle",
    "helicopter",
    "swimming_pool",
    "roundabout",
    "soccer_ball_field",
    "plane",
    "harbor",
)
