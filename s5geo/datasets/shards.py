"""Segmentation samples streamed from LitData shards written by ``s5geo corpus shard``.

No directory walk: the sample count and the chunk list come from the shards' ``index.json``. Under
DDP each rank (and each loader worker) reads its own chunks; use LitData's ``StreamingDataLoader``
to save and restore the position within an epoch (Lightning stores it in checkpoints).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s5geo.datasets._base import Transform, check_index_mask
from s5geo.datasets.millionseg import MillionSeg
from s5geo.errors import S5GeoError
from s5geo.imagefile import decode_image_bytes

try:
    from litdata import StreamingDataset
except ImportError:  # optional extra 'corpus'
    StreamingDataset = None  # type: ignore[assignment,misc]

#: File describing the shards (beside LitData's index.json).
INFO_FILE = "s5geo.json"


def _base() -> type:
    if StreamingDataset is None:
        raise S5GeoError("reading shards needs LitData: pip install 's5geo[corpus]' (or litdata)")
    return StreamingDataset


class ShardedSegmentation(StreamingDataset or object):  # type: ignore[misc]
    """Samples ``{"image", "mask"?, "name"}`` streamed from a shard folder or object-store URL.

    Images are raw pixel values (float32, as every s5geo dataset); masks (int64, 255 = ignore) are
    returned for samples that have one, and dropped with ``with_masks=False`` (the unlabeled
    stream of S5 pre-training).

    Example:
        >>> ds = ShardedSegmentation("shards/pseudo_labeled", shuffle=True)
        >>> loader = litdata.StreamingDataLoader(ds, batch_size=8, num_workers=4)
    """

    classes = MillionSeg.classes
    colors = MillionSeg.colors

    def __init__(
        self,
        input_dir: str | os.PathLike[str],
        *,
        shuffle: bool = False,
        drop_last: bool | None = None,
        seed: int = 42,
        with_masks: bool = True,
        transforms: Transform | None = None,
        cache_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Open the shards.

        Args:
            input_dir: folder written by ``s5geo corpus shard``, or its object-store URL.
            shuffle: shuffle chunks and samples each epoch (seeded; the same on every rank).
            drop_last: drop samples so every rank gets the same number (LitData's default under DDP).
            seed: shuffle seed.
            with_masks: return masks (False: images only).
            transforms: function applied to each sample.
            cache_dir: local cache for remote shards.
            **kwargs: further ``litdata.StreamingDataset`` options.

        Raises:
            S5GeoError: if LitData is missing or the folder holds no shards.
        """
        _base()
        text = os.fspath(input_dir)
        if "://" not in text and not (Path(text) / "index.json").is_file():
            raise S5GeoError(f"{text}: no index.json; write shards with `s5geo corpus shard`")
        super().__init__(text, cache_dir=cache_dir, shuffle=shuffle, drop_last=drop_last, seed=seed, **kwargs)
        self.source = text
        self.with_masks = with_masks
        self.transforms = transforms
        info = Path(text) / INFO_FILE
        if "://" not in text and info.is_file():
            meta = json.loads(info.read_text())
            self.classes = tuple(meta.get("classes", self.classes))
            self.colors = tuple(tuple(c) for c in meta.get("colors", self.colors))

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def __getitem__(self, index: Any) -> dict[str, Any]:
        """Decode one stored sample."""
        item = super().__getitem__(index)
        name = item["name"]
        image = torch.from_numpy(decode_image_bytes(item["image"], name).astype(np.float32))
        sample: dict[str, Any] = {"image": image, "name": name, "index": int(item["index"])}
        if self.with_masks and item["mask"]:
            mask = decode_image_bytes(item["mask"], name)[0]
            mask = check_index_mask(mask, self.num_classes, f"{name} (mask in {self.source})")
            sample["mask"] = torch.from_numpy(mask.astype(np.int64))
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample
