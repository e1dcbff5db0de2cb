"""SEP: supervised segmentation pre-training on MillionSeg's pseudo-labels, from folders or shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import DataLoader, Dataset

from s5geo.datamodules.base import CropOrder, ScaledDataModule, training_augmentation
from s5geo.datasets.isaid import ISAIDSegmentation
from s5geo.datasets.millionseg import MillionSeg
from s5geo.errors import S5GeoError


class SEPDataModule(ScaledDataModule):
    """Pseudo-labeled MillionSeg images as a supervised training set (SEP), iSAID val to validate.

    The training samples are the RS4P-1M images that have a pseudo-label (``MillionSeg(part=
    "pseudo_labeled")``: the released masks, ``s5geo corpus build --filter-model`` output or
    ``s5geo pseudo-label`` masks copied into ``unlabeled/RS4P-1M/masks``), read from the folders,
    from a manifest, or streamed from shards written by ``s5geo corpus shard`` (no directory walk;
    each DDP rank reads its own chunks and LitData's loader state, saved in Lightning checkpoints,
    resumes an epoch where it stopped). Training views are made like the fine-tuning
    datamodules': by default each whole sample is rescaled (``rescale``) then cropped in the
    loader, and flipped, rotated and colour-jittered on the device.

    Args:
        root: the MillionSeg folder (``unlabeled/RS4P-1M/{images,masks}``).
        manifest: file list of the pseudo-labeled part (see :class:`~s5geo.datasets.MillionSeg`).
        shards: folder or object-store URL of shards of the pseudo-labeled part (replaces ``root``
            and ``manifest`` for training).
        val_root: iSAID folder whose ``val`` split validates (None: no validation).
        val_patch_size: side of the validation patches.
        batch_size: training samples per batch and device.
        augment: apply the training augmentation.
        augmentation: module ``(image, mask) -> (image, mask)`` replacing the default one.
        seed: shuffle seed of the shards (the same on every rank).
        rescale: range of the training rescale factor (of the long side).
        crop_order: ``"rescale_then_crop"`` (the reference, in the loader) or
            ``"crop_then_rescale"`` (``loader_crop_size`` crops, rescaled on the device).
        **kwargs: :class:`~s5geo.datamodules.base.ScaledDataModule` options (``crop_size``,
            ``num_workers``, ``scale``, ``val_batch_size``, ...; classes and colours default to
            MillionSeg's 16).
    """

    def __init__(
        self,
        root: str | Path = "data/MillionSeg",
        manifest: str | Path | None = None,
        shards: str | None = None,
        val_root: str | Path | None = None,
        val_patch_size: int | None = 1024,
        batch_size: int = 24,
        *,
        augment: bool = True,
        augmentation: nn.Module | None = None,
        seed: int = 0,
        rescale: tuple[float, float] = (0.5, 2.0),
        crop_order: CropOrder = "rescale_then_crop",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.manifest = manifest
        self.shards = shards
        self.val_root = val_root
        self.val_patch_size = val_patch_size
        self.batch_size = batch_size
        self.seed = seed
        device_scale = self._set_crop_order(crop_order, rescale)
        self.train_augmentation = training_augmentation(augment, augmentation, self.crop_size, device_scale)
        self._classes = self._classes or MillionSeg.classes
        self._colors = self._colors or MillionSeg.colors
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
            "collate_fn": self._train_collate(),
            "drop_last": True,
        }
        if self.shards is not None:
            from litdata import StreamingDataLoader

            return StreamingDataLoader(self.train_dataset, num_workers=self.num_workers, **options)
        return self._loader(self.train_dataset, shuffle=True, **options)
