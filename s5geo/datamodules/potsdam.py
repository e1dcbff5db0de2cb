"""ISPRS Potsdam datamodule (paper Table 12: batch 24, crop 512, 75 epochs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s5geo.datamodules._benchmark import BenchmarkDataModule
from s5geo.datasets.potsdam import Potsdam


class PotsdamDataModule(BenchmarkDataModule):
    """ISPRS Potsdam fine-tuning datamodule.

    Trains on 512 px windows of the training tiles; validates and tests on whole test tiles (the
    paper reports mF1). Clutter is ignored (255). Bands are chosen with ``bands=`` (RGB by default).

    Args:
        root: dataset folder (see :class:`~s5geo.datasets.Potsdam`).
        batch_size: training batch size.
        crop_size: training crop side after augmentation.
        num_workers: loader workers.
        tile_size: training window side read from the images (None: whole images, cropped in the
            loader).
        stride: step of the training windows (default ``tile_size``).
        eval_tile_size: evaluation window side (None: whole images, batch 1).
        train_split: training split (default ``"train"``).
        val_split: validation split (default ``"val"``).
        test_split: test split (default ``"test"``).
        **kwargs: :class:`~s5geo.datamodules.S5DataModule` options (``scale``, ``augment``,
            ``val_batch_size``, ...) and further dataset arguments.
    """

    dataset = Potsdam
    default_train_split = "train"
    default_val_split = "val"
    default_test_split = "test"

    def __init__(
        self,
        root: str | Path = "data/potsdam",
        batch_size: int = 24,
        crop_size: int = 512,
        num_workers: int = 0,
        tile_size: int | None = 512,
        stride: int | None = None,
        eval_tile_size: int | None = None,
        train_split: str | None = None,
        val_split: str | None = None,
        test_split: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            root,
            batch_size=batch_size,
            crop_size=crop_size,
            num_workers=num_workers,
            tile_size=tile_size,
            stride=stride,
            eval_tile_size=eval_tile_size,
            train_split=train_split,
            val_split=val_split,
            test_split=test_split,
            **kwargs,
        )
