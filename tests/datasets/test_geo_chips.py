from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader
from torchgeo.samplers import GridGeoSampler

from s5geo.datasets import GeoChips, LandsatScene, RasterLabels
from s5geo.datasets.geo_chips import has_labels
from s5geo.errors import S5GeoError

ROOT = Path(__file__).resolve().parents[1] / "data" / "nc_landsat"


def test_chips_follow_the_sampler_and_collate() -> None:
    image = LandsatScene(ROOT)
    data = image & RasterLabels(ROOT / "strata.tif")
    sampler = GridGeoSampler(data, size=16, stride=16)
    chips = GeoChips(data, sampler)
    assert len(chips) == len(list(sampler))
    first = chips[0]
    assert set(first) == {"image", "mask"}
    assert first["image"].dtype == torch.float32 and first["image"].shape[-2:] == (16, 16)
    assert first["mask"].dtype == torch.long and first["mask"].shape == (16, 16)
    # Same query, same chip as reading the GeoDataset directly.
    direct = data[chips.queries[0]]
    assert torch.equal(first["image"], direct["image"].float())
    batch = next(iter(DataLoader(chips, batch_size=2)))
    assert batch["image"].shape[0] == 2


def test_keep_if_drops_unlabelled_chips() -> None:
    image = LandsatScene(ROOT)
    data = image & RasterLabels(ROOT / "landsat96_labelled_pixels.tif")
    sampler = GridGeoSampler(data, size=8, stride=8)
    every = GeoChips(data, sampler)
    kept = GeoChips(data, sampler, keep_if=has_labels)
    assert all(has_labels(kept[i]) for i in range(len(kept)))
    assert 0 < len(kept) < len(every)
    assert len(kept) == sum(has_labels(every[i]) for i in range(len(every)))


def test_no_chips_is_an_error() -> None:
    data = LandsatScene(ROOT)
    with pytest.raises(S5GeoError, match="no usable chips"):
        GeoChips(data, [], keys=("image",))


def test_cached_chips_equal_uncached_reads() -> None:
    data = LandsatScene(ROOT) & RasterLabels(ROOT / "landsat96_labelled_pixels.tif")
    sampler = GridGeoSampler(data, size=8, stride=8)
    lazy = GeoChips(data, sampler, keep_if=has_labels)
    cached = GeoChips(data, sampler, keep_if=has_labels, cache=True)
    assert cached.queries == lazy.queries
    for i in range(len(lazy)):
        assert torch.equal(cached[i]["image"], lazy[i]["image"])
        assert torch.equal(cached[i]["mask"], lazy[i]["mask"])
    cached[0]["image"] = None  # callers may modify a sample without touching the cache
    assert cached[0]["image"] is not None
