"""``s5geo fit|validate|test|predict``: LightningCLI, configured as in ``torchgeo``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import ArgsType, LightningCLI


def run_lightning_cli(args: Sequence[str] | ArgsType = None) -> LightningCLI:
    """Run LightningCLI with any LightningModule / LightningDataModule given by ``class_path``.

    Args:
        args: command line, starting with the subcommand (``fit``, ``validate``, ``test``, ``predict``);
            None reads ``sys.argv`` (what DDP's launcher re-runs in the other processes).

    Returns:
        The CLI object (its ``trainer``, ``model`` and ``datamodule`` are set after the run).
    """
    argv = list(args) if args is not None else sys.argv[1:]
    # Only training runs save their config: evaluation and prediction would otherwise write
    # config.yaml into the working folder (their log dir), replacing a user's file of that name.
    save = {} if argv[:1] == ["fit"] else {"save_config_callback": None}
    return LightningCLI(
        model_class=LightningModule,
        datamodule_class=LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=list(args) if args is not None else None,
        **save,  # type: ignore[arg-type]
    )
