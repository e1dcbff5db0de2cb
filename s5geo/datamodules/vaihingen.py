"""ISPRS Vaihingen datamodule (paper Table 12: batch 24, crop 512, 75 epochs)."""

from __future__ import annotations

from s5geo.datamodules._benchmark import TiledBenchmarkDataModule
from s5geo.datasets.vaihingen import Vaihingen


class VaihingenDataModule(TiledBenchmarkDataModule):
    """ISPRS Vaihingen fine-tuning datamodule.

    Trains on 512 px windows of the 16 training tiles; validates and tests on the whole 17 test
    tiles (the benchmark has no separate validation set). Clutter is ignored (255). The tiles are
    IR-R-G, so checkpoints name their bands ``["nir", "red", "green"]`` (the dataset's
    ``band_names``).

    Takes the arguments of :class:`~s5geo.datamodules._benchmark.TiledBenchmarkDataModule`;
    ``root`` defaults to :attr:`default_root`.
    """

    dataset = Vaihingen
    default_root = "data/vaihingen"
    gsd = 0.09
