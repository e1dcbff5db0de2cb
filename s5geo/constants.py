"""Constants shared by the datasets, transforms, datamodules and tasks (no imports, torch-free)."""

from __future__ import annotations

#: Mask value that means "no label": never trained on nor evaluated, and the fill of padded masks.
IGNORE_INDEX = 255
