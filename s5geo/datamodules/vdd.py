"""VDD datamodule (paper Table 12: batch 24, crop 512, 300 epochs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s5geo.datamodules._benchmark import BenchmarkDataModule
from s5geo.datasets.vdd import VDD


class VDDDataModule(BenchmarkDataModule):
    """VDD fine-tuning datamodule.

    Drone images (4000 x 3000): training samples are random loader-side crops of whole images
    (``tile_size=None``); validates on val and tests on test.

    Args:
        root: dataset folder (see :class:`~s5geo.datasets.VDD`).
        batch_size: training batch size.
        crop_size: training crop side after augmentation.
        num_workers: loader workers.
        tile_size: training window side read from the images (None: whole images, cropped in the
            loader).
        stride: step of the training windows (default ``tile_size``).
        eval_tile_size: evaluation window side (None: whole images, batch 1).
        train_split: training split (default ``"trainval"``: the 360 images S5 fine-tunes on).
        val_split: validation split (default ``"test"``, since val is trained on).
        test_split: test split (default ``"test"``).
        **kwargs: :class:`~s5geo.datamodules.S5DataModule` options (``scale``, ``augment``,
            ``val_batch_size``, ...) and further dataset arguments.
    """

    dataset = VDD
    default_train_split = "trainval"
    default_val_split = "test"
    default_test_split = "test"

    def __init__(
        self,
        root: str | Path = "data/vdd",
        batch_size: int = 24,
        crop_size: int = 512,
        num_workers: int = 0,
        tile_size: int | None = None,
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
