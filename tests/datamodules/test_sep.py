from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from s5geo.datamodules import SEPDataModule
from s5geo.datamodules._collate import CropPadCollate, RescaleCropCollate
from s5geo.datasets import MillionSeg
from s5geo.errors import S5GeoError
from s5geo.tasks import SupervisedSegmentation

DATA = Path(__file__).resolve().parents[1] / "data"
PUBLISHED = DATA / "millionseg" / "published"


def _module(**kwargs) -> SEPDataModule:
    return SEPDataModule(
        root=PUBLISHED, val_root=DATA / "isaid", val_patch_size=32, batch_size=2, crop_size=32, **kwargs
    )


def test_pseudo_labeled_folders_and_isaid_val() -> None:
    dm = _module()
    assert len(dm.classes) == 16
    dm.setup("fit")
    assert len(dm.train_dataset) == len(MillionSeg(PUBLISHED, part="pseudo_labeled")) == 3
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["mask"].shape == (2, 32, 32)
    out = dm.transform_batch(batch, "train")
    assert out["image"].dtype == torch.float32 and out["image"].max() <= 1.0
    assert len(dm.val_dataloader()) == len(dm.val_dataset) > 0
    assert dm.in_channels == 3


def test_shards_train_and_checkpoint_loader_state(tmp_path) -> None:
    pytest.importorskip("litdata")
    from s5geo.corpus.shard import manifest_samples, write_shards

    shards = tmp_path / "shards"
    write_shards(manifest_samples(PUBLISHED, None, "pseudo_labeled"), shards, progress=False)
    dm = _module(shards=str(shards), augment=False)
    task = SupervisedSegmentation(
        model="upernet_resnet18", model_kwargs={"channels": 8}, num_classes=16, lr=1e-3, excluded_classes=[0]
    )
    checkpoints = tmp_path / "ckpt"
    trainer = Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        val_check_interval=1,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        callbacks=[ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0)],
    )
    trainer.fit(task, datamodule=dm)
    assert trainer.global_step == 1 and "val/mIoU" in trainer.callback_metrics
    # the streaming loader's position is in the checkpoint: a resumed run continues the epoch
    state = torch.load(checkpoints / "last.ckpt", weights_only=False)["loops"]["fit_loop"]["state_dict"]
    loaders = state["combined_loader"]
    assert loaders and loaders[0]["num_samples_yielded"] == 2


def test_training_views_are_rescaled_then_cropped_in_the_loader() -> None:
    dm = _module()
    assert dm.crop_order == "rescale_then_crop" and dm.train_augmentation.geometry.scale == (1.0, 1.0)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader.collate_fn, RescaleCropCollate) and loader.collate_fn.scale == (0.5, 2.0)
    old = _module(crop_order="crop_then_rescale", rescale=(0.5, 1.0))
    assert old.train_augmentation.geometry.scale == (0.5, 1.0)
    old.setup("fit")
    assert isinstance(old.train_dataloader().collate_fn, CropPadCollate)
    with pytest.raises(S5GeoError, match="crop_order"):
        _module(crop_order="crop")
