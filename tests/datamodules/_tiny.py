"""Tiny in-memory datasets for the datamodule tests (importable by spawned DDP workers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch.utils.data import Dataset


class TinyDataset(Dataset):
    """``n`` samples whose pixels encode their index; sizes vary when ``sizes`` is given."""

    classes = ("a", "b", "c")
    colors = ((255, 0, 0), (0, 255, 0), (0, 0, 255))

    def __init__(
        self,
        n: int = 8,
        size: int = 16,
        labeled: bool = True,
        sizes: list[int] | None = None,
        bands: int = 3,
        offset: int = 0,
    ) -> None:
        self.n, self.size, self.labeled, self.sizes, self.bands = n, size, labeled, sizes, bands
        self.offset = offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        side = self.sizes[index % len(self.sizes)] if self.sizes else self.size
        g = torch.Generator().manual_seed(index + self.offset)
        image = torch.randint(1, 256, (self.bands, side, side), generator=g).float()
        sample: dict[str, Any] = {"image": image, "index": index + self.offset}
        if self.labeled:
            mask = torch.randint(0, 3, (side, side), generator=g)
            mask[0] = 255
            sample["mask"] = mask
        return sample


class Recorder(LightningModule):
    """Records the sample indices of its training batches; writes them per rank at the end."""

    def __init__(self, out_dir: str) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[dict[str, Any]] = []

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        self.seen.append(
            {
                "epoch": self.current_epoch,
                "labeled": batch["labeled"]["index"].tolist(),
                "unlabeled": batch["unlabeled"]["index"].tolist(),
                "shape_l": list(batch["labeled"]["image"].shape),
                "shape_u": list(batch["unlabeled"]["image"].shape),
                "max": float(batch["unlabeled"]["image"].max()),
            }
        )
        return (self.weight * batch["labeled"]["image"].mean()).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def on_train_end(self) -> None:
        path = Path(self.out_dir) / f"rank{self.global_rank}.json"
        path.write_text(json.dumps(self.seen))


class SplitTinyDataset(TinyDataset):
    """TinyDataset with a ``split`` argument, for :class:`S5DataModule`."""

    def __init__(self, split: str = "train", n: int = 6, sizes: list[int] | None = None) -> None:
        super().__init__(n=n, sizes=sizes or [20, 28], offset=0 if split == "train" else 500)
        self.split = split


class ShapeChecker(LightningModule):
    """Asserts the batch contract in training and validation steps."""

    def __init__(self, crop_size: int, batch_size: int) -> None:
        super().__init__()
        self.crop_size, self.batch_size = crop_size, batch_size
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.calls = {"train": 0, "val": 0}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        s = self.crop_size
        assert batch["image"].shape == (self.batch_size, 3, s, s)
        assert batch["mask"].shape == (self.batch_size, s, s)
        assert batch["image"].min() >= 0 and batch["image"].max() <= 1
        self.calls["train"] += 1
        return (self.weight * batch["image"].mean()).sum()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        # Whole samples (20 or 28 px), scaled but not augmented.
        assert batch["image"].shape[0] == 1 and batch["image"].shape[-1] in (20, 28)
        assert batch["image"].max() <= 1
        self.calls["val"] += 1

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)
