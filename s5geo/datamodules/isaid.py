"""iSAID datamodule: the labeled part of MillionSeg as a supervised benchmark (16 classes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s5geo.datamodules.base import S5DataModule
from s5geo.datasets.isaid import ISAIDSegmentation


class ISAIDDataModule(S5DataModule):
    """Supervised iSAID segmentation (1024 px patches, 16 MillionSeg classes).

    Trains on ``patch_size`` patches of the train split and evaluates on patches of the val split
    (iSAID's test masks are not released). mIoU on iSAID conventionally skips ``background``;
    that is a task option.

    Args:
        root: iSAID folder holding ``train/`` and ``val/``.
        batch_size: training batch size.
        crop_size: training crop side after augmentation.
        num_workers: loader workers.
        patch_size: training patch side read from the images (None: whole images).
        stride: step between training patches (default ``patch_size``).
        eval_patch_size: evaluation patch side (None: whole images, batch 1).
        **kwargs: :class:`~s5geo.datamodules.S5DataModule` options and dataset arguments.
    """

    def __init__(
        self,
        root: str | Path = "data/isaid",
        batch_size: int = 24,
        crop_size: int = 512,
        num_workers: int = 0,
        patch_size: int | None = 1024,
        stride: int | None = None,
        eval_patch_size: int | None = 1024,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("val_split", "val")
        kwargs.setdefault("test_split", "val")
        super().__init__(
            ISAIDSegmentation,
            batch_size=batch_size,
            crop_size=crop_size,
            num_workers=num_workers,
            train_kwargs={"patch_size": patch_size, "stride": stride},
            eval_kwargs={"patch_size": eval_patch_size},
            root=root,
            **kwargs,
        )
        self.root = root
