"""ISPRS Potsdam datamodule (paper Table 12: batch 24, crop 512, 75 epochs)."""

from __future__ import annotations

from s5geo.datamodules._benchmark import TiledBenchmarkDataModule
from s5geo.datamodules.base import _dataset_attr
from s5geo.datasets.potsdam import Potsdam


class PotsdamDataModule(TiledBenchmarkDataModule):
    """ISPRS Potsdam fine-tuning datamodule.

    Trains on 512 px windows of the training tiles; validates and tests on whole test tiles (the
    paper reports mF1). Clutter is ignored (255). Bands are chosen with ``bands=`` (RGB by
    default); checkpoints record them as bands of the R-G-B-IR tiles (``[4, 1, 2]`` for IR-R-G)
    and a 5 cm gsd, and name them (``["nir", "red", "green"]`` for IR-R-G).

    Takes the arguments of :class:`~s5geo.datamodules._benchmark.TiledBenchmarkDataModule`;
    ``root`` defaults to :attr:`default_root`.
    """

    dataset = Potsdam
    default_root = "data/potsdam"
    gsd = 0.05

    @property
    def band_names(self) -> list[str]:
        """Names of the bands read (``bands=``, default R, G, B): ``red``, ``green``, ``blue``, ``nir``."""
        bands = _dataset_attr(self._metadata_source(), "bands") or self.kwargs.get("bands") or ("R", "G", "B")
        return [Potsdam.all_band_names.get(str(band), str(band)) for band in bands]
