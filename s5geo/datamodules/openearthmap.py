"""OpenEarthMap datamodule (paper Table 12: batch 24, crop 512, 100 epochs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s5geo.datamodules._benchmark import BenchmarkDataModule
from s5geo.datasets.openearthmap import OpenEarthMap


class OpenEarthMapDataModule(BenchmarkDataModule):
    """OpenEarthMap fine-tuning datamodule.

    Trains on the train list; validates and tests on val without the xBD regions, as the paper
    evaluates (``exclude_xbd=True``). Label 0 is trained as a ninth class. Training reads whole
    images, cropped in the loader.

    Args:
        root: dataset folder (see :class:`~s5geo.datasets.OpenEarthMap`).
        **kwargs: :class:`~s5geo.datamodules._benchmark.BenchmarkDataModule` arguments.
    """

    dataset = OpenEarthMap
    default_test_split = "val"

    def __init__(self, root: str | Path = "data/openearthmap", **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
