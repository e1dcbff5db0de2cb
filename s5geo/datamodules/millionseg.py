"""MillionSeg (RS4P-1M) semi-supervised pre-training datamodule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s5geo.datamodules.semi_supervised import SemiSupervisedDataModule
from s5geo.datasets.millionseg import MillionSeg


class MillionSegDataModule(SemiSupervisedDataModule):
    """S5 pre-training data: labeled iSAID crops + unlabeled RS4P-1M images of MillionSeg.

    Defaults follow the released code: 12 labeled + 12 unlabeled samples per device, 512 px weak
    views. The datasets are opened in ``setup`` (a million-image corpus is only listed when
    training starts; give ``unlabeled_manifest`` to avoid the directory walk). Validation uses
    the iSAID val split when ``val_root`` is given.

    Args:
        root: the MillionSeg folder (``labeled/iSAID/...``, ``unlabeled/RS4P-1M/...``).
        batch_size_labeled: labeled samples per batch and device.
        batch_size_unlabeled: unlabeled samples per batch and device.
        crop_size: side of the weak views.
        num_workers: loader workers.
        labeled_manifest: file list of the labeled part (see :class:`~s5geo.datasets.MillionSeg`).
        unlabeled_manifest: file list of the unlabeled part.
        val_root: iSAID folder whose ``val`` split is used for validation (None: no validation).
        val_patch_size: side of the validation patches.
        **kwargs: further :class:`SemiSupervisedDataModule` options.
    """

    def __init__(
        self,
        root: str | Path = "data/MillionSeg",
        batch_size_labeled: int = 12,
        batch_size_unlabeled: int = 12,
        crop_size: int = 512,
        num_workers: int = 0,
        labeled_manifest: str | Path | None = None,
        unlabeled_manifest: str | Path | None = None,
        val_root: str | Path | None = None,
        val_patch_size: int | None = 1024,
        **kwargs: Any,
    ) -> None:
        cls = "s5geo.datasets.millionseg.MillionSeg"
        labeled = {
            "class_path": cls,
            "init_args": {"root": root, "part": "labeled", "manifest": labeled_manifest},
        }
        unlabeled = {
            "class_path": cls,
            "init_args": {"root": root, "part": "unlabeled", "manifest": unlabeled_manifest},
        }
        val = None
        if val_root is not None:
            val = {
                "class_path": "s5geo.datasets.isaid.ISAIDSegmentation",
                "init_args": {"root": val_root, "split": "val", "patch_size": val_patch_size},
            }
        kwargs.setdefault("test", val)
        super().__init__(
            labeled,
            unlabeled,
            val=val,
            batch_size_labeled=batch_size_labeled,
            batch_size_unlabeled=batch_size_unlabeled,
            crop_size=crop_size,
            num_workers=num_workers,
            **kwargs,
        )
        self.root = root
        self._classes = self._classes or MillionSeg.classes
        self._colors = self._colors or MillionSeg.colors
