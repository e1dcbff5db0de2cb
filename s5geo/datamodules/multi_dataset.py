"""Several datamodules trained at once: one batch of every dataset per step (multi-dataset fine-tuning).

Each training step yields ``{dataset: {"image", "mask"}}``, one batch of each dataset, scaled and
augmented by that dataset's own datamodule; an epoch lasts as long as the longest dataset's
loader, the shorter ones starting over (Lightning's ``CombinedLoader`` in ``max_size_cycle``
mode, as the S5 authors resample every dataset to the longest one). Validation and test have one
loader per dataset; :meth:`MultiDatasetDataModule.loader_names` says which dataset each index is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader

from s5geo.datamodules.base import instantiate
from s5geo.errors import S5GeoError

Batch = dict[str, Any]


def instantiate_datamodule(spec: LightningDataModule | Mapping[str, Any], name: str) -> LightningDataModule:
    """Return a datamodule given as an object or as a ``{"class_path", "init_args"}`` mapping.

    Raises:
        S5GeoError: the mapping has no importable ``class_path``, or it is no datamodule.
    """
    spec = instantiate(spec, f"datamodule {name!r}")
    if not isinstance(spec, LightningDataModule):
        raise S5GeoError(f"datamodule {name!r} is a {type(spec).__name__}, not a LightningDataModule")
    return spec


class MultiDatasetDataModule(LightningDataModule):
    """Combine one datamodule per dataset; a training batch holds one batch of each.

    Args:
        datamodules: dataset name -> datamodule (an object, or ``class_path``/``init_args``), in
            the order of the network's experts; names are lower-cased.
        val_datasets: datasets validated (default: every one that has a validation set).
        test_datasets: datasets tested (default: every one that has a test set).
        mode: ``max_size_cycle`` (epoch = longest loader, shorter ones start over) or
            ``min_size`` (epoch = shortest loader).
    """

    def __init__(
        self,
        datamodules: Mapping[str, LightningDataModule | Mapping[str, Any]],
        *,
        val_datasets: Sequence[str] | None = None,
        test_datasets: Sequence[str] | None = None,
        mode: Literal["max_size_cycle", "min_size"] = "max_size_cycle",
    ) -> None:
        super().__init__()
        if not datamodules:
            raise S5GeoError("MultiDatasetDataModule needs at least one datamodule")
        self.datamodules: dict[str, LightningDataModule] = {}
        for name, spec in datamodules.items():
            key = str(name).lower()
            if key in self.datamodules:
                raise S5GeoError(f"dataset {name!r} is given twice")
            self.datamodules[key] = instantiate_datamodule(spec, key)
        self.eval_datasets = {
            "val": self._known(val_datasets, "val_datasets"),
            "test": self._known(test_datasets, "test_datasets"),
        }
        self.mode = mode
        self._loader_names: dict[str, list[str]] = {}

    def _known(self, names: Sequence[str] | None, option: str) -> list[str]:
        if names is None:
            return self.names
        chosen = [str(n).lower() for n in names]
        unknown = [n for n in chosen if n not in self.datamodules]
        if unknown:
            raise S5GeoError(f"{option}: unknown datasets {unknown}; known: {', '.join(self.names)}")
        return chosen

    @property
    def names(self) -> list[str]:
        """Dataset names, in order."""
        return list(self.datamodules)

    @property
    def in_channels(self) -> int:
        """Number of image bands, the same for every dataset.

        Raises:
            S5GeoError: the datasets have different band counts.
        """
        counts = {name: int(dm.in_channels) for name, dm in self.datamodules.items()}  # type: ignore[attr-defined]
        if len(set(counts.values())) > 1:
            raise S5GeoError(f"the datasets have different band counts: {counts}")
        return next(iter(counts.values()))

    def loader_names(self, stage: str) -> list[str]:
        """The dataset of each ``val``/``test`` loader index, as last returned."""
        return list(self._loader_names.get(stage, self.eval_datasets.get(stage, self.names)))

    # --- Lightning hooks -------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Prepare every datamodule (downloads, extraction)."""
        for dm in self.datamodules.values():
            dm.prepare_data()

    def setup(self, stage: str) -> None:
        """Set up every datamodule; they share this one's trainer (their batch hooks read it)."""
        for dm in self.datamodules.values():
            dm.trainer = self.trainer
            dm.setup(stage)

    def teardown(self, stage: str) -> None:
        """Tear down every datamodule."""
        for dm in self.datamodules.values():
            dm.teardown(stage)

    def train_dataloader(self) -> CombinedLoader:
        """``{dataset: batch}`` per step over every dataset's training loader."""
        loaders = {name: dm.train_dataloader() for name, dm in self.datamodules.items()}
        return CombinedLoader(loaders, mode=self.mode)

    def _eval_loaders(self, stage: str) -> list[DataLoader]:
        names: list[str] = []
        loaders: list[DataLoader] = []
        for name in self.eval_datasets.get(stage, self.names):
            loader = getattr(self.datamodules[name], f"{stage}_dataloader")()
            if isinstance(loader, DataLoader):
                names.append(name)
                loaders.append(loader)
            elif isinstance(loader, Sequence) and loader:
                raise S5GeoError(f"dataset {name!r}: its {stage} data must be one loader")
        self._loader_names[stage] = names
        return loaders

    def val_dataloader(self) -> list[DataLoader]:
        """One validation loader per validated dataset (see :meth:`loader_names`)."""
        return self._eval_loaders("val")

    def test_dataloader(self) -> list[DataLoader]:
        """One test loader per tested dataset (see :meth:`loader_names`)."""
        return self._eval_loaders("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Let each dataset's datamodule scale (and in training augment) its own batches."""
        trainer = self.trainer
        if trainer is not None and trainer.training:
            return {name: self.datamodules[name].on_after_batch_transfer(b, 0) for name, b in batch.items()}
        stage = "test" if trainer is not None and trainer.testing else "val"
        name = self.loader_names(stage)[dataloader_idx]
        return self.datamodules[name].on_after_batch_transfer(batch, 0)


__all__ = ["MultiDatasetDataModule", "instantiate_datamodule"]
