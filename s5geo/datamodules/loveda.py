"""LoveDA datamodule (paper Table 12: batch 24, crop 512, 120 epochs)."""

from __future__ import annotations

from s5geo.datamodules._benchmark import BenchmarkDataModule
from s5geo.datasets.loveda import LoveDA


class LoveDADataModule(BenchmarkDataModule):
    """LoveDA fine-tuning datamodule.

    Trains on train+val (4191 images of 1024 px, as in the paper); validates on val and tests on
    val as well, since test labels are withheld (use ``test_split="test"`` with ``predict`` for the
    online benchmark). Raw 0 (no-data) is ignored. Training reads whole images, cropped in the
    loader.

    Takes the arguments of :class:`~s5geo.datamodules._benchmark.BenchmarkDataModule`;
    ``root`` defaults to :attr:`default_root`.
    """

    dataset = LoveDA
    default_root = "data/loveda"
    gsd = 0.3
    default_train_split = "trainval"
    default_test_split = "val"
