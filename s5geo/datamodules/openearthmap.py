"""OpenEarthMap datamodule (paper Table 12: batch 24, crop 512, 100 epochs)."""

from __future__ import annotations

from s5geo.datamodules._benchmark import BenchmarkDataModule
from s5geo.datasets.openearthmap import OpenEarthMap


class OpenEarthMapDataModule(BenchmarkDataModule):
    """OpenEarthMap fine-tuning datamodule.

    Trains on the train list; validates and tests on val without the xBD regions, as the paper
    evaluates (``exclude_xbd=True``). Label 0 is trained as a ninth class. Training reads whole
    images, cropped in the loader.

    Takes the arguments of :class:`~s5geo.datamodules._benchmark.BenchmarkDataModule`;
    ``root`` defaults to :attr:`default_root`.
    """

    dataset = OpenEarthMap
    default_root = "data/openearthmap"
    default_test_split = "val"
