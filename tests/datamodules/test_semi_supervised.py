import json
from collections import Counter

import pytest
import torch
from _tiny import Recorder, TinyDataset
from trainer_helpers import quiet_trainer

from s5geo.datamodules import SemiSupervisedDataModule
from s5geo.datamodules.semi_supervised import PairedBatchSampler
from s5geo.errors import S5GeoError


def _module(n_l: int = 5, n_u: int = 24, sizes=(16, 24), **kwargs) -> SemiSupervisedDataModule:
    defaults = dict(batch_size_labeled=2, batch_size_unlabeled=4, crop_size=16)
    defaults.update(kwargs)
    return SemiSupervisedDataModule(
        TinyDataset(n_l, sizes=[12, 20]),
        TinyDataset(n_u, labeled=False, sizes=list(sizes), offset=1000),
        val=TinyDataset(3, sizes=[10, 14]),
        **defaults,
    )


def test_batch_composition_after_transfer_crop_then_rescale() -> None:
    dm = _module(crop_order="crop_then_rescale", partner_batch=None)
    dm.setup("fit")
    torch.manual_seed(0)
    raw = next(iter(dm.train_dataloader()))
    assert set(raw) == {"labeled", "unlabeled"}
    assert raw["labeled"]["image"].shape == (2, 3, 16, 16)
    assert raw["unlabeled"]["image"].shape == (4, 3, 16, 16)
    # Loader-side: unlabeled images are at least 16 px, so nothing is padded yet.
    assert raw["unlabeled"]["padding"].dtype == torch.bool and not raw["unlabeled"]["padding"].any()
    padded = 0
    for other in dm.train_dataloader():
        stream = other["labeled"]
        for index, image, mask in zip(stream["index"], stream["image"], stream["mask"], strict=True):
            if index % 2 == 0:  # a 12 px sample, padded right/bottom to 16
                assert (mask[12:] == 255).all() and (mask[:, 12:] == 255).all()
                assert (image[:, 12:] == 0).all() and (image[:, :, 12:] == 0).all()
                padded += 1
    assert padded > 0
    batch = dm.transform_batch(raw, "train")
    lab, unl = batch["labeled"], batch["unlabeled"]
    assert lab["image"].shape == (2, 3, 16, 16) and lab["mask"].shape == (2, 16, 16)
    assert unl["image"].shape == (4, 3, 16, 16) and unl["padding"].shape == (4, 16, 16)
    assert lab["mask"].dtype == torch.int64 and unl["padding"].dtype == torch.bool
    assert "mask" not in unl
    for stream in (lab, unl):
        assert stream["image"].min() >= 0 and stream["image"].max() <= 1
    assert set(lab["mask"].unique().tolist()) <= {0, 1, 2, 255}
    # Padding in the weak view is image 0 / padding True.
    assert unl["padding"].any()
    assert (unl["image"].amax(1)[unl["padding"]] == 0).all()
    assert (unl["image"].amin(1)[~unl["padding"]] > 0).all()


@pytest.mark.parametrize("crop_order", ["rescale_then_crop", "crop_then_rescale"])
def test_loader_pads_small_unlabeled_images_with_marker(crop_order: str) -> None:
    dm = _module(sizes=(10, 24), crop_order=crop_order)
    dm.setup("fit")
    for raw in dm.train_dataloader():
        for image, padding in zip(raw["unlabeled"]["image"], raw["unlabeled"]["padding"], strict=True):
            real = image.amin(0) > 0
            assert torch.equal(~padding, real)
            assert padding.dtype == torch.bool


def test_eval_batches_are_whole_and_scaled() -> None:
    dm = _module(scale=[255.0, 255.0, 255.0])
    dm.setup("fit")
    sizes = []
    for raw in dm.val_dataloader():
        batch = dm.transform_batch(raw, "eval")
        sizes.append(batch["image"].shape[-1])
        assert batch["image"].max() <= 1 and batch["mask"].shape[-1] == batch["image"].shape[-1]
    assert sizes == [10, 14, 10]
    assert dm.classes == ["a", "b", "c"] and dm.in_channels == 3 and len(dm.colors) == 3


def test_epoch_length_defined_by_unlabeled_and_labeled_cycles() -> None:
    dm = _module(n_l=5, n_u=24)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert len(loader) == 24 // 4
    batches = list(loader)
    assert len(batches) == 6
    unlabeled = [i for b in batches for i in b["unlabeled"]["index"].tolist()]
    labeled = [i for b in batches for i in b["labeled"]["index"].tolist()]
    assert sorted(unlabeled) == list(range(1000, 1024))  # each unlabeled sample once per epoch
    counts = Counter(labeled)
    assert len(labeled) == 12 and set(counts) == set(range(5))  # 5 labeled samples cycle
    assert max(counts.values()) - min(counts.values()) <= 1


def test_sampler_disjoint_across_ranks_and_reshuffled_per_epoch() -> None:
    for world in (2, 3):
        per_rank = [PairedBatchSampler(7, 36, 2, 3, num_replicas=world, rank=r) for r in range(world)]
        seen_u, seen_l = [], []
        for sampler in per_rank:
            sampler.set_epoch(1)
            specs = list(sampler)
            assert len(specs) == len(sampler) == 36 // world // 3
            seen_u.append([i for _, u in specs for i in u])
            seen_l.append([i for lab, _ in specs for i in lab])
        flat_u = [i for s in seen_u for i in s]
        assert len(flat_u) == len(set(flat_u)) == 36
        # Labeled stream: within each full pass over the 7 samples, no two ranks share an index.
        flat_l = [i for s in seen_l for i in s]
        assert Counter(flat_l).most_common(1)[0][1] <= -(-len(flat_l) // 7)
    s = PairedBatchSampler(7, 36, 2, 3)
    s.set_epoch(0)
    first = list(s)
    s.set_epoch(1)
    assert list(s) != first
    s.set_epoch(0)
    assert list(s) == first


def test_sampler_errors() -> None:
    with pytest.raises(S5GeoError):
        PairedBatchSampler(0, 10, 2, 2)
    with pytest.raises(S5GeoError):
        PairedBatchSampler(3, 3, 2, 4)


def test_dataset_specs_are_instantiated() -> None:
    dm = SemiSupervisedDataModule(
        {"class_path": "_tiny.TinyDataset", "init_args": {"n": 3}},
        {"class_path": "_tiny.TinyDataset", "init_args": {"n": 8, "labeled": False}},
        batch_size_labeled=1,
        batch_size_unlabeled=2,
        crop_size=16,
    )
    dm.setup("fit")
    assert isinstance(dm.labeled_dataset, TinyDataset) and len(dm.unlabeled_dataset) == 8
    assert len(dm.train_dataloader()) == 4
    with pytest.raises(S5GeoError):
        SemiSupervisedDataModule({"init_args": {}}, TinyDataset(2)).setup("fit")


@pytest.mark.ddp
def test_ddp_two_ranks_see_disjoint_samples(tmp_path) -> None:
    n_l, n_u, b_l, b_u = 6, 16, 2, 4
    dm = SemiSupervisedDataModule(
        TinyDataset(n_l, size=16),
        TinyDataset(n_u, labeled=False, size=16, offset=1000),
        batch_size_labeled=b_l,
        batch_size_unlabeled=b_u,
        crop_size=16,
    )
    trainer = quiet_trainer(devices=2, strategy="ddp_spawn", max_epochs=2)
    trainer.fit(Recorder(str(tmp_path)), datamodule=dm)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for epoch in (0, 1):
        steps = [[s for s in rank if s["epoch"] == epoch] for rank in ranks]
        assert [len(s) for s in steps] == [n_u // 2 // b_u] * 2
        unl = [[i for s in rank for i in s["unlabeled"]] for rank in steps]
        lab = [[i for s in rank for i in s["labeled"]] for rank in steps]
        assert not set(unl[0]) & set(unl[1])
        assert sorted(unl[0] + unl[1]) == list(range(1000, 1000 + n_u))
        # 2 ranks x 2 steps x 2 labeled = 8 draws from 6 samples: the first pass covers all 6.
        assert set(lab[0] + lab[1]) == set(range(n_l))
        for rank in steps:
            for s in rank:
                assert s["shape_l"] == [b_l, 3, 16, 16] and s["shape_u"] == [b_u, 3, 16, 16]
                assert s["max"] <= 1.0
    orders = [[i for s in ranks[0] if s["epoch"] == e for i in s["unlabeled"]] for e in (0, 1)]
    assert orders[0] != orders[1]


def test_setup_refuses_different_band_counts() -> None:
    dm = SemiSupervisedDataModule(TinyDataset(4, bands=4), TinyDataset(8, labeled=False, bands=3))
    with pytest.raises(S5GeoError, match=r"labeled images have 4 bands .*unlabeled images have 3"):
        dm.setup("fit")
    SemiSupervisedDataModule(TinyDataset(4, bands=4), TinyDataset(8, labeled=False, bands=4)).setup("fit")
