"""A tiny LightningModule and datamodule for the ``s5geo fit|validate|test|predict`` fault tests.

Loaded by ``class_path`` (``lightning_tiny.TinyTask``) with this folder on ``sys.path``; they do not
depend on ``s5geo.tasks`` so that the tests exercise only the command line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule, LightningModule
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

#: The ``data:`` section of a config that reads :func:`write_tiny_folder` from ``data``.
FOLDER_DATA_CONFIG = """\
data:
  class_path: lightning_tiny.FolderDataModule
  init_args:
    dataset:
      class_path: s5geo.datasets.SegmentationFolder
      init_args:
        root: data
        classes: [a, b, c]
        mask_format: index
"""

#: The ``trainer:`` settings the fit configs share: quiet, on the CPU, checkpoints (and ``last``) in
#: ``ckpts/``. More ``ModelCheckpoint`` arguments may follow it, indented by eight spaces.
QUIET_TRAINER_CONFIG = """\
  logger: false
  enable_progress_bar: false
  enable_model_summary: false
  accelerator: cpu
  default_root_dir: .
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args:
        dirpath: ckpts
        save_last: true
"""


class TinyTask(LightningModule):
    """Per-pixel classifier trained with cross-entropy (255 ignored)."""

    def __init__(self, num_classes: int = 3, in_channels: int = 3, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self(batch["image"].float() / 255.0)
        loss = nn.functional.cross_entropy(logits, batch["mask"].long(), ignore_index=255)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self(batch["image"].float() / 255.0)
        self.log("val/loss", nn.functional.cross_entropy(logits, batch["mask"].long(), ignore_index=255))

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self(batch["image"].float() / 255.0).argmax(1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class SlowTinyTask(TinyTask):
    """:class:`TinyTask` that sleeps ``delay`` seconds each step, so a test can kill it mid-run."""

    def __init__(
        self, num_classes: int = 3, in_channels: int = 3, lr: float = 0.01, delay: float = 0.0
    ) -> None:
        super().__init__(num_classes, in_channels, lr)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        time.sleep(self.hparams.delay)
        return super().training_step(batch, batch_idx)


class _Samples(Dataset):
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = self.dataset[i]
        return {"image": sample["image"][:, :16, :16], "mask": sample["mask"][:16, :16]}


class FolderDataModule(LightningDataModule):
    """Train, validate, test and predict on one dataset (e.g. a ``SegmentationFolder``)."""

    def __init__(self, dataset: Dataset, batch_size: int = 2) -> None:
        super().__init__()
        self.dataset = _Samples(dataset)
        self.batch_size = batch_size

    @property
    def classes(self) -> list[str]:
        return list(getattr(self.dataset.dataset, "classes", []))

    def _loader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size)

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def predict_dataloader(self) -> DataLoader:
        return self._loader()


def write_tiny_folder(root: Path) -> Path:
    """Write a ``SegmentationFolder`` of four 16 px RGB images with 3-class index masks."""
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(4):
        image = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"t{i}.png")
        mask = rng.integers(0, 3, (16, 16), dtype=np.uint8)
        Image.fromarray(mask).save(root / "masks" / f"t{i}.png")
    return root
