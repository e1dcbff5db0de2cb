"""VDD datamodule (paper Table 12: batch 24, crop 512, 300 epochs)."""

from __future__ import annotations

from s5geo.datamodules._benchmark import BenchmarkDataModule
from s5geo.datasets.vdd import VDD


class VDDDataModule(BenchmarkDataModule):
    """VDD fine-tuning datamodule.

    Drone images (4000 x 3000): training samples are random loader-side crops of whole images
    (``tile_size=None``). Trains on ``"trainval"`` (the 360 images S5 fine-tunes on), so it
    validates and tests on test.

    Takes the arguments of :class:`~s5geo.datamodules._benchmark.BenchmarkDataModule`;
    ``root`` defaults to :attr:`default_root`.
    """

    dataset = VDD
    default_root = "data/vdd"
    default_train_split = "trainval"
    default_val_split = "test"
