"""A training progress bar counted in optimiser steps (the demo trains by steps, not epochs)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import TQDMProgressBar


class StepProgressBar(TQDMProgressBar):
    """One bar from step 0 to ``max_steps``, instead of Lightning's per-epoch bar.

    With ``max_epochs=-1`` Lightning labels its bar "Epoch 19/-2" and restarts it every epoch; a run
    defined by its number of steps reads better as one bar over those steps.

    Args:
        description: text before the bar.
    """

    def __init__(self, description: str = "train") -> None:
        super().__init__()
        self.description = description

    def on_train_epoch_start(self, trainer: Trainer, *_: Any) -> None:
        """Size the bar to the run's steps once, at the first epoch."""
        bar = self.train_progress_bar
        if trainer.current_epoch == 0 or bar.total != trainer.max_steps:
            bar.reset(total=trainer.max_steps)
            bar.initial = 0
            bar.set_description(self.description)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Advance to the trainer's global step and show the logged losses."""
        bar = self.train_progress_bar
        if bar.disable:
            return
        bar.n = trainer.global_step
        bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        bar.refresh()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Keep the bar open across epochs."""

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Close the bar when training ends."""
        self.train_progress_bar.close()
