"""Fixed chips of a TorchGeo ``GeoDataset``, as an index-based dataset.

TorchGeo datasets are indexed by spatial queries drawn from a ``GeoSampler``. Materialising the queries
once turns them into an ordinary map-style dataset, so georeferenced chips can feed any index-based
datamodule, e.g. :class:`~s5geo.datamodules.SemiSupervisedDataModule` (whose sampler handles DDP).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.utils.data import Dataset
from torchgeo.datasets import GeoDataset

from s5geo.errors import S5GeoError

Sample = dict[str, Any]


class GeoChips(Dataset):
    """The samples of ``dataset`` at the queries of ``sampler`` (drawn once, in order).

    Args:
        dataset: any TorchGeo ``GeoDataset`` (image, labels, or ``image & labels``).
        sampler: any iterable of queries, e.g. a ``RandomGeoSampler`` or ``GridGeoSampler``.
        keys: sample entries to keep (georeferencing entries such as ``crs``/``bounds`` do not
            collate into batches).
        keep_if: optional predicate; chips for which it is False are dropped (e.g. chips with
            no labelled pixel).
        transforms: function applied to each kept sample.
        cache: read every chip once, at construction, and keep it in memory (for small chip sets
            whose source is slow to query, e.g. a ``VectorDataset`` that re-reads its file per query).
    """

    def __init__(
        self,
        dataset: GeoDataset,
        sampler: Iterable[Any],
        keys: tuple[str, ...] = ("image", "mask"),
        keep_if: Callable[[Sample], bool] | None = None,
        transforms: Callable[[Sample], Sample] | None = None,
        cache: bool = False,
    ) -> None:
        self.dataset = dataset
        self.keys = keys
        self.transforms = transforms
        self.queries = list(sampler)
        self._cache: list[Sample] | None = None
        if cache or keep_if is not None:
            samples = [self._read(q) for q in self.queries]
            keep = [keep_if is None or keep_if(sample) for sample in samples]
            self.queries = [q for q, k in zip(self.queries, keep, strict=True) if k]
            if cache:
                self._cache = [sample for sample, k in zip(samples, keep, strict=True) if k]
        if not self.queries:
            raise S5GeoError(f"{type(dataset).__name__}: the sampler gave no usable chips")

    def _read(self, query: Any) -> Sample:
        sample = self.dataset[query]
        out = {key: sample[key] for key in self.keys if key in sample}
        if "mask" in out:
            mask = out["mask"]
            out["mask"] = (mask[0] if mask.ndim == 3 else mask).long()
        out["image"] = out["image"].float()
        return out

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, index: int) -> Sample:
        cached = self._cache
        sample = dict(cached[index]) if cached is not None else self._read(self.queries[index])
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample


def has_labels(sample: Sample, ignore_index: int = 255) -> bool:
    """True if the sample's mask holds at least one labelled pixel."""
    return bool(torch.any(sample["mask"] != ignore_index))
