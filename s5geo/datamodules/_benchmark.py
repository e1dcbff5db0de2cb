"""Shared constructor of the benchmark datamodules (paper Table 12 defaults)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from s5geo.datamodules.base import S5DataModule


class BenchmarkDataModule(S5DataModule):
    """A :class:`S5DataModule` for a benchmark dataset with ``root``, ``tile_size`` and ``stride``.

    Training reads ``tile_size`` windows (``None``: whole images, randomly cropped in the loader);
    evaluation reads ``eval_tile_size`` windows (``None``: whole images, batch 1).
    """

    dataset: type[Dataset]
    default_train_split: str = "train"
    default_val_split: str = "val"
    default_test_split: str = "test"

    def __init__(
        self,
        root: str | Path,
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
            type(self).dataset,
            batch_size=batch_size,
            crop_size=crop_size,
            num_workers=num_workers,
            train_split=train_split or self.default_train_split,
            val_split=val_split or self.default_val_split,
            test_split=test_split or self.default_test_split,
            train_kwargs={"tile_size": tile_size, "stride": stride},
            eval_kwargs={"tile_size": eval_tile_size},
            root=root,
            **kwargs,
        )
        self.root = root
