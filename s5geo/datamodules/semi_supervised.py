"""Pair any labeled dataset with any unlabeled one for semi-supervised training.

Sampling is done by :class:`PairedBatchSampler`, a :class:`~torch.utils.data.DistributedSampler`
that yields whole batch specifications ``(labeled indices, unlabeled indices)``. Because it *is*
a ``DistributedSampler``, Lightning leaves it in place instead of injecting its own (which could
neither pair two streams nor cycle the labeled one), and still calls its ``set_epoch`` at every
epoch. Each rank takes a disjoint share of both streams.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from s5geo.datamodules._collate import CropPadCollate, RescaleCropCollate
from s5geo.datamodules.base import CropOrder, ScaledDataModule, instantiate_dataset
from s5geo.errors import S5GeoError
from s5geo.transforms import WeakView

#: ``(labeled indices, unlabeled indices)``, plus the partner batch's indices when it has its own.
BatchSpec = tuple[tuple[int, ...], ...]
Collate = CropPadCollate | RescaleCropCollate
PartnerBatch = Literal["same_images", "other_images"]


class PairedBatchSampler(DistributedSampler):
    """Yield ``(labeled indices, unlabeled indices)`` per batch, distributed over ranks.

    The unlabeled stream defines the epoch: it is shuffled with ``seed + epoch`` (the same
    permutation on every rank), rank ``r`` takes every ``num_replicas``-th index starting at ``r``
    and cuts it into batches of ``batch_size_unlabeled`` (incomplete batches are dropped, so all
    ranks run the same number of steps). The labeled stream is a concatenation of fresh
    permutations of the labeled indices, long enough for the epoch, shared out between the ranks
    the same way, so it cycles when it is the smaller stream. With ``partner_indices`` every batch
    also gets the indices of a CutMix partner batch, from a second shuffled pass over the
    unlabeled samples dealt out the same way.

    Args:
        num_labeled: size of the labeled dataset.
        num_unlabeled: size of the unlabeled dataset.
        batch_size_labeled: labeled samples per batch and rank.
        batch_size_unlabeled: unlabeled samples per batch and rank.
        num_replicas: number of ranks (default: the process group's, else 1).
        rank: this rank (default: the process group's, else 0).
        shuffle: shuffle both streams every epoch.
        seed: base seed, identical on all ranks.
        partner_indices: yield ``(labeled, unlabeled, partner)`` instead of ``(labeled, unlabeled)``.
    """

    def __init__(
        self,
        num_labeled: int,
        num_unlabeled: int,
        batch_size_labeled: int,
        batch_size_unlabeled: int,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        partner_indices: bool = False,
    ) -> None:
        initialized = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if initialized else 1
        if rank is None:
            rank = dist.get_rank() if initialized else 0
        if num_labeled < 1 or num_unlabeled < 1:
            raise S5GeoError(
                f"semi-supervised training needs both streams: {num_labeled} labeled and "
                f"{num_unlabeled} unlabeled samples found"
            )
        if batch_size_labeled < 1 or batch_size_unlabeled < 1:
            raise S5GeoError("batch sizes must be at least 1")
        super().__init__(
            range(num_unlabeled),  # type: ignore[arg-type]
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=True,
        )
        self.num_labeled = num_labeled
        self.num_unlabeled = num_unlabeled
        self.batch_size_labeled = batch_size_labeled
        self.batch_size_unlabeled = batch_size_unlabeled
        self.partner_indices = partner_indices
        self.num_batches = (num_unlabeled // num_replicas) // batch_size_unlabeled
        if self.num_batches == 0:
            raise S5GeoError(
                f"{num_unlabeled} unlabeled samples over {num_replicas} rank(s) do not fill one "
                f"batch of {batch_size_unlabeled}"
            )

    def __len__(self) -> int:
        return self.num_batches

    def _order(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)

    def __iter__(self) -> Iterator[BatchSpec]:  # type: ignore[override]
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        world, rank = self.num_replicas, self.rank
        b_l, b_u, n = self.batch_size_labeled, self.batch_size_unlabeled, self.num_batches

        unlabeled = self._order(self.num_unlabeled, generator)
        mine_u = unlabeled[rank::world][: n * b_u].view(n, b_u)

        need = n * b_l * world
        cycles = math.ceil(need / self.num_labeled)
        labeled = torch.cat([self._order(self.num_labeled, generator) for _ in range(cycles)])
        mine_l = labeled[:need][rank::world].view(n, b_l)

        if not self.partner_indices:
            for row_l, row_u in zip(mine_l.tolist(), mine_u.tolist(), strict=True):
                yield tuple(row_l), tuple(row_u)
            return
        partner = self._order(self.num_unlabeled, generator)
        mine_p = partner[rank::world][: n * b_u].view(n, b_u)
        for row_l, row_u, row_p in zip(mine_l.tolist(), mine_u.tolist(), mine_p.tolist(), strict=True):
            yield tuple(row_l), tuple(row_u), tuple(row_p)


class PairedBatchDataset(Dataset):
    """Map a batch specification to a collated ``{"labeled": ..., "unlabeled": ...}`` batch.

    With ``partner_batch`` the batch also holds ``"unlabeled_mix"``, the CutMix partners:
    ``"same_images"`` collates the unlabeled samples a second time (independent random views of
    the same images, read once), ``"other_images"`` collates the third index tuple of the spec.
    """

    def __init__(
        self,
        labeled: Dataset,
        unlabeled: Dataset,
        collate_labeled: Collate,
        collate_unlabeled: Collate,
        partner_batch: PartnerBatch | None = None,
    ) -> None:
        self.labeled = labeled
        self.unlabeled = unlabeled
        self.collate_labeled = collate_labeled
        self.collate_unlabeled = collate_unlabeled
        self.partner_batch = partner_batch

    def __len__(self) -> int:
        return len(self.unlabeled)  # type: ignore[arg-type]

    def __getitem__(self, spec: BatchSpec) -> dict[str, dict[str, Any]]:
        labeled_ids, unlabeled_ids = spec[0], spec[1]
        unlabeled = [self.unlabeled[i] for i in unlabeled_ids]
        batch = {
            "labeled": self.collate_labeled([self.labeled[i] for i in labeled_ids]),
            "unlabeled": self.collate_unlabeled(unlabeled),
        }
        if self.partner_batch == "same_images":
            batch["unlabeled_mix"] = self.collate_unlabeled(unlabeled)
        elif self.partner_batch == "other_images":
            batch["unlabeled_mix"] = self.collate_unlabeled([self.unlabeled[i] for i in spec[2]])
        return batch


def _whole_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Collate function for loaders whose dataset already returns batches."""
    return batch


class SemiSupervisedDataModule(ScaledDataModule):
    """Pair any labeled dataset with any unlabeled dataset.

    Each training batch is ``{"labeled": {image, mask: B_l}, "unlabeled": {image, padding: B_u},
    "unlabeled_mix": {image, padding: B_u}}`` (the unlabeled streams carry a boolean ``padding``,
    True on padding, instead of masks; ``unlabeled_mix`` only with ``partner_batch``). The weak
    view is made as in the reference by default (``crop_order="rescale_then_crop"``): the loader
    rescales each whole image by its own factor in ``rescale`` and crops ``crop_size`` from it
    (padding only where the rescaled image is smaller), and on the device the streams are scaled
    to [0, 1] and flipped/rotated by :class:`~s5geo.transforms.WeakView`.
    ``crop_order="crop_then_rescale"`` crops/pads to ``loader_crop_size`` in the loader and rescales
    that crop on the device, which pads whenever a factor below 1 shrinks the crop under
    ``crop_size``. The epoch is ``len(unlabeled) // (world_size * B_u)`` batches; the labeled stream
    cycles. Under DDP every rank sees different samples (see :class:`PairedBatchSampler`).

    Datasets may be objects or ``{"class_path": ..., "init_args": ...}`` mappings (what
    LightningCLI passes for a ``Dataset``-typed argument is already an object).

    Args:
        labeled: labeled training dataset (samples with ``image`` and ``mask``).
        unlabeled: unlabeled training dataset (any ``mask`` in it is ignored).
        val: validation dataset.
        test: test dataset.
        batch_size_labeled: labeled samples per batch and device.
        batch_size_unlabeled: unlabeled samples per batch and device.
        rescale: range of the weak view's rescale factor.
        hflip: weak-view horizontal flips.
        vflip: weak-view vertical flips.
        rotate: weak-view rotations by multiples of 90 degrees.
        seed: base seed of the sampling order (per epoch: ``seed + epoch``).
        crop_order: ``"rescale_then_crop"`` (the reference, in the loader) or
            ``"crop_then_rescale"`` (``loader_crop_size`` crops, rescaled on the device).
        partner_batch: the CutMix partner stream ``unlabeled_mix`` of FixMatch/UniMatch
            (``cutmix_partner="loader"``): ``"same_images"``, the batch's unlabeled images again
            under independent weak views (the reference's second loader: under DDP its sampler
            repeats the first one's order); ``"other_images"``, a second shuffled pass over the
            unlabeled set (the reference on one GPU without DDP); None, no partner stream (for
            ``cutmix_partner="flip"``).
        **kwargs: :class:`~s5geo.datamodules.base.ScaledDataModule` options (``crop_size``: side
            of the weak views, ``num_workers``, ``scale``, ``loader_crop_size`` (used by
            ``crop_then_rescale``), ``classes``, ...; classes and colours default to the labeled
            dataset's).
    """

    def __init__(
        self,
        labeled: Dataset | Mapping[str, Any],
        unlabeled: Dataset | Mapping[str, Any],
        val: Dataset | Mapping[str, Any] | None = None,
        test: Dataset | Mapping[str, Any] | None = None,
        batch_size_labeled: int = 12,
        batch_size_unlabeled: int = 12,
        *,
        rescale: tuple[float, float] = (0.5, 2.0),
        hflip: bool = True,
        vflip: bool = True,
        rotate: bool = False,
        seed: int = 0,
        crop_order: CropOrder = "rescale_then_crop",
        partner_batch: PartnerBatch | None = "same_images",
        **kwargs: Any,
    ) -> None:
        if partner_batch not in ("same_images", "other_images", None):
            raise S5GeoError(
                f"partner_batch must be 'same_images', 'other_images' or None, got {partner_batch!r}"
            )
        super().__init__(**kwargs)
        self._specs = {"labeled": labeled, "unlabeled": unlabeled, "val": val, "test": test}
        self.labeled_dataset: Dataset | None = None
        self.unlabeled_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None
        self.batch_size_labeled = batch_size_labeled
        self.batch_size_unlabeled = batch_size_unlabeled
        self.seed = seed
        self.partner_batch = partner_batch
        device_scale = self._set_crop_order(crop_order, rescale)
        self.train_augmentation = WeakView(
            self.crop_size, device_scale, hflip=hflip, vflip=vflip, rotate=rotate
        )

    def _dataset(self, name: str) -> Dataset | None:
        attr = f"{name}_dataset"
        if getattr(self, attr) is None and self._specs[name] is not None:
            setattr(self, attr, instantiate_dataset(self._specs[name]))  # type: ignore[arg-type]
        return getattr(self, attr)

    def _eval_dataset(self, name: str) -> Dataset | None:
        return self._dataset("test" if name == "predict" else name)

    def setup(self, stage: str) -> None:
        """Build (or take) the datasets a stage needs."""
        if stage == "fit":
            self._check_bands(self._dataset("labeled"), self._dataset("unlabeled"))
        if stage in ("fit", "validate"):
            self._dataset("val")
        if stage in ("test", "predict"):
            self._dataset("test")

    @staticmethod
    def _check_bands(labeled: Dataset | None, unlabeled: Dataset | None) -> None:
        """Refuse labeled and unlabeled data whose images have different band counts."""

        def describe(dataset: Dataset) -> tuple[int, str]:
            root = getattr(dataset, "root", None)
            where = f" in {root}" if root is not None else ""
            return int(dataset[0]["image"].shape[0]), f"{type(dataset).__name__}{where}"

        try:
            if labeled is None or unlabeled is None or not len(labeled) or not len(unlabeled):  # type: ignore[arg-type]
                return
        except TypeError:  # datasets without a length are not checked
            return
        (bands_l, name_l), (bands_u, name_u) = describe(labeled), describe(unlabeled)
        if bands_l != bands_u:
            raise S5GeoError(
                f"labeled images have {bands_l} bands ({name_l}) but unlabeled images have {bands_u} "
                f"({name_u}); both streams must have the same bands in the same order"
            )

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is not None:
            return trainer.world_size, trainer.global_rank
        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size(), dist.get_rank()
        return 1, 0

    def train_sampler(self, num_replicas: int | None = None, rank: int | None = None) -> PairedBatchSampler:
        """The paired, distributed batch sampler of the training loader."""
        labeled, unlabeled = self._dataset("labeled"), self._dataset("unlabeled")
        if labeled is None or unlabeled is None:
            raise S5GeoError("SemiSupervisedDataModule needs a labeled and an unlabeled dataset")
        world, this_rank = self._world()
        return PairedBatchSampler(
            len(labeled),  # type: ignore[arg-type]
            len(unlabeled),  # type: ignore[arg-type]
            self.batch_size_labeled,
            self.batch_size_unlabeled,
            num_replicas=world if num_replicas is None else num_replicas,
            rank=this_rank if rank is None else rank,
            seed=self.seed,
            partner_indices=self.partner_batch == "other_images",
        )

    def _collates(self) -> tuple[Collate, Collate]:
        """Loader collates of the labeled and the unlabeled streams for ``crop_order``."""
        return self._train_collate(), self._train_collate(mark_padding=True)

    def train_dataloader(self, num_replicas: int | None = None, rank: int | None = None) -> DataLoader:
        """Loader of paired batches; its sampler is already distributed (see module docstring)."""
        sampler = self.train_sampler(num_replicas, rank)
        dataset = PairedBatchDataset(
            self._dataset("labeled"),  # type: ignore[arg-type]
            self._dataset("unlabeled"),  # type: ignore[arg-type]
            *self._collates(),
            partner_batch=self.partner_batch,
        )
        return self._loader(dataset, batch_size=None, sampler=sampler, collate_fn=_whole_batch)
