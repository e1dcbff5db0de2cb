"""Training views as in the S5 code: the whole image rescaled, then cropped; CutMix partner batches."""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from _tiny import SplitTinyDataset, TinyDataset

from s5geo.datamodules import S5DataModule, SemiSupervisedDataModule
from s5geo.datamodules._collate import CropPadCollate, RescaleCropCollate
from s5geo.datamodules.semi_supervised import PairedBatchSampler
from s5geo.errors import S5GeoError


def _labeled(n: int, side: int) -> list[dict]:
    g = torch.Generator().manual_seed(side)
    samples = []
    for index in range(n):
        mask = torch.randint(0, 3, (side, side), generator=g)
        image = torch.stack([mask.float() * 10 + 5, torch.rand(side, side, generator=g) * 200 + 10])
        samples.append({"image": image, "mask": mask, "index": index})
    return samples


def _padded_fraction(batch: dict) -> float:
    return float((batch["mask"] == 255).float().mean())


def test_rescale_then_crop_never_pads_images_at_least_the_crop_over_the_lowest_scale() -> None:
    torch.manual_seed(0)
    samples = _labeled(8, 64)
    new = [RescaleCropCollate(32, (0.5, 2.0))(samples) for _ in range(20)]
    assert all(b["image"].shape == (8, 2, 32, 32) and b["mask"].dtype == torch.int64 for b in new)
    assert all(_padded_fraction(b) == 0 for b in new)
    assert torch.equal(new[0]["index"], torch.arange(8))
    # The other order pads whenever a factor below 1 shrinks the 32 px crop.
    weak = SemiSupervisedDataModule(TinyDataset(2), TinyDataset(2, labeled=False), crop_size=32)
    assert weak.train_augmentation.scale == (1.0, 1.0)
    old = [CropPadCollate(32)(samples) for _ in range(20)]
    old_views = [
        SemiSupervisedDataModule(
            TinyDataset(2), TinyDataset(2, labeled=False), crop_size=32, crop_order="crop_then_rescale"
        ).train_augmentation(b["image"], b["mask"])[1]
        for b in old
    ]
    assert sum(float((m == 255).float().mean()) for m in old_views) / len(old_views) > 0.05


def test_rescale_then_crop_geometry_matches_a_resize_of_the_whole_image() -> None:
    torch.manual_seed(1)
    (sample,) = _labeled(1, 16)
    big_mask = sample["mask"].repeat_interleave(2, 0).repeat_interleave(2, 1)
    big_image = F.interpolate(sample["image"][None], size=(32, 32), mode="bilinear", align_corners=False)[0]
    for _ in range(10):
        view = RescaleCropCollate(24, (2.0, 2.0))([sample])
        found = [
            (y, x)
            for y in range(9)
            for x in range(9)
            if torch.equal(big_mask[y : y + 24, x : x + 24], view["mask"][0])
            and torch.allclose(big_image[:, y : y + 24, x : x + 24], view["image"][0], atol=1e-3)
        ]
        assert found


def test_small_images_are_padded_and_marked_on_the_unlabeled_stream() -> None:
    torch.manual_seed(2)
    samples = [{"image": torch.full((3, 10, 14), 7.0)} for _ in range(6)]
    batch = RescaleCropCollate(16, (0.5, 1.0), mark_padding=True)(samples)
    assert "mask" not in batch and batch["padding"].dtype == torch.bool
    assert batch["padding"].all(0)[15].all() and batch["padding"].all(0)[:, 15].all()
    assert torch.equal(batch["padding"], batch["image"].amax(1) == 0)
    with pytest.raises(ValueError, match="scale"):
        RescaleCropCollate(16, (2.0, 1.0))


def _module(**kwargs) -> SemiSupervisedDataModule:
    options = {"batch_size_labeled": 2, "batch_size_unlabeled": 4, "crop_size": 16, **kwargs}
    return SemiSupervisedDataModule(
        TinyDataset(5, sizes=[24, 32]), TinyDataset(16, labeled=False, sizes=[32, 40], offset=1000), **options
    )


def test_partner_batch_of_the_same_images_under_independent_views() -> None:
    dm = _module()
    dm.setup("fit")
    torch.manual_seed(0)
    batches = list(dm.train_dataloader())
    assert all(set(b) == {"labeled", "unlabeled", "unlabeled_mix"} for b in batches)
    for raw in batches:
        unl, mix = raw["unlabeled"], raw["unlabeled_mix"]
        assert torch.equal(unl["index"], mix["index"]) and mix["padding"].dtype == torch.bool
        assert not torch.equal(unl["image"], mix["image"])
        assert not unl["padding"].any() and not mix["padding"].any()  # 32 px and more, 16 px views
    batch = dm.transform_batch(batches[0], "train")
    assert (
        batch["unlabeled_mix"]["image"].shape == (4, 3, 16, 16) and batch["unlabeled_mix"]["image"].max() <= 1
    )


def test_partner_batch_of_other_images_and_none() -> None:
    dm = _module(partner_batch="other_images")
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    partners = [i for b in batches for i in b["unlabeled_mix"]["index"].tolist()]
    assert sorted(partners) == list(range(1000, 1016))  # a second pass over the unlabeled set
    assert any(not torch.equal(b["unlabeled"]["index"], b["unlabeled_mix"]["index"]) for b in batches)
    dm = _module(partner_batch=None)
    dm.setup("fit")
    assert all(set(b) == {"labeled", "unlabeled"} for b in dm.train_dataloader())
    with pytest.raises(S5GeoError, match="partner_batch"):
        _module(partner_batch="flip")
    with pytest.raises(S5GeoError, match="crop_order"):
        _module(crop_order="crop")


def test_partner_indices_stay_disjoint_across_ranks_and_keep_the_other_streams() -> None:
    plain = list(PairedBatchSampler(7, 36, 2, 3, num_replicas=2, rank=0))
    with_partner = list(PairedBatchSampler(7, 36, 2, 3, num_replicas=2, rank=0, partner_indices=True))
    assert [spec[:2] for spec in with_partner] == plain
    seen = [
        i
        for rank in range(2)
        for spec in PairedBatchSampler(7, 36, 2, 3, num_replicas=2, rank=rank, partner_indices=True)
        for i in spec[2]
    ]
    assert len(seen) == len(set(seen)) == 36


def test_supervised_datamodule_rescales_in_the_loader_by_default() -> None:
    dm = S5DataModule(SplitTinyDataset, batch_size=2, crop_size=16, sizes=[40, 48])
    assert dm.train_augmentation.geometry.scale == (1.0, 1.0)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader.collate_fn, RescaleCropCollate) and loader.collate_fn.scale == (0.5, 2.0)
    torch.manual_seed(0)
    for raw in loader:
        assert raw["image"].shape == (2, 3, 16, 16)
        batch = dm.transform_batch(raw, "train")
        # 40 px and more at a factor of 0.5 or more: no padding, only the dataset's own 255 row
        assert ((batch["mask"] == 255).float().mean(dim=(1, 2)) <= 0.25).all()
    old = S5DataModule(
        SplitTinyDataset, batch_size=2, crop_size=16, crop_order="crop_then_rescale", rescale=(0.5, 1.0)
    )
    assert old.train_augmentation.geometry.scale == (0.5, 1.0)
    old.setup("fit")
    assert isinstance(old.train_dataloader().collate_fn, CropPadCollate)
    plain = S5DataModule(SplitTinyDataset, batch_size=2, crop_size=16, augment=False)
    plain.setup("fit")
    assert plain.train_augmentation is None and isinstance(
        plain.train_dataloader().collate_fn, CropPadCollate
    )
