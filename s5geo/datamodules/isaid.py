"""iSAID datamodule: the labeled part of MillionSeg as a supervised benchmark (16 classes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s5geo.datamodules._benchmark import BenchmarkDataModule
from s5geo.datasets._base import renamed_argument
from s5geo.datasets.isaid import ISAIDSegmentation


class ISAIDDataModule(BenchmarkDataModule):
    """Supervised iSAID segmentation (1024 px patches, 16 MillionSeg classes).

    Trains on ``tile_size`` patches of the train split and validates and tests on patches of the
    val split (iSAID's test masks are not released). mIoU on iSAID conventionally skips
    ``background``; that is a task option.

    Args:
        root: iSAID folder holding ``train/`` and ``val/`` (None: ``data/isaid``).
        tile_size: training patch side read from the images (None: whole images).
        eval_tile_size: evaluation patch side (None: whole images, batch 1).
        **kwargs: :class:`~s5geo.datamodules._benchmark.BenchmarkDataModule` arguments;
            ``patch_size`` and ``eval_patch_size`` are the former names of ``tile_size`` and
            ``eval_tile_size`` (deprecated).
    """

    dataset = ISAIDSegmentation
    default_root = "data/isaid"
    default_test_split = "val"

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        tile_size: int | None = 1024,
        eval_tile_size: int | None = 1024,
        **kwargs: Any,
    ) -> None:
        tile_size = renamed_argument(kwargs, "patch_size", "tile_size", tile_size)
        eval_tile_size = renamed_argument(kwargs, "eval_patch_size", "eval_tile_size", eval_tile_size)
        super().__init__(root, tile_size=tile_size, eval_tile_size=eval_tile_size, **kwargs)
