"""Supervised segmentation: the baseline and the fine-tuning task."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from s5geo.tasks.base import BaseSegmentationTask


class SupervisedSegmentation(BaseSegmentationTask):
    """Pixel-wise cross-entropy on labelled batches (args: see :class:`BaseSegmentationTask`).

    The training batch is the datamodule's already-augmented ``{"image", "mask"}`` dict; a
    semi-supervised batch is accepted too, and only its ``"labeled"`` part is used.
    """

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Return ``{"loss": ...}`` for one training batch."""
        if "labeled" in batch:
            batch = batch["labeled"]
        logits = self(batch["image"])
        return {"loss": self.criterion(logits, batch["mask"])}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """One optimisation step on a labelled batch."""
        losses = self.compute_losses(batch)
        size = batch.get("labeled", batch)["image"].shape[0]
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=size)
        self.log("train/lr", self.current_lr(), batch_size=size)
        return losses["loss"]
