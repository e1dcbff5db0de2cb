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
        labeled_manifest: file list of the labeled part (see :class:`~s5geo.datasets.MillionSeg`).
        unlabeled_manifest: file list of the unlabeled part.
        val_root: iSAID folder whose ``val`` split is used for validation (None: no validation).
        val_patch_size: side of the validation patches.
        **kwargs: :class:`SemiSupervisedDataModule` options (``batch_size_labeled``,
            ``batch_size_unlabeled``, ``crop_size``, ``num_workers``, ...).
    """

    def __init__(
        self,
        root: str | Path = "data/MillionSeg",
        labeled_manifest: str | Path | None = None,
        unlabeled_manifest: str | Path | None = None,
        val_root: str | Path | None = None,
        val_patch_size: int | None = 1024,
        **kwargs: Any,
    ) -> None:
        val = None
        if val_root is not None:
            val = {
                "class_path": "s5geo.datasets.isaid.ISAIDSegmentation",
                "init_args": {"root": val_root, "split": "val", "tile_size": val_patch_size},
            }
        kwargs.setdefault("test", val)
        super().__init__(
            _part(root, "labeled", labeled_manifest),
            _part(root, "unlabeled", unlabeled_manifest),
            val=val,
            **kwargs,
        )
        self.root = root
        self._classes = self._classes or MillionSeg.classes
        self._colors = self._colors or MillionSeg.colors


def _part(root: str | Path, part: str, manifest: str | Path | None) -> dict[str, Any]:
    """The dataset spec of one MillionSeg part, opened in ``setup``."""
    return {
        "class_path": "s5geo.datasets.millionseg.MillionSeg",
        "init_args": {"root": root, "part": part, "manifest": manifest},
    }
