"""SEP: supervised segmentation pre-training on MillionSeg's pseudo-labels, from folders or shards."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule
from torch import nn
from torch.utils.data import DataLoader, Dataset

from s5geo.datamodules._collate import CropPadCollate
from s5geo.datamodules.base import ScaledBatchMixin, training_augmentation
from s5geo.datasets.isaid import ISAIDSegmentation
from s5geo.datasets.millionseg import MillionSeg
from s5geo.errors import S5GeoError


class SEPDataModule(ScaledBatchMixin, LightningDataModule):
    """Pseudo-labeled MillionSeg images as a supervised training set (SEP), iSAID val to validate.

    The training samples are the RS4P-1M images that have a pseudo-label (``MillionSeg(part=
    "pseudo_labeled")``: the released masks, ``s5geo corpus build --filter-model`` output or
    ``s5geo pseudo-label`` masks copied into ``unlabeled/RS4P-1M/masks``), read from the folders,
    from a manifest, or streamed from shards written by ``s5geo corpus shard`` (no directory walk;
    each DDP rank reads its own chunks and LitData's loader state, saved in Lightning checkpoints,
    resumes an epoch where it stopped). Batches are random ``crop_size`` crops, scaled and
    augmented on the device like the fine-tuning datamodules.

    Args:
        root: the MillionSeg folder (``unlabeled/RS4P-1M/{images,masks}``).
        manifest: file list of the pseudo-labeled part (see :class:`~s5geo.datasets.MillionSeg`).
        shards: folder or object-store URL of shards of the pseudo-labeled part (replaces ``root``
            and ``manifest`` for training).
        val_root: iSAID folder whose ``val`` split validates (None: no validation).
        val_patch_size: side of the validation patches.
        batch_size: training samples per batch and device.
        crop_size: side of the training crops.
        num_workers: loader workers.
        scale: divisor mapping raw pixel values to [0, 1].
        augment: apply the training augmentation.
        augmentation: module ``(image, mask) -> (image, mask)`` replacing the default one.
        val_batch_size: validation batch size.
        seed: shuffle seed of the shards (the same on every rank).
        classes: class names (default MillionSeg's 16).
        colors: class colours.
        in_channels: number of bands (default: read from the data).
    """

    def __init__(
        self,
        root: str | Path = "data/MillionSeg",
        manifest: str | Path | None = None,
        shards: str | None = None,
        val_root: str | Path | None = None,
        val_patch_size: int | None = 1024,
        batch_size: int = 24,
        crop_size: int = 512,
        num_workers: int = 0,
        scale: float | Sequence[float] = 255.0,
        augment: bool = True,
        augmentation: nn.Module | None = None,
        val_batch_size: int = 1,
        seed: int = 0,
        classes: Sequence[str] | None = None,
        colors: Sequence[Sequence[int]] | None = None,
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.root = root
        self.manifest = manifest
        self.shards = shards
        self.val_root = val_root
        self.val_patch_size = val_patch_size
        self.batch_size = batch_size
        self.seed = seed
        augmentation = training_augmentation(augment, augmentation, crop_size)
        metadata = (classes or MillionSeg.classes, colors or MillionSeg.colors, in_channels)
        self._set_options(
            crop_size, num_workers, scale, (val_batch_size, val_batch_size), augmentation, metadata
        )
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None

    def setup(self, stage: str) -> None:
        """Open the training set (folders, manifest or shards) and the iSAID validation split."""
        if stage == "fit":
            if self.shards is not None:
                from s5geo.datasets.shards import ShardedSegmentation

                self.train_dataset = ShardedSegmentation(
                    self.shards, shuffle=True, drop_last=True, seed=self.seed
                )
            else:
                self.train_dataset = MillionSeg(self.root, part="pseudo_labeled", manifest=self.manifest)
        if stage in ("fit", "validate", "test") and self.val_root is not None:
            val = ISAIDSegmentation(self.val_root, split="val", tile_size=self.val_patch_size)
            self.val_dataset = self.test_dataset = val

    def train_dataloader(self) -> DataLoader:
        """Shuffled ``crop_size`` crops (a ``StreamingDataLoader`` over shards)."""
        if self.train_dataset is None:
            raise S5GeoError(f"{type(self).__name__}: call setup('fit') first")
        options: dict[str, Any] = {
            "batch_size": self.batch_size,
            "collate_fn": CropPadCollate(self.crop_size),
            "drop_last": True,
        }
        if self.shards is not None:
            from litdata import StreamingDataLoader

            return StreamingDataLoader(self.train_dataset, num_workers=self.num_workers, **options)
        return self._loader(self.train_dataset, shuffle=True, **options)
