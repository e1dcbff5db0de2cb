"""Tiny in-memory data for the task tests (already scaled to [0, 1], as after a datamodule)."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset


class _Semi(Dataset):
    """Labelled + unlabelled pairs; masks follow the image so there is something to learn."""

    def __init__(self, n: int, size: int, num_classes: int, in_channels: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.xl = torch.rand(n, in_channels, size, size, generator=g)
        self.yl = (self.xl[:, 0] * num_classes).long().clamp(max=num_classes - 1)
        self.yl[:, :2, :] = 255  # a few unlabelled rows
        self.xu = torch.rand(n, in_channels, size, size, generator=g)
        self.pad = torch.zeros(n, size, size, dtype=torch.bool)
        self.pad[:, :, -3:] = True  # padding on the right, as after rescale + pad
        self.xu[:, :, :, -3:] = 0.0

    def __len__(self) -> int:
        return len(self.xl)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = (i + 1) % len(self.xu)
        return {
            "labeled": {"image": self.xl[i], "mask": self.yl[i]},
            "unlabeled": {"image": self.xu[i], "padding": self.pad[i]},
            "unlabeled_mix": {"image": self.xu[j].flip(-2), "padding": self.pad[j].flip(-2)},
        }


class _Labeled(Dataset):
    def __init__(self, n: int, size: int, num_classes: int, in_channels: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, in_channels, size, size, generator=g)
        self.y = (self.x[:, 0] * num_classes).long().clamp(max=num_classes - 1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.x[i], "mask": self.y[i]}


class TinySemiDataModule(LightningDataModule):
    """Semi-supervised training batches and labelled validation/test batches of random images."""

    def __init__(
        self,
        size: int = 32,
        num_classes: int = 4,
        in_channels: int = 3,
        batch_size: int = 2,
        n: int = 4,
        semi: bool = True,
    ) -> None:
        super().__init__()
        self.size, self.num_classes, self.in_channels = size, num_classes, in_channels
        self.batch_size, self.n, self.semi = batch_size, n, semi
        self.classes = [f"c{i}" for i in range(num_classes)]
        self.colors = [(10 * i, 20 * i, 30 * i) for i in range(num_classes)]
        self.scale = 255.0
        self.crop_size = size

    def train_dataloader(self) -> DataLoader:
        data = _Semi(self.n, self.size, self.num_classes, self.in_channels, 0)
        if not self.semi:
            data = _Labeled(self.n, self.size, self.num_classes, self.in_channels, 0)
        return DataLoader(data, batch_size=self.batch_size, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        data = _Labeled(2, self.size, self.num_classes, self.in_channels, 1)
        return DataLoader(data, batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
