"""Base pieces of s5geo datamodules: scaling to [0, 1] and augmentation after device transfer.

Batches leave the loaders with raw pixel values; ``on_after_batch_transfer`` divides images by
``scale`` and, in training, applies the augmentation on the device (``docs/architecture.md``).
Evaluation loaders default to batch size 1 so whole tiles of different sizes never have to be
stacked (a plain collate cannot stack them); larger evaluation batches are padded (image 0, mask
255).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from torchgeo.datamodules import NonGeoDataModule

from s5geo.constants import IGNORE_INDEX
from s5geo.datamodules._band_names import dataset_band_names
from s5geo.datamodules._collate import CropPadCollate, RescaleCropCollate
from s5geo.errors import S5GeoError
from s5geo.transforms import SegmentationAugmentation

Batch = dict[str, Any]
CropOrder = Literal["rescale_then_crop", "crop_then_rescale"]
CROP_ORDERS: tuple[str, ...] = ("rescale_then_crop", "crop_then_rescale")


def instantiate(spec: Any, what: str = "dataset") -> Any:
    """Return ``spec``, or the object a ``{"class_path", "init_args"}`` mapping describes.

    Args:
        spec: an object, or a mapping as LightningCLI configs write them.
        what: what the spec is, for the error messages (``"dataset"``, ``"datamodule 'potsdam'"``).

    Raises:
        S5GeoError: the mapping has no ``class_path`` or it cannot be imported.
    """
    if not isinstance(spec, Mapping):
        return spec
    if "class_path" not in spec:
        raise S5GeoError(f"{what} spec needs a 'class_path', got keys {sorted(spec)}")
    path = str(spec["class_path"])
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise S5GeoError(f"{what}: class_path must be a dotted path, got {path!r}")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise S5GeoError(f"cannot import {what} class {path!r}: {error}") from error
    return cls(**dict(spec.get("init_args") or {}))


def instantiate_dataset(spec: Dataset | Mapping[str, Any]) -> Dataset:
    """Return a dataset given as an object or as a ``{"class_path", "init_args"}`` mapping."""
    return instantiate(spec, "dataset")


def _dataset_attr(dataset: Any, name: str) -> Any:
    """Find ``name`` on a dataset, looking through ``Subset``/``ConcatDataset`` wrappers."""
    while dataset is not None:
        value = getattr(dataset, name, None)
        if value:
            return value
        if isinstance(dataset, ConcatDataset):
            dataset = dataset.datasets[0]
        else:
            dataset = getattr(dataset, "dataset", None)
    return None


def scale_image(image: Tensor, scale: float | Sequence[float]) -> Tensor:
    """Divide a raw ``B x C x H x W`` batch by ``scale`` (scalar or one value per band).

    Integer batches become float32; floating ones keep their dtype.

    Raises:
        S5GeoError: if ``scale`` has neither one value nor one per band.
    """
    image = image.float() if not image.is_floating_point() else image
    if isinstance(scale, (int, float)):
        return image / float(scale)
    factors = torch.as_tensor(scale, dtype=image.dtype, device=image.device)
    if factors.numel() != image.shape[1]:
        raise S5GeoError(f"scale has {factors.numel()} values but the images have {image.shape[1]} bands")
    return image / factors.view(1, -1, 1, 1)


def training_augmentation(
    augment: bool,
    augmentation: nn.Module | None,
    crop_size: int,
    scale: tuple[float, float] = (0.5, 2.0),
) -> nn.Module | None:
    """``augmentation``, by default :class:`SegmentationAugmentation`; None when not ``augment``.

    Args:
        augment: apply a training augmentation at all.
        augmentation: the module to use (None: the default one).
        crop_size: side of the default augmentation's output.
        scale: rescale range of the default augmentation (``(1, 1)`` when the loader rescales).
    """
    if not augment:
        return None
    return SegmentationAugmentation(crop_size, scale=scale) if augmentation is None else augmentation


class ScaledBatchMixin:
    """Scaling, device-side augmentation, evaluation loaders and data metadata.

    Implements :class:`s5geo.metadata.DataModuleMetadata` (``classes``, ``colors``, ``bands``,
    ``gsd``, ``scale``, ``band_names``). Subclasses call :meth:`_set_options` with the options
    every s5geo datamodule has, set the ``*_dataset`` attributes (or override
    :meth:`_eval_dataset`), and ``gsd`` where the imagery has one.
    """

    #: Ground sampling distance of the imagery in metres (None: unknown or mixed).
    gsd: float | None = None

    scale: float | Sequence[float]
    train_augmentation: nn.Module | None
    num_workers: int
    val_batch_size: int | None
    test_batch_size: int | None
    _classes: Sequence[str] | None
    _colors: Sequence[Sequence[int]] | None
    _in_channels: int | None
    trainer: Any
    #: How training views are cut: ``"rescale_then_crop"`` (the S5 reference, in the loader) or
    #: ``"crop_then_rescale"`` (``loader_crop_size`` crops, rescaled on the device).
    crop_order: CropOrder = "crop_then_rescale"
    #: Range of the training rescale factor.
    rescale: tuple[float, float] = (1.0, 1.0)

    def _set_crop_order(self, crop_order: str, rescale: Sequence[float]) -> tuple[float, float]:
        """Store ``crop_order`` and ``rescale``; return the rescale range left to the device.

        Raises:
            S5GeoError: for an unknown ``crop_order``.
        """
        if crop_order not in CROP_ORDERS:
            raise S5GeoError(f"crop_order must be one of {CROP_ORDERS}, got {crop_order!r}")
        self.crop_order = crop_order  # type: ignore[assignment]
        self.rescale = (float(rescale[0]), float(rescale[1]))
        return self.rescale if crop_order == "crop_then_rescale" else (1.0, 1.0)

    def _train_collate(self, mark_padding: bool = False) -> CropPadCollate | RescaleCropCollate:
        """The loader collate of a training stream: whole samples rescaled then cropped, or crops.

        Without a training augmentation the loader cuts plain ``loader_crop_size`` crops.
        """
        if self.crop_order == "crop_then_rescale" or self.train_augmentation is None:
            return CropPadCollate(self.loader_crop_size, mark_padding=mark_padding)
        return RescaleCropCollate(self.crop_size, self.rescale, mark_padding=mark_padding)

    def _set_options(
        self,
        crop_size: int,
        num_workers: int,
        scale: float | Sequence[float],
        eval_batch_sizes: tuple[int | None, int | None],
        train_augmentation: nn.Module | None,
        metadata: tuple[Sequence[str] | None, Sequence[Sequence[int]] | None, int | None],
        loader_crop_size: int | None = None,
    ) -> None:
        """Store the options every s5geo datamodule has.

        Args:
            crop_size: side of the training crops after augmentation.
            num_workers: loader workers.
            scale: divisor that maps raw pixel values to [0, 1].
            eval_batch_sizes: validation and test batch sizes.
            train_augmentation: device-side training augmentation (None: none).
            metadata: ``classes``, ``colors`` and ``in_channels`` given by the user (None: from the data).
            loader_crop_size: side of the loader-side crops (default ``crop_size``).
        """
        self.crop_size = crop_size
        self.loader_crop_size = loader_crop_size or crop_size
        self.num_workers = num_workers
        self.scale = scale
        self.val_batch_size, self.test_batch_size = eval_batch_sizes
        self.train_augmentation = train_augmentation
        self._classes, self._colors, self._in_channels = metadata

    def _metadata_source(self) -> Any:
        for name in ("train_dataset", "labeled_dataset", "val_dataset", "test_dataset"):
            dataset = getattr(self, name, None)
            if dataset is not None:
                return dataset
        return getattr(self, "dataset_class", None)

    @property
    def classes(self) -> list[str]:
        """Class names, index ``i`` is class ``i``."""
        if self._classes:
            return list(self._classes)
        found = _dataset_attr(self._metadata_source(), "classes")
        return list(found) if found else []

    @property
    def colors(self) -> list[tuple[int, int, int]]:
        """Display colour of each class."""
        found = self._colors or _dataset_attr(self._metadata_source(), "colors")
        return [tuple(int(v) for v in c) for c in found] if found else []  # type: ignore[misc]

    @property
    def bands(self) -> list[int] | None:
        """1-based bands of the source rasters that the images hold, in order (None: all, in order).

        Taken from the dataset's ``image_bands`` (e.g. ``[4, 1, 2]`` for Potsdam read as IR-R-G).
        """
        found = _dataset_attr(self._metadata_source(), "image_bands")
        return [int(b) for b in found] if found else None

    @property
    def band_names(self) -> list[str] | None:
        """Names of the image bands in order (e.g. ``["red", "green", "blue"]``), None if unknown.

        The dataset's ``band_names``, else read from its first image (descriptions of every band,
        or an RGB colour interpretation); see :mod:`s5geo.datamodules._band_names`.
        """
        return dataset_band_names(self._metadata_source())

    @property
    def in_channels(self) -> int:
        """Number of image bands (read from the first sample when not given)."""
        if self._in_channels is None:
            source = self._metadata_source()
            if not isinstance(source, Dataset):
                raise S5GeoError("in_channels is unknown before setup(); pass in_channels=")
            self._in_channels = int(source[0]["image"].shape[0])
        return self._in_channels

    def scale_image(self, image: Tensor) -> Tensor:
        """Divide raw pixel values by ``scale`` (scalar or one value per band)."""
        return scale_image(image, self.scale)

    def _augment(self, stream: Batch) -> Batch:
        stream = dict(stream)
        stream["image"] = self.scale_image(stream["image"])
        augmentation = self.train_augmentation
        if augmentation is None:
            return stream
        if "padding" in stream:
            # The augmentations move integer masks: padding travels as 255 and returns as a flag.
            marker = torch.where(stream["padding"], IGNORE_INDEX, 0)
            stream["image"], marker = augmentation(stream["image"], marker)
            stream["padding"] = marker == IGNORE_INDEX
        else:
            stream["image"], stream["mask"] = augmentation(stream["image"], stream.get("mask"))
        return stream

    def transform_batch(self, batch: Batch, split: str) -> Batch:
        """Scale a batch and, for ``split == "train"``, augment it (each stream of a pair)."""
        if split == "train":
            if "labeled" in batch:
                return {name: self._augment(stream) for name, stream in batch.items()}
            return self._augment(batch)
        if "labeled" in batch:
            return {name: self.transform_batch(stream, split) for name, stream in batch.items()}
        batch = dict(batch)
        batch["image"] = self.scale_image(batch["image"])
        return batch

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        """Scale to [0, 1] and, while training, augment on the device."""
        trainer = self.trainer
        split = "train" if trainer is not None and trainer.training else "eval"
        return self.transform_batch(batch, split)

    def _loader(self, dataset: Dataset, **options: Any) -> DataLoader:
        """A ``DataLoader`` with this datamodule's workers (kept alive between epochs)."""
        return DataLoader(
            dataset, num_workers=self.num_workers, persistent_workers=self.num_workers > 0, **options
        )

    def _eval_dataset(self, name: str) -> Dataset | None:
        """The dataset of an evaluation stage (``"val"``, ``"test"`` or ``"predict"``), None if absent."""
        return getattr(self, f"{name}_dataset", None)

    def _eval_loader(self, name: str, batch_size: int | None) -> DataLoader:
        dataset = self._eval_dataset(name)
        if dataset is None:
            raise S5GeoError(f"{type(self).__name__} has no {name} dataset")
        return self._loader(
            dataset, batch_size=batch_size or 1, shuffle=False, collate_fn=CropPadCollate(None)
        )

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """Whole validation samples (batch 1 by default, padded otherwise); none without a val set."""
        # Lightning skips validation when the hook returns no loader.
        if self._eval_dataset("val") is None:
            return []
        return self._eval_loader("val", self.val_batch_size)

    def test_dataloader(self) -> DataLoader:
        """Whole test samples (batch 1 by default, padded otherwise)."""
        return self._eval_loader("test", self.test_batch_size)

    def predict_dataloader(self) -> DataLoader:
        """Whole samples of the prediction dataset."""
        return self._eval_loader("predict", self.test_batch_size)


class ScaledDataModule(ScaledBatchMixin, LightningDataModule):
    """A Lightning datamodule taking the options every s5geo datamodule has, by keyword.

    Datamodules that are not TorchGeo ``NonGeoDataModule`` s (semi-supervised pairs, SEP) derive
    from it, take only their own arguments and pass the rest on with ``**kwargs``; LightningCLI
    follows that ``**kwargs`` and lists these options in ``--data.help``. Subclasses set
    ``train_augmentation`` (None here: scaling only).

    Args:
        crop_size: side of the training crops after augmentation.
        num_workers: loader workers.
        scale: divisor that maps raw pixel values to [0, 1] (scalar or one per band).
        val_batch_size: validation batch size (1: tiles may differ in size).
        test_batch_size: test batch size.
        loader_crop_size: side of the loader-side crops (default ``crop_size``).
        classes: class names (default: the data's).
        colors: class colours (default: the data's).
        in_channels: number of bands (default: read from the data).
    """

    def __init__(
        self,
        *,
        crop_size: int = 512,
        num_workers: int = 0,
        scale: float | Sequence[float] = 255.0,
        val_batch_size: int = 1,
        test_batch_size: int = 1,
        loader_crop_size: int | None = None,
        classes: Sequence[str] | None = None,
        colors: Sequence[Sequence[int]] | None = None,
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        metadata = (classes, colors, in_channels)
        eval_sizes = (val_batch_size, test_batch_size)
        self._set_options(crop_size, num_workers, scale, eval_sizes, None, metadata, loader_crop_size)


class S5DataModule(ScaledBatchMixin, NonGeoDataModule):
    """Supervised datamodule for a dataset class with ``split=`` (TorchGeo ``NonGeoDataModule``).

    Training views are made as in the reference by default (``crop_order="rescale_then_crop"``):
    the loader rescales each whole sample by its own factor in ``rescale`` and crops
    ``crop_size`` from it (padding only where the rescaled sample is smaller); on the device the
    batch is scaled and augmented with :class:`SegmentationAugmentation` without a rescale (flips,
    rotations, photometry), or with ``augmentation``. ``crop_order="crop_then_rescale"`` stacks
    random ``loader_crop_size`` crops (padded when smaller) in the loader and rescales them on the
    device. Validation/test batches are whole samples, scaled only.

    Args:
        dataset_class: dataset class taking ``split=`` and ``**kwargs``.
        batch_size: training batch size.
        crop_size: side of the training crops after augmentation.
        num_workers: loader workers.
        scale: divisor that maps raw pixel values to [0, 1] (scalar or one per band).
        val_batch_size: validation batch size (1 by default: tiles may differ in size).
        test_batch_size: test batch size.
        train_split: split name(s) used for training (several are concatenated).
        val_split: split used for validation.
        test_split: split used for testing.
        augment: apply the training augmentation (False: plain ``loader_crop_size`` crops).
        augmentation: module ``(image, mask) -> (image, mask)`` replacing the default one (it
            receives ``crop_size`` views already rescaled under ``rescale_then_crop``).
        loader_crop_size: side of the loader-side crops of ``crop_then_rescale`` (default
            ``crop_size``).
        train_kwargs: extra dataset arguments for the training split only.
        eval_kwargs: extra dataset arguments for the validation and test splits only.
        classes: class names (default: the dataset's).
        colors: class colours (default: the dataset's).
        in_channels: number of bands (default: read from the data).
        rescale: range of the training rescale factor (of the long side).
        crop_order: ``"rescale_then_crop"`` (the reference, in the loader) or
            ``"crop_then_rescale"`` (``loader_crop_size`` crops, rescaled on the device).
        **kwargs: arguments for every split of ``dataset_class`` (e.g. ``root``).
    """

    def __init__(
        self,
        dataset_class: type[Dataset],
        batch_size: int = 24,
        crop_size: int = 512,
        num_workers: int = 0,
        scale: float | Sequence[float] = 255.0,
        val_batch_size: int = 1,
        test_batch_size: int = 1,
        train_split: str | Sequence[str] = "train",
        val_split: str | None = "val",
        test_split: str | None = "test",
        augment: bool = True,
        augmentation: nn.Module | None = None,
        loader_crop_size: int | None = None,
        train_kwargs: dict[str, Any] | None = None,
        eval_kwargs: dict[str, Any] | None = None,
        classes: Sequence[str] | None = None,
        colors: Sequence[Sequence[int]] | None = None,
        in_channels: int | None = None,
        rescale: tuple[float, float] = (0.5, 2.0),
        crop_order: CropOrder = "rescale_then_crop",
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset_class, batch_size=batch_size, num_workers=num_workers, **kwargs)
        device_scale = self._set_crop_order(crop_order, rescale)
        augmentation = training_augmentation(augment, augmentation, crop_size, device_scale)
        metadata = (classes, colors, in_channels)
        eval_sizes = (val_batch_size, test_batch_size)
        self._set_options(crop_size, num_workers, scale, eval_sizes, augmentation, metadata, loader_crop_size)
        self.train_split = train_split
        self.val_split = val_split
        self.test_split = test_split
        self.train_kwargs = dict(train_kwargs or {})
        self.eval_kwargs = dict(eval_kwargs or {})

    def _make(self, split: str | Sequence[str], extra: dict[str, Any]) -> Dataset:
        splits = [split] if isinstance(split, str) else list(split)
        parts = [self.dataset_class(split=s, **{**self.kwargs, **extra}) for s in splits]
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)

    def setup(self, stage: str) -> None:
        """Build the datasets a stage needs."""
        if stage == "fit":
            self.train_dataset = self._make(self.train_split, self.train_kwargs)
        if stage in ("fit", "validate") and self.val_split is not None:
            self.val_dataset = self._make(self.val_split, self.eval_kwargs)
        if stage == "test" and self.test_split is not None:
            self.test_dataset = self._make(self.test_split, self.eval_kwargs)
        if stage == "predict" and self.test_split is not None:
            self.predict_dataset = self._make(self.test_split, self.eval_kwargs)

    def train_dataloader(self) -> DataLoader:
        """Shuffled, equal-size views; Lightning adds its DistributedSampler under DDP."""
        if self.train_dataset is None:
            raise S5GeoError(f"{type(self).__name__}: call setup('fit') first")
        return self._loader(
            self.train_dataset,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=self._train_collate(),
        )


__all__ = ["S5DataModule", "ScaledBatchMixin", "instantiate_dataset", "training_augmentation"]
