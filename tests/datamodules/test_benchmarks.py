import shutil
from pathlib import Path

import pytest
import torch
from _tiny import ShapeChecker, SplitTinyDataset
from trainer_helpers import quiet_trainer

from s5geo.datamodules import (
    ISAIDDataModule,
    LoveDADataModule,
    MillionSegDataModule,
    OpenEarthMapDataModule,
    PotsdamDataModule,
    S5DataModule,
    UDD6DataModule,
    VaihingenDataModule,
    VDDDataModule,
)

DATA = Path(__file__).resolve().parents[1] / "data"
CROP = 32

pytestmark = pytest.mark.filterwarnings("ignore:.*tile\\(s\\) missing:UserWarning")

BENCHMARKS = {
    "vaihingen": (VaihingenDataModule, {"tile_size": CROP}),
    "potsdam": (PotsdamDataModule, {"tile_size": CROP}),
    "loveda": (LoveDADataModule, {}),
    "openearthmap": (OpenEarthMapDataModule, {}),
    "udd6": (UDD6DataModule, {}),
    "vdd": (VDDDataModule, {}),
    "isaid": (ISAIDDataModule, {"patch_size": CROP, "eval_patch_size": None}),
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Some datasets extract release archives on first use: work on a copy.
    root = tmp_path_factory.mktemp("data")
    for name in [*BENCHMARKS, "millionseg"]:
        shutil.copytree(DATA / name, root / name, ignore=shutil.ignore_patterns("*.py"))
    return root


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_datamodule_loads_fake_release(name: str, data_root: Path) -> None:
    cls, extra = BENCHMARKS[name]
    dm = cls(str(data_root / name), batch_size=2, crop_size=CROP, **extra)
    dm.setup("fit")
    num_classes = len(dm.classes)
    assert num_classes == len(dm.train_dataset.classes) and len(dm.colors) == num_classes
    assert dm.in_channels == 3
    loader = dm.train_dataloader()
    assert len(loader) == len(dm.train_dataset) // 2
    torch.manual_seed(0)
    batch = dm.transform_batch(next(iter(loader)), "train")
    assert batch["image"].shape == (2, 3, CROP, CROP) and batch["mask"].shape == (2, CROP, CROP)
    assert batch["image"].min() >= 0 and batch["image"].max() <= 1
    assert batch["mask"].dtype == torch.int64
    assert set(batch["mask"].unique().tolist()) <= set(range(num_classes)) | {255}
    sample = dm.val_dataset[0]
    val = dm.transform_batch(next(iter(dm.val_dataloader())), "eval")
    assert val["image"].shape == (1, *sample["image"].shape)  # whole tile, batch 1
    assert torch.allclose(val["image"][0], sample["image"] / 255)
    assert torch.equal(val["mask"][0], sample["mask"])
    dm.setup("test")
    assert len(dm.test_dataloader()) == len(dm.test_dataset)


def test_millionseg_pretraining_batch(data_root: Path) -> None:
    dm = MillionSegDataModule(
        str(data_root / "millionseg"),
        batch_size_labeled=1,
        batch_size_unlabeled=2,
        crop_size=CROP,
        val_root=str(data_root / "isaid"),
        val_patch_size=None,
    )
    dm.setup("fit")
    assert len(dm.classes) == 16 and dm.classes[0] == "background"
    loader = dm.train_dataloader()
    assert len(loader) == len(dm.unlabeled_dataset) // 2
    batch = dm.transform_batch(next(iter(loader)), "train")
    assert batch["labeled"]["image"].shape == (1, 3, CROP, CROP)
    assert batch["unlabeled"]["image"].shape == (2, 3, CROP, CROP)
    assert set(batch["labeled"]["mask"].unique().tolist()) <= set(range(16)) | {255}
    assert batch["unlabeled"]["padding"].dtype == torch.bool
    assert len(dm.val_dataloader()) == len(dm.val_dataset) > 0


def test_eval_batches_of_different_sizes_are_padded() -> None:
    dm = S5DataModule(SplitTinyDataset, batch_size=2, crop_size=16, val_batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))  # a 20 px and a 28 px sample
    assert batch["image"].shape == (2, 3, 28, 28)
    assert (batch["mask"][0, 20:] == 255).all() and (batch["image"][0, :, :, 20:] == 0).all()
    assert torch.equal(batch["mask"][1], dm.val_dataset[1]["mask"])


def test_per_band_scale_and_errors() -> None:
    dm = S5DataModule(SplitTinyDataset, scale=[255.0, 127.5, 1.0])
    image = torch.full((1, 3, 2, 2), 255.0)
    assert dm.scale_image(image)[0, :, 0, 0].tolist() == [1.0, 2.0, 255.0]
    with pytest.raises(Exception, match="bands"):
        dm.scale_image(torch.ones(1, 4, 2, 2))


def test_hooks_run_in_a_lightning_fit() -> None:
    dm = S5DataModule(SplitTinyDataset, batch_size=2, crop_size=16)
    model = ShapeChecker(crop_size=16, batch_size=2)
    trainer = quiet_trainer(max_epochs=1, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    assert model.calls == {"train": 3, "val": 6}


def test_datamodules_follow_the_metadata_protocol(data_root: Path) -> None:
    from s5geo.metadata import DataModuleMetadata, datamodule_metadata

    irrg = PotsdamDataModule(str(data_root / "potsdam"), bands=("IR", "R", "G"), tile_size=CROP)
    assert isinstance(irrg, DataModuleMetadata) and irrg.gsd == 0.05
    assert irrg.bands is None  # known once the dataset is opened
    irrg.setup("fit")
    assert irrg.bands == [4, 1, 2]
    assert datamodule_metadata(irrg)["bands"] == [4, 1, 2]
    vaihingen = VaihingenDataModule(str(data_root / "vaihingen"), tile_size=CROP)
    vaihingen.setup("fit")
    assert vaihingen.bands is None and vaihingen.gsd == 0.09  # the IR-R-G files, in file order
    assert isinstance(S5DataModule(SplitTinyDataset), DataModuleMetadata)
    assert S5DataModule(SplitTinyDataset).gsd is None
    assert datamodule_metadata(None) == {
        "classes": None,
        "colors": None,
        "bands": None,
        "gsd": None,
        "scale": 255.0,
        "band_names": None,
    }


def test_checkpoint_metadata_from_the_datamodule(data_root: Path) -> None:
    from s5geo.tasks import SupervisedSegmentation

    dm = PotsdamDataModule(str(data_root / "potsdam"), bands=("IR", "R", "G"), tile_size=CROP, crop_size=CROP)
    dm.setup("fit")
    task = SupervisedSegmentation(model="upernet_resnet18", model_kwargs={"channels": 8}, num_classes=5)
    task._datamodule = lambda: dm  # as under a Trainer with this datamodule
    meta = task.model_metadata()
    assert meta.bands == [4, 1, 2] and meta.gsd == 0.05
    assert meta.classes == list(dm.classes) and meta.colors == dm.colors
    assert meta.window_size == CROP
