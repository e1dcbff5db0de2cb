"""A quiet CPU Lightning trainer, as most task and datamodule tests build it."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Trainer


def quiet_trainer(**options: Any) -> Trainer:
    """A CPU ``Trainer`` without logger, checkpoints, progress bar or model summary.

    Args:
        **options: more ``Trainer`` arguments (they override the ones above).
    """
    quiet = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return Trainer(**{**quiet, **options})
