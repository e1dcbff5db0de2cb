"""MultiDatasetDataModule: a batch of every dataset per training step, a loader per dataset in evaluation."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from _tiny import SplitTinyDataset
from lightning.pytorch import LightningModule
from trainer_helpers import quiet_trainer

from s5geo.datamodules import MultiDatasetDataModule, S5DataModule
from s5geo.errors import S5GeoError


class _Short(SplitTinyDataset):
    """Two training samples instead of six."""

    def __init__(self, split: str = "train") -> None:
        super().__init__(split, n=2)


def _multi(**options: Any) -> MultiDatasetDataModule:
    return MultiDatasetDataModule(
        {
            "Long": S5DataModule(SplitTinyDataset, batch_size=2, crop_size=16),
            "short": {
                "class_path": "s5geo.datamodules.S5DataModule",
                "init_args": {
                    "dataset_class": _Short,
                    "batch_size": 1,
                    "crop_size": 16,
                    "scale": 1.0,
                    "augment": False,
                },
            },
        },
        **options,
    )


class _Recorder(LightningModule):
    """Records the batches' shapes and value ranges per step and per evaluation loader."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.train_batches: list[dict[str, tuple[int, ...]]] = []
        self.maxima: list[dict[str, float]] = []
        self.eval_batches: list[tuple[int, tuple[int, ...], float]] = []

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        self.train_batches.append({n: tuple(b["image"].shape) for n, b in batch.items()})
        self.maxima.append({n: float(b["image"].max()) for n, b in batch.items()})
        return sum((self.weight * b["image"].mean()).sum() for b in batch.values())

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self.eval_batches.append((dataloader_idx, tuple(batch["image"].shape), float(batch["image"].max())))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_datamodules_from_objects_and_class_paths() -> None:
    dm = _multi()
    assert dm.names == ["long", "short"]
    assert isinstance(dm.datamodules["short"], S5DataModule) and dm.datamodules["short"].scale == 1.0
    assert dm.loader_names("val") == ["long", "short"]
    dm.setup("fit")
    assert dm.in_channels == 3


def test_bad_options() -> None:
    with pytest.raises(S5GeoError, match="at least one"):
        MultiDatasetDataModule({})
    with pytest.raises(S5GeoError, match="unknown datasets"):
        _multi(val_datasets=["isaid"])
    with pytest.raises(S5GeoError, match="twice"):
        MultiDatasetDataModule({"a": S5DataModule(SplitTinyDataset), "A": S5DataModule(SplitTinyDataset)})
    with pytest.raises(S5GeoError, match="cannot import"):
        MultiDatasetDataModule({"a": {"class_path": "s5geo.datamodules.Nothing"}})
    with pytest.raises(S5GeoError, match="not a LightningDataModule"):
        MultiDatasetDataModule({"a": {"class_path": "torch.nn.Identity"}})


def test_fit_yields_a_batch_of_every_dataset_scaled_by_its_own_datamodule() -> None:
    dm = _multi(val_datasets=["short"])
    model = _Recorder()
    trainer = quiet_trainer(max_epochs=1, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    # the epoch is the longest loader (3 batches of 2), the short one (2 batches of 1) starts over
    assert model.train_batches == [{"long": (2, 3, 16, 16), "short": (1, 3, 16, 16)}] * 3
    assert all(m["long"] <= 1.0 and m["short"] > 1.0 for m in model.maxima)  # scale 255 vs 1
    # validation: only the chosen dataset, whole samples, its own scale
    assert {idx for idx, _, _ in model.eval_batches} == {0}
    assert all(shape[0] == 1 and top > 1.0 for _, shape, top in model.eval_batches)
    assert len(model.eval_batches) == len(dm.datamodules["short"].val_dataset)
    assert dm.loader_names("val") == ["short"]


def test_min_size_mode_and_per_dataset_test_loaders() -> None:
    dm = _multi(mode="min_size")
    dm.setup("fit")
    loader = dm.train_dataloader()
    iter(loader)
    assert len(loader) == 2
    dm.setup("test")
    loaders = dm.test_dataloader()
    assert len(loaders) == 2 and dm.loader_names("test") == ["long", "short"]


def test_different_band_counts_are_refused() -> None:
    dm = MultiDatasetDataModule(
        {
            "a": S5DataModule(SplitTinyDataset, in_channels=3),
            "b": S5DataModule(SplitTinyDataset, in_channels=4),
        }
    )
    with pytest.raises(S5GeoError, match="band counts"):
        _ = dm.in_channels
