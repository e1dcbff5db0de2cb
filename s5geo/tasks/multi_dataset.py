"""Multi-dataset fine-tuning: one network, one batch of every dataset per step (the S5 ViT-MoE models).

The network is a :class:`~s5geo.models.upernet_mdf.MultiDatasetUPerNet` (``upernet_mdf_*``): a
shared ViT-MoE encoder with one expert, UPerNet decoder and classifier per dataset. A training
batch of :class:`~s5geo.datamodules.MultiDatasetDataModule` holds one batch per dataset; each
goes through its dataset's expert, decoder and classifier, and the weighted per-dataset losses
are summed (or averaged). Validation and test are per dataset.

Checkpoints hold the whole network and, besides the usual ``s5geo_metadata`` (that of the first
dataset, the one the network routes through by default), every dataset's metadata under
``s5geo_datasets``. :func:`load_dataset_model` and :func:`export_dataset_head` take one dataset's
network out of such a checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from torch import Tensor, nn

from s5geo.errors import S5GeoError
from s5geo.metadata import CHECKPOINT_DATASETS_KEY as DATASETS_METADATA_KEY
from s5geo.metadata import ModelMetadata
from s5geo.models.upernet_mdf import MultiDatasetUPerNet
from s5geo.models.vit_moe import MoEUPerNet
from s5geo.tasks import evaluation
from s5geo.tasks.base import BaseSegmentationTask
from s5geo.tasks.metrics import SegmentationMetrics


class MultiDatasetSegmentation(BaseSegmentationTask):
    """Supervised fine-tuning of one multi-dataset network on several datasets at once.

    Training batches are ``{dataset: {"image", "mask"}}``; the loss is
    ``sum_d w_d * CE_d`` (``loss_reduction="mean"``: divided by the number of datasets). Metrics
    are logged per dataset (``val/<dataset>/mIoU``, ``/mF1``, ``/OA``, ``/IoU_<class>``,
    ``/loss``) and averaged over ``mean_datasets`` into ``val/mIoU``, ``val/mF1`` and ``val/OA``.
    ``init_from`` loads through :meth:`MultiDatasetUPerNet.load_pretrained`: the authors'
    multi-dataset models, their S4P UperNets (whose decoder every dataset gets), MAE and s5geo
    checkpoints. ``task(x)`` uses the first dataset's network; ``predict_step`` refuses to choose
    one when there are several (export one dataset's network with ``s5geo export --head``).

    Args:
        model: a multi-dataset network: registry name (``upernet_mdf_vit_b_moe``, ...; its
            ``model_kwargs.datasets`` maps each dataset to its class count, in expert order) or
            a :class:`~s5geo.models.upernet_mdf.MultiDatasetUPerNet`.
        loss_weights: dataset -> weight of its loss (1 for datasets not named).
        loss_start_epochs: dataset -> first epoch (0-based) in which its loss counts; before it
            the weight is 0.
        loss_reduction: ``"sum"`` of the weighted losses, or their ``"mean"`` over the datasets.
        mean_datasets: datasets averaged into ``val/mIoU`` and friends (default: every validated one).
        eval_modes: dataset -> evaluation mode (``"sliding"``, ``"whole"`` or ``"resize"``, see
            :class:`BaseSegmentationTask`'s ``eval_mode``) where it differs from ``eval_mode``. The
            S5 authors evaluate Vaihingen and Potsdam whole and LoveDA and OpenEarthMap resized to 512.
        **kwargs: :class:`BaseSegmentationTask` arguments (``num_classes`` is the class count of
            datasets the network names without one).
    """

    #: Dataset whose metadata ``_datamodule``/``num_classes`` stand for (None: the task's own).
    _scoped: str | None = None

    def __init__(
        self,
        *,
        model: str | nn.Module = "upernet_mdf_vit_b_moe",
        loss_weights: dict[str, float] | None = None,
        loss_start_epochs: dict[str, int] | None = None,
        loss_reduction: Literal["sum", "mean"] = "sum",
        mean_datasets: list[str] | None = None,
        eval_modes: dict[str, Literal["sliding", "whole", "resize"]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, **kwargs)
        if loss_reduction not in ("sum", "mean"):
            raise S5GeoError(f"loss_reduction must be 'sum' or 'mean', got {loss_reduction!r}")
        for option in ("loss_weights", "loss_start_epochs", "mean_datasets", "eval_modes"):
            self._check_names(self.hparams.get(option) or [], option)
        bad = {k: v for k, v in (eval_modes or {}).items() if v not in ("sliding", "whole", "resize")}
        if bad:
            raise S5GeoError(f"eval_modes: unknown modes {bad}; expected 'sliding', 'whole' or 'resize'")
        if "sliding" in (eval_modes or {}).values() and not self.hparams.get("sliding_window"):
            raise S5GeoError("eval_modes: 'sliding' needs sliding_window=(window, stride)")
        self._evaluating: str | None = None

    @property
    def network(self) -> MultiDatasetUPerNet:
        """The multi-dataset network (``self.model``)."""
        return self.model  # type: ignore[return-value]

    def _check_names(self, names: Sequence[str] | Mapping[str, Any], option: str) -> None:
        unknown = [n for n in names if str(n).lower() not in self.network.num_classes]
        if unknown:
            raise S5GeoError(
                f"{option}: unknown datasets {unknown}; the network's datasets: "
                f"{', '.join(self.network.datasets)}"
            )

    # ------------------------------------------------------------------- hooks
    def configure_models(self) -> None:
        """Build the network (see :class:`BaseSegmentationTask`) and check it is a multi-dataset one."""
        super().configure_models()
        if not isinstance(self.model, MultiDatasetUPerNet):
            raise S5GeoError(
                f"MultiDatasetSegmentation needs a multi-dataset network (upernet_mdf_vit_b_moe, ...), "
                f"got {self.hparams.get('model', type(self.model).__name__)!r}"
            )

    def configure_metrics(self) -> None:
        """Set ``self.val_metrics`` and ``self.test_metrics``: one metric per dataset."""
        hp = self.hparams
        excluded = list(hp.excluded_classes or [])

        def per_dataset() -> nn.ModuleDict:
            return nn.ModuleDict(
                {
                    name: SegmentationMetrics(count, int(hp.ignore_index), excluded)
                    for name, count in self.network.num_classes.items()
                }
            )

        self.val_metrics = per_dataset()  # type: ignore[assignment]
        self.test_metrics = per_dataset()  # type: ignore[assignment]

    # ------------------------------------------------------------------ training
    def loss_weight(self, dataset: str) -> float:
        """Weight of ``dataset``'s loss at the current epoch."""
        hp = self.hparams
        start = {str(k).lower(): int(v) for k, v in (hp.loss_start_epochs or {}).items()}
        if self._trainer is not None and self.current_epoch < start.get(dataset, 0):
            return 0.0
        weights = {str(k).lower(): float(v) for k, v in (hp.loss_weights or {}).items()}
        return weights.get(dataset, 1.0)

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """``{"loss": total, "<dataset>/loss": ...}`` for ``{dataset: {"image", "mask"}}``."""
        images = {str(name).lower(): self.normalize(b["image"]) for name, b in batch.items()}
        logits = self.network.forward_datasets(images)
        losses = {
            name: self.criterion(logits[name], b["mask"])
            for name, b in zip(logits, batch.values(), strict=True)
        }
        total = sum(self.loss_weight(name) * loss for name, loss in losses.items())
        if self.hparams.loss_reduction == "mean":
            total = total / len(losses)
        return {"loss": total, **{f"{name}/loss": loss for name, loss in losses.items()}}  # type: ignore[dict-item]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """One optimisation step on one batch of every dataset."""
        losses = self.compute_losses(batch)
        size = sum(int(b["image"].shape[0]) for b in batch.values())
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=size)
        for name, value in losses.items():
            if name != "loss":
                self.log(f"train/{name}", value, batch_size=size)
        self.log("train/lr", self.current_lr(), batch_size=size)
        return losses["loss"]

    # --------------------------------------------------------------- fine-tuning
    def _load_weights(self, path: str | Path, layout: str | None) -> Any:
        """Load weights into every dataset's network (:meth:`MultiDatasetUPerNet.load_pretrained`)."""
        return self.network.load_pretrained(path, kind=layout)

    def _classifier_keys(self) -> list[str]:
        """Keys of every dataset's classifier."""
        return [k for k in self.model.state_dict() if k.startswith("classifiers.")]

    def setup(self, stage: str) -> None:
        """Check the datamodule's datasets against the network's, then load ``init_from`` (in ``fit``)."""
        dm = self._datamodule()
        children = getattr(dm, "datamodules", None)
        if isinstance(children, Mapping):
            self._check_names(list(children), "datamodules")
            for name, child in children.items():
                classes = _known_classes(child)
                count = self.network.num_classes[str(name).lower()]
                if classes is not None and len(classes) != count:
                    raise S5GeoError(
                        f"dataset {name!r}: the network's classifier has {count} classes but "
                        f"{type(child).__name__} has {len(classes)} ({', '.join(map(str, classes[:8]))}); "
                        f"set its class count in model_kwargs.datasets"
                    )
        super().setup(stage)

    # --------------------------------------------------------------- evaluation
    def _loader_dataset(self, stage: str, dataloader_idx: int) -> str:
        dm = self._datamodule()
        names = dm.loader_names(stage) if hasattr(dm, "loader_names") else self.network.datasets
        return str(names[dataloader_idx]).lower()

    def predict_probabilities(self, image: Tensor, dataset: str | None = None) -> Tensor:
        """Softmax of ``dataset``'s network (default: the first dataset's) for a ``[0, 1]`` batch.

        Evaluated as :meth:`BaseSegmentationTask.predict_probabilities` in the dataset's mode
        (``eval_modes``, else ``eval_mode``), with flip TTA if set.
        """
        self._evaluating = self._dataset_name(dataset)
        self.network.select_dataset(self._evaluating)
        return super().predict_probabilities(image)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Class indices ``B x H x W``; refused when the network has several datasets to choose from.

        ``s5geo predict`` writes one class map with one legend, and with several datasets it could
        only guess which network and classes were meant.
        """
        datasets = self.network.datasets
        if len(datasets) > 1:
            raise S5GeoError(
                f"a multi-dataset model ({', '.join(datasets)}) predicts with one dataset's network: "
                f"export it (`s5geo export CKPT --head {datasets[0]} -o {datasets[0]}.onnx`) and run "
                f"`s5geo segment RASTER --model {datasets[0]}.onnx`"
            )
        return super().predict_step(batch, batch_idx, dataloader_idx)

    def evaluation_mode(self) -> str:
        """The evaluation mode of the dataset being evaluated (``eval_modes``, else ``eval_mode``)."""
        modes = {str(k).lower(): str(v) for k, v in (self.hparams.get("eval_modes") or {}).items()}
        return modes.get(self._evaluating or "") or super().evaluation_mode()

    def _eval_dataset_step(self, batch: dict[str, Tensor], stage: str, dataloader_idx: int) -> None:
        name = self._loader_dataset(stage, dataloader_idx)
        metrics = (self.val_metrics if stage == "val" else self.test_metrics)[name]
        image, mask = batch["image"], batch["mask"]
        probs = self.predict_probabilities(image, name)
        metrics.update(probs.argmax(1), mask)
        loss = evaluation.probability_loss(probs, mask, int(self.hparams.ignore_index))
        if loss is not None:
            self.log(
                f"{stage}/{name}/loss",
                loss,
                batch_size=image.shape[0],
                sync_dist=True,
                add_dataloader_idx=False,
            )

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        """Accumulate the confusion matrix of the loader's dataset."""
        self._eval_dataset_step(batch, "val", dataloader_idx)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        """Accumulate the confusion matrix of the loader's dataset."""
        self._eval_dataset_step(batch, "test", dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        """Log every dataset's metrics and their mean; print the class tables."""
        self._log_all(self.val_metrics, "val")  # type: ignore[arg-type]

    def on_test_epoch_end(self) -> None:
        """Log every dataset's metrics and their mean; print the class tables."""
        self._log_all(self.test_metrics, "test")  # type: ignore[arg-type]

    def _log_all(self, metrics: nn.ModuleDict, prefix: str) -> None:
        values: dict[str, dict[str, Any]] = {}
        for name, metric in metrics.items():
            found = evaluation.log_metrics(self, metric, f"{prefix}/{name}", self.class_names(name))
            if found is not None:
                values[name] = found
        chosen = [str(n).lower() for n in self.hparams.get("mean_datasets") or values]
        averaged = [values[n] for n in chosen if n in values]
        if not averaged:
            return
        mean = {
            key: float(sum(float(v[key]) for v in averaged) / len(averaged)) for key in ("miou", "mf1", "oa")
        }
        self.log(f"{prefix}/mIoU", mean["miou"], prog_bar=True, sync_dist=True)
        self.log(f"{prefix}/mF1", mean["mf1"], sync_dist=True)
        self.log(f"{prefix}/OA", mean["oa"], sync_dist=True)
        self.last_metrics = {prefix: {**values, "mean": mean}}

    # --------------------------------------------------------------- checkpoints
    @contextlib.contextmanager
    def _dataset_scope(self, dataset: str) -> Iterator[None]:
        """Make the data metadata and ``num_classes`` those of one dataset (for the base's metadata code)."""
        hp = self.hparams
        saved, self._scoped = hp.num_classes, dataset
        hp.num_classes = self.network.num_classes[dataset]
        try:
            yield
        finally:
            hp.num_classes, self._scoped = saved, None

    def _datamodule(self) -> Any:
        dm = super()._datamodule()
        if self._scoped is None:
            return dm
        children = getattr(dm, "datamodules", None)
        return children.get(self._scoped) if isinstance(children, Mapping) else None

    def _dataset_name(self, dataset: str | None) -> str:
        name = (dataset or self.network.datasets[0]).lower()
        self._check_names([name], "dataset")
        return name

    def class_names(self, dataset: str | None = None) -> list[str]:
        """Class names of ``dataset`` (default: the first) from its datamodule, else ``class_<i>``."""
        if self._scoped is not None and dataset is None:
            return super().class_names()
        with self._dataset_scope(self._dataset_name(dataset)):
            return super().class_names()

    def model_metadata(self, dataset: str | None = None) -> ModelMetadata:
        """Metadata of ``dataset``'s network (default: the first dataset's), from its datamodule.

        With a dataset named, ``model`` is the single-dataset network's registry name, the
        network :func:`load_dataset_model` returns.
        """
        name = self._dataset_name(dataset)
        with self._dataset_scope(name):
            metadata = super().model_metadata()
        single = self.network.single_model_name()
        if dataset is not None and single:
            metadata = dataclasses.replace(metadata, model=single)
        return metadata

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the first dataset's metadata (``s5geo_metadata``) and every one's (``s5geo_datasets``)."""
        super().on_save_checkpoint(checkpoint)
        checkpoint[DATASETS_METADATA_KEY] = {
            name: self.model_metadata(name).to_dict() for name in self.network.datasets
        }


def _known_classes(datamodule: Any) -> list[Any] | None:
    """A datamodule's class names when known without loading data, else None."""
    try:
        classes = getattr(datamodule, "classes", None)
    except Exception:  # a property that needs data not set up yet
        return None
    return list(classes) if isinstance(classes, (list, tuple)) and classes else None


def load_dataset_model(checkpoint: str | Path, dataset: str) -> tuple[MoEUPerNet, ModelMetadata]:
    """One dataset's network and metadata from a :class:`MultiDatasetSegmentation` checkpoint.

    The network is a :class:`~s5geo.models.vit_moe.MoEUPerNet` (normalised input -> logits) in
    eval mode, as :func:`s5geo.inference.load_model` returns for single-dataset checkpoints, so
    the prediction and export code takes it as it is.

    Raises:
        S5GeoError: the file is no multi-dataset checkpoint or has no such dataset.
    """
    from s5geo.inference.loading import load_checkpoint_file, load_model

    network, _ = load_model(checkpoint)
    if not isinstance(network, MultiDatasetUPerNet):
        raise S5GeoError(
            f"{checkpoint}: not a multi-dataset checkpoint (its network is {type(network).__name__})"
        )
    name = dataset.lower()
    if name not in network.num_classes:
        raise S5GeoError(f"{checkpoint}: no dataset {dataset!r}; its datasets: {', '.join(network.datasets)}")
    recorded = load_checkpoint_file(checkpoint, mmap=True).get(DATASETS_METADATA_KEY) or {}
    if name not in recorded:
        raise S5GeoError(f"{checkpoint}: no metadata for dataset {name!r} ({DATASETS_METADATA_KEY!r})")
    return network.dataset_model(name).eval(), ModelMetadata.from_dict(recorded[name])


def export_dataset_head(
    checkpoint: str | Path, output: str | Path, dataset: str, **kwargs: Any
) -> tuple[Path, ModelMetadata]:
    """Export one dataset's network of a :class:`MultiDatasetSegmentation` checkpoint to ONNX.

    The ONNX model and its metadata (that dataset's classes, colours, bands, gsd and
    normalisation) are those ``s5geo export`` writes for a single-dataset checkpoint.

    Args:
        checkpoint: the task checkpoint (``.ckpt``).
        output: the ``.onnx`` file.
        dataset: the dataset whose expert, decoder and classifier to export.
        **kwargs: :func:`s5geo.inference.onnx_export.export_onnx` options (``opset``,
            ``overwrite``, ``verify``, ``tolerance``).

    Raises:
        S5GeoError: as :func:`load_dataset_model` and :func:`~s5geo.inference.onnx_export.export_onnx`.
    """
    from s5geo.inference.files import check_not_input
    from s5geo.inference.onnx_export import export_onnx

    output = Path(output)
    check_not_input(output, [checkpoint])
    module, metadata = load_dataset_model(checkpoint, dataset)
    return export_onnx(module, metadata, output, **kwargs), metadata


__all__ = [
    "DATASETS_METADATA_KEY",
    "MultiDatasetSegmentation",
    "export_dataset_head",
    "load_dataset_model",
]
