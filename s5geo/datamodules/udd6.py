"""UDD6 datamodule (paper Table 12: batch 24, crop 512, 600 epochs)."""

from __future__ import annotations

from s5geo.datamodules._benchmark import BenchmarkDataModule
from s5geo.datasets.udd6 import UDD6


class UDD6DataModule(BenchmarkDataModule):
    """UDD6 fine-tuning datamodule.

    Drone images (4096 x 2160 and larger): training samples are random loader-side crops of whole
    images (``tile_size=None``); validation and test use the val split, the only other one released.

    Takes the arguments of :class:`~s5geo.datamodules._benchmark.BenchmarkDataModule`;
    ``root`` defaults to :attr:`default_root`.
    """

    dataset = UDD6
    default_root = "data/udd6"
    default_test_split = "val"
