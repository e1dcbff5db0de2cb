"""Every YAML in configs/ parses and instantiates through LightningCLI (run=False)."""

from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from s5geo.datamodules import MillionSegDataModule, MultiDatasetDataModule, S5DataModule, SEPDataModule
from s5geo.models import list_models
from s5geo.tasks import BaseSegmentationTask, FixMatch, MultiDatasetSegmentation, SupervisedSegmentation

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ALL = sorted(CONFIGS.rglob("*.yaml"))


def _cli(path: Path, *extra: str) -> LightningCLI:
    # GPU recipes are instantiated on the CPU; everything else stays as written.
    overrides = ["--trainer.accelerator", "cpu"] if "tiny" not in path.parts else []
    return LightningCLI(
        model_class=LightningModule,
        datamodule_class=LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        run=False,
        save_config_callback=None,
        args=["--config", str(path), *overrides, *extra],
    )


def _tiny_vit_h_cli() -> LightningCLI:
    """The ViT-H pre-training recipe with its network swapped for a tiny ViT."""
    return _cli(
        CONFIGS / "pretrain" / "upernet_vit_h.yaml",
        "--model.init_args.model",
        "upernet_vit_tiny",
        "--model.init_args.model_kwargs",
        "{img_size: 64}",
    )


def test_configs_exist() -> None:
    names = {p.relative_to(CONFIGS).as_posix() for p in ALL}
    for backbone in (
        "upernet_vit_b",
        "upernet_vit_l",
        "upernet_vit_h",
        "upernet_swin_t",
        "deeplabv3plus_resnet101",
    ):
        assert f"pretrain/{backbone}.yaml" in names
    for bench in ("vaihingen", "potsdam", "loveda", "openearthmap", "vdd", "udd6"):
        assert f"finetune/{bench}.yaml" in names
    assert any(n.startswith("tiny/") for n in names)
    assert "pretrain/sep_upernet_vit_b.yaml" in names and "tiny/sep_millionseg.yaml" in names


@pytest.mark.parametrize("path", ALL, ids=[p.relative_to(CONFIGS).as_posix() for p in ALL])
def test_config_instantiates(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert raw["model"]["init_args"]["model"] in list_models()
    # big networks are built on the meta device: no memory, no time
    device = "cpu" if "tiny" in path.parts else "meta"
    with torch.device(device):
        cli = _cli(path)
    task, data = cli.model, cli.datamodule
    assert isinstance(task, BaseSegmentationTask)
    assert isinstance(data, LightningDataModule)
    hp = task.hparams
    assert hp.model == raw["model"]["init_args"]["model"]
    if path.stem.startswith("mdf_"):
        _check_multi_dataset_config(path, cli)
        return
    assert task.model.classifier.out_channels == hp.num_classes
    assert len(data.classes) == hp.num_classes
    if path.parent.name == "pretrain" and path.stem.startswith("sep_"):
        # SEP: supervised pre-training on pseudo-labels, same schedule as S5
        assert type(task) is SupervisedSegmentation and isinstance(data, SEPDataModule)
        assert cli.trainer.max_steps == 120_000 and hp.weight_decay == 0.01 and hp.lr == 2e-5
        assert data.batch_size == 24 and data.crop_size == 512 and hp.excluded_classes == [0]
        assert hp.init_from == "mae_vit_b"
        assert raw["trainer"]["devices"] == 8 and raw["trainer"]["strategy"] == "ddp"
    elif path.parent.name == "pretrain":
        assert isinstance(task, FixMatch) and isinstance(data, MillionSegDataModule)
        assert cli.trainer.max_steps == 120_000
        assert hp.weight_decay == 0.01 and hp.tau == 0.95 and hp.unlabeled_weight == 1.0
        # the released code's settings; DeepLabV3+ is not in it and keeps the paper's
        released = hp.model != "deeplabv3plus_resnet101"
        assert hp.lr == (5e-5 if released else 6e-5)
        assert hp.no_weight_decay_norm_pos is not hp.model.startswith("upernet_vit")
        assert data.batch_size_labeled == data.batch_size_unlabeled
        assert data.batch_size_labeled == (6 if hp.model == "upernet_vit_h" else 12)
        assert data.crop_size == 512
        assert raw["trainer"]["devices"] == 8 and raw["trainer"]["strategy"] == "ddp"
        assert raw["trainer"]["precision"] == "16-mixed"
        assert hp.model_kwargs["grad_checkpointing"] == ("vit" in hp.model)
        assert hp.teacher_mode == "eval" and hp.cutmix_partner == "loader"
        assert hp.pseudo_label_autocast is False and task.evaluation_mode() == "whole"
        assert data.crop_order == "rescale_then_crop" and data.partner_batch == "same_images"
    if path.parent.name == "finetune":
        assert type(task) is SupervisedSegmentation and isinstance(data, S5DataModule)
        assert hp.init_from and hp.sliding_window is not None
        assert data.batch_size == 24 and data.crop_size == 512 and data.crop_order == "rescale_then_crop"
        # the released fine-tuning optimiser: weight decay 0.05 on every parameter, no layer decay
        assert hp.weight_decay == 0.05 and hp.no_weight_decay_norm_pos is False and hp.layer_decay is None
        assert raw["trainer"]["precision"] == "16-mixed"
        expected = {"vaihingen": "whole", "potsdam": "whole", "loveda": "resize", "openearthmap": "resize"}
        assert task.evaluation_mode() == expected.get(path.stem, "sliding")
        if path.stem in ("vaihingen", "potsdam"):
            assert data.eval_kwargs["tile_size"] == 512 and data.train_kwargs["stride"] == 256
        if path.stem in expected:
            assert cli.trainer.max_epochs == 100 and hp.eval_size == 512


def _check_multi_dataset_config(path: Path, cli: LightningCLI) -> None:
    """Multi-dataset fine-tuning: one head per datamodule; the released run's settings."""
    task, data = cli.model, cli.datamodule
    assert isinstance(task, MultiDatasetSegmentation) and isinstance(data, MultiDatasetDataModule)
    network = task.network
    assert network.datasets == data.names
    assert all(network.num_classes[n] == len(dm.classes) for n, dm in data.datamodules.items())
    if path.parent.name == "finetune":
        hp = task.hparams
        size = "l" if "vit_l" in path.stem else "b"
        assert hp.model == f"upernet_mdf_vit_{size}_moe" and hp.init_from == f"s4p_vit_{size}"
        assert data.names == ["vaihingen", "potsdam", "openearthmap", "loveda"]
        assert network.num_classes == {"vaihingen": 5, "potsdam": 5, "openearthmap": 9, "loveda": 7}
        assert hp.lr == 5e-5 and hp.weight_decay == 0.05 and not hp.no_weight_decay_norm_pos
        assert hp.layer_decay is None and hp.loss_reduction == "sum"
        assert hp.loss_start_epochs == {"vaihingen": 70} and cli.trainer.max_epochs == 100
        assert all(dm.batch_size == 12 and dm.crop_size == 512 for dm in data.datamodules.values())
        assert hp.model_kwargs["part_features"] == 256 and hp.sliding_window is not None


def test_tiny_config_accepts_model_override() -> None:
    cli = _tiny_vit_h_cli()
    assert cli.model.hparams.model == "upernet_vit_tiny"
    assert sum(p.numel() for p in cli.model.parameters()) < 5_000_000


def test_vit_pretrain_config_starts_from_mae_by_name(tmp_path, monkeypatch) -> None:
    from s5geo.models import build_model
    from s5geo.models.weights import get_weights

    monkeypatch.setenv("S5GEO_CACHE", str(tmp_path))
    cli = _tiny_vit_h_cli()
    task = cli.model
    assert task.hparams.init_from == "mae_vit_h"
    # A small file in MAE's key layout (lone ViT, class-token slot, decoder) under its registered name.
    torch.manual_seed(3)
    source = build_model("upernet_vit_tiny", num_classes=16, img_size=64)
    vit = {
        k.removeprefix("encoder.vit."): v
        for k, v in source.state_dict().items()
        if k.startswith("encoder.vit.")
    }
    dim = vit["pos_embed"].shape[-1]
    vit["pos_embed"] = torch.cat([torch.zeros(1, 1, dim), vit["pos_embed"]], dim=1)
    mae = {**vit, "cls_token": torch.zeros(1, 1, dim), "decoder_embed.weight": torch.zeros(8, dim)}
    torch.save({"model": mae}, tmp_path / get_weights("mae_vit_h").file_name)

    task.setup("fit")
    own = task.model.state_dict()
    loaded = [k for k in source.state_dict() if k.startswith("encoder.vit.")]
    assert loaded and all(torch.equal(own[k], source.state_dict()[k]) for k in loaded)
    assert set(task.init_report["transferred"]) == set(loaded)
    assert any(k.startswith("decoder.") for k in task.init_report["missing"])
