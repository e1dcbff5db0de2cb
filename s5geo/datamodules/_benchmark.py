"""The base of the benchmark datamodules (paper Table 12 defaults).

A benchmark's datamodule is a few lines: its dataset class, the ``default_*_split`` class attributes
and ``default_root`` (and :class:`TiledBenchmarkDataModule` as the base where training reads fixed
windows), as in :class:`~s5geo.datamodules.LoveDADataModule`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch.utils.data import Dataset

from s5geo.datamodules.base import S5DataModule


class BenchmarkDataModule(S5DataModule):
    """A :class:`S5DataModule` for a benchmark dataset with ``root``, ``split``, ``tile_size`` and ``stride``.

    Training reads ``tile_size`` windows (None: whole images, randomly cropped in the loader);
    evaluation reads ``eval_tile_size`` windows (None: whole images, batch 1).

    Args:
        root: dataset folder (None: the datamodule's ``default_root``).
        batch_size: training batch size.
        crop_size: training crop side after augmentation.
        num_workers: loader workers.
        tile_size: training window side read from the images (None: whole images, cropped in the
            loader).
        stride: step of the training windows (default ``tile_size``).
        eval_tile_size: evaluation window side (None: whole images, batch 1).
        train_split: training split (None: the datamodule's ``default_train_split``).
        val_split: validation split (None: the datamodule's ``default_val_split``).
        test_split: test split (None: the datamodule's ``default_test_split``).
        **kwargs: :class:`~s5geo.datamodules.S5DataModule` options (``scale``, ``augment``,
            ``val_batch_size``, ...) and further dataset arguments.
    """

    #: The dataset class, taking ``root``, ``split``, ``tile_size`` and ``stride``.
    dataset: ClassVar[type[Dataset]]
    default_train_split: ClassVar[str] = "train"
    default_val_split: ClassVar[str] = "val"
    default_test_split: ClassVar[str] = "test"
    #: Dataset folder used when ``root`` is None.
    default_root: ClassVar[str] = "data"

    def __init__(
        self,
        root: str | Path | None = None,
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
        root = self.default_root if root is None else root
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


class TiledBenchmarkDataModule(BenchmarkDataModule):
    """A :class:`BenchmarkDataModule` that trains on 512 px windows of large tiles by default.

    Args:
        root: dataset folder (None: the datamodule's ``default_root``).
        tile_size: training window side read from the images (None: whole images, cropped in the
            loader).
        **kwargs: :class:`BenchmarkDataModule` arguments.
    """

    def __init__(self, root: str | Path | None = None, *, tile_size: int | None = 512, **kwargs: Any) -> None:
        super().__init__(root, tile_size=tile_size, **kwargs)
