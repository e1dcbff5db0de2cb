"""Training for the demo's steps: a CPU trainer counted in steps, fit, and an atomically saved checkpoint."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer

from s5geo.demo.progress import StepProgressBar
from s5geo.demo.steps import atomic_path, publish


class ValidationCurve(Callback):
    """Record ``(step, val/mIoU)`` at every validation (to choose a training length)."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Append the step and the validation mIoU just computed."""
        value = trainer.callback_metrics.get("val/mIoU")
        if value is not None and not trainer.sanity_checking:
            self.points.append((int(trainer.global_step), float(value)))


def demo_trainer(
    steps: int, progress: bool, val_every: int | None = None, callbacks: list | None = None
) -> Trainer:
    """A one-device CPU trainer for ``steps`` optimiser steps, quiet but for the step bar.

    Args:
        steps: optimiser steps.
        progress: show the step progress bar.
        val_every: validate every this many steps (None: never).
        callbacks: more callbacks.
    """
    return Trainer(
        max_steps=steps,
        max_epochs=-1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        limit_val_batches=None if val_every else 0,
        val_check_interval=val_every,
        check_val_every_n_epoch=None if val_every else 1,
        num_sanity_val_steps=0,
        callbacks=[*(callbacks or []), *([StepProgressBar()] if progress else [])],
    )


def fit_and_save(
    task: LightningModule,
    datamodule: LightningDataModule,
    steps: int,
    checkpoint: Path,
    progress: bool,
    val_every: int | None = None,
) -> dict[str, Any]:
    """Train ``task`` for ``steps`` steps and save the checkpoint atomically.

    Returns:
        The last logged values, and ``val_curve`` (``[(step, val/mIoU), ...]``) when ``val_every`` is set.
    """
    curve = ValidationCurve()
    trainer = demo_trainer(steps, progress, val_every, [curve])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        trainer.fit(task, datamodule=datamodule)
    tmp = atomic_path(checkpoint)
    trainer.save_checkpoint(tmp, weights_only=False)
    publish(tmp, checkpoint)
    logged: dict[str, Any] = {key: float(value) for key, value in trainer.callback_metrics.items()}
    if curve.points:
        logged["val_curve"] = curve.points
    return logged
