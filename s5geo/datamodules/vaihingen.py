"""ISPRS Vaihingen datamodule (paper Table 12: batch 24, crop 512, 75 epochs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s5geo.datamodules._benchmark import BenchmarkDataModule
from s5geo.datasets.vaihingen import Vaihingen


class VaihingenDataModule(BenchmarkDataModule):
    """ISPRS Vaihingen fine-tuning datamodule.

    Trains on 512 px windows of the 16 training tiles; validates and tests on the whole 17 test
    tiles (the benchmark has no separate validation set). Clutter is ignored (255).

    Args:
        root: dataset folder (see :class:`~s5geo.datasets.Vaihingen`).
        tile_size: training window side read from the images (None: whole images, cropped in the
            loader).
        **kwargs: :class:`~s5geo.datamodules._benchmark.BenchmarkDataModule` arguments.
    """

    dataset = Vaihingen
    gsd = 0.09

    def __init__(
        self, root: str | Path = "data/vaihingen", *, tile_size: int | None = 512, **kwargs: Any
    ) -> None:
        super().__init__(root, tile_size=tile_size, **kwargs)
