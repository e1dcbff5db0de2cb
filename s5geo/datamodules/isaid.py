"""iSAID datamodule: the labeled part of MillionSeg as a supervised benchmark (16 classes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s5geo.datamodules._benchmark import BenchmarkDataModule
from s5geo.datasets.isaid import ISAIDSegmentation


class ISAIDDataModule(BenchmarkDataModule):
    """Supervised iSAID segmentation (1024 px patches, 16 MillionSeg classes).

    Trains on ``patch_size`` patches of the train split and validates and tests on patches of the
    val split (iSAID's test masks are not released). mIoU on iSAID conventionally skips
    ``background``; that is a task option.

    Args:
        root: iSAID folder holding ``train/`` and ``val/``.
        patch_size: training patch side read from the images (None: whole images).
        eval_patch_size: evaluation patch side (None: whole images, batch 1).
        **kwargs: :class:`~s5geo.datamodules._benchmark.BenchmarkDataModule` arguments.
    """

    dataset = ISAIDSegmentation
    default_test_split = "val"
    tile_size_arg = "patch_size"

    def __init__(
        self,
        root: str | Path = "data/isaid",
        *,
        patch_size: int | None = 1024,
        eval_patch_size: int | None = 1024,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, tile_size=patch_size, eval_tile_size=eval_patch_size, **kwargs)
