from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer
from tasks_tiny_data import TinySemiDataModule
from trainer_helpers import quiet_trainer

from s5geo.errors import S5GeoError
from s5geo.inference.loading import load_from_checkpoint
from s5geo.metadata import ModelMetadata
from s5geo.tasks import FixMatch, SupervisedSegmentation

KW = {"model": "upernet_resnet18", "model_kwargs": {"channels": 16}}


def _fit(task, data, tmp_path: Path, steps: int = 1) -> Trainer:
    trainer = quiet_trainer(
        max_steps=steps, limit_val_batches=1, num_sanity_val_steps=0, default_root_dir=tmp_path
    )
    trainer.fit(task, datamodule=data)
    return trainer


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, FixMatch]:
    torch.manual_seed(0)
    tmp_path = tmp_path_factory.mktemp("pretrain")
    task = FixMatch(num_classes=4, tau=0.0, lr=1e-3, **KW)
    trainer = _fit(task, TinySemiDataModule(num_classes=4), tmp_path)
    path = tmp_path / "pretrain.ckpt"
    trainer.save_checkpoint(path)
    return path, task


def test_checkpoint_contract_and_metadata_in_raw_units(pretrained) -> None:
    path, task = pretrained
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["model"] == "upernet_resnet18"
    assert ckpt["hyper_parameters"]["num_classes"] == 4
    assert ckpt["hyper_parameters"]["in_channels"] == 3
    assert ckpt["hyper_parameters"]["model_kwargs"] == {"channels": 16}
    net_keys = {k for k in ckpt["state_dict"] if k.startswith("model.")}
    assert net_keys == {f"model.{k}" for k in task.model.state_dict()}
    meta = ModelMetadata.from_dict(ckpt["s5geo_metadata"])
    assert meta.classes == ["c0", "c1", "c2", "c3"]  # from the datamodule
    assert meta.colors[1] == (10, 20, 30)
    assert meta.mean == pytest.approx([0.485 * 255, 0.456 * 255, 0.406 * 255])
    assert meta.std == pytest.approx([0.229 * 255, 0.224 * 255, 0.225 * 255])
    assert meta.model == "upernet_resnet18" and meta.bands == [1, 2, 3]
    assert meta.window_size == 32
    assert meta.scale == 255.0  # the value scale the model was trained on travels with it


def test_method_checkpoint_loads_back_into_its_task(pretrained) -> None:

    path, source = pretrained
    task = load_from_checkpoint(FixMatch, path, map_location="cpu")
    assert task.hparams.tau == 0.0 and task.hparams.lr == 1e-3
    for key, value in source.model.state_dict().items():
        assert torch.equal(task.model.state_dict()[key], value), key


@pytest.mark.parametrize("num_classes", [6, 4])
def test_init_from_transfers_encoder_decoder(pretrained, tmp_path, tiny_data, num_classes) -> None:
    path, source = pretrained
    src = {k: v.clone() for k, v in source.model.state_dict().items()}
    torch.manual_seed(1)
    task = SupervisedSegmentation(num_classes=num_classes, init_from=str(path), **KW)
    fresh = {k: v.clone() for k, v in task.model.state_dict().items()}
    report = task.load_pretrained(path)
    state = task.model.state_dict()
    for key, value in state.items():
        if key.startswith(("encoder.", "decoder.")):
            assert torch.equal(value, src[key]), key
            assert key in report["transferred"]
    if num_classes != 4:
        assert {"classifier.weight", "classifier.bias"} <= set(report["skipped"])
        assert state["classifier.weight"].shape[0] == num_classes
        # re-initialised: neither the source's nor left untouched from the build
        assert not torch.equal(state["classifier.weight"], fresh["classifier.weight"])
    else:
        assert torch.equal(state["classifier.weight"], src["classifier.weight"])
        assert report["skipped"] == [] and report["missing"] == []
    # init_from runs at the start of fit, once
    _fit(task, tiny_data(num_classes=num_classes, semi=False), tmp_path, steps=1)
    assert task.init_report is not None


def test_init_from_checkpoint_keeps_its_input_normalisation(tmp_path) -> None:
    """Fine-tuning from an s5geo checkpoint normalises inputs as that network was trained."""
    source = FixMatch(num_classes=4, mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.5], **KW)
    trainer = _fit(source, TinySemiDataModule(num_classes=4), tmp_path)
    path = tmp_path / "pretrain.ckpt"
    trainer.save_checkpoint(path)
    task = SupervisedSegmentation(num_classes=4, init_from=str(path), **KW)
    assert task.mean.flatten().tolist() == pytest.approx([0.5, 0.4, 0.3])
    assert task.std.flatten().tolist() == pytest.approx([0.2, 0.25, 0.5])
    explicit = SupervisedSegmentation(num_classes=4, init_from=str(path), mean=[0.1, 0.1, 0.1], **KW)
    assert explicit.mean.flatten().tolist() == pytest.approx([0.1, 0.1, 0.1])
    assert explicit.std.flatten().tolist() == pytest.approx([0.2, 0.25, 0.5])
    # The resolved statistics travel with the new task's checkpoint, also when loaded without init_from.
    trainer = _fit(task, TinySemiDataModule(num_classes=4, semi=False), tmp_path)
    trainer.save_checkpoint(tmp_path / "finetuned.ckpt")
    loaded = load_from_checkpoint(SupervisedSegmentation, tmp_path / "finetuned.ckpt", init_from=None)
    assert loaded.mean.flatten().tolist() == pytest.approx([0.5, 0.4, 0.3])
    assert loaded.std.flatten().tolist() == pytest.approx([0.2, 0.25, 0.5])
    # Checkpoints of earlier versions kept mean=None: their recorded metadata says what was used.
    old = torch.load(tmp_path / "finetuned.ckpt", weights_only=True)
    old["hyper_parameters"].update(mean=None, std=None)
    torch.save(old, tmp_path / "old.ckpt")
    loaded = load_from_checkpoint(SupervisedSegmentation, tmp_path / "old.ckpt", init_from=None)
    assert loaded.mean.flatten().tolist() == pytest.approx([0.5, 0.4, 0.3])
    assert loaded.std.flatten().tolist() == pytest.approx([0.2, 0.25, 0.5])
    plain = tmp_path / "plain.pth"
    torch.save(source.model.state_dict(), plain)  # no recorded statistics: ImageNet's for RGB
    fallback = SupervisedSegmentation(num_classes=4, init_from=str(plain), **KW)
    assert fallback.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])


def test_init_from_missing_file_is_a_user_error(tmp_path) -> None:
    task = SupervisedSegmentation(num_classes=3, **KW)
    with pytest.raises(S5GeoError, match="not found"):
        task.load_pretrained(tmp_path / "nope.ckpt")


def test_plain_state_dict_and_fit_hook(tmp_path, tiny_data) -> None:
    source = SupervisedSegmentation(num_classes=3, **KW)
    torch.save(source.model.state_dict(), tmp_path / "plain.pth")
    task = SupervisedSegmentation(num_classes=3, init_from=str(tmp_path / "plain.pth"), **KW)
    assert not torch.equal(task.model.classifier.weight, source.model.classifier.weight)
    task.setup("fit")
    assert torch.equal(task.model.classifier.weight, source.model.classifier.weight)


def test_layer_decay_and_no_weight_decay_groups() -> None:
    task = SupervisedSegmentation(
        model="upernet_vit_tiny",
        model_kwargs={"img_size": 32},
        num_classes=3,
        lr=1.0,
        weight_decay=0.05,
        layer_decay=0.5,
    )
    model = task.model
    groups = task.parameter_groups()
    by_param = {id(p): g for g in groups for p in g["params"]}
    names = dict(model.named_parameters())
    top = model.num_layers - 1
    for name, param in names.items():
        group = by_param[id(param)]
        assert group["lr"] == pytest.approx(0.5 ** (top - model.layer_id(name)))
        no_decay = param.ndim <= 1 or name in model.no_weight_decay()
        assert group["weight_decay"] == (0.0 if no_decay else 0.05), name
    pos = [n for n in names if "pos_embed" in n]
    assert pos and all(by_param[id(names[n])]["weight_decay"] == 0.0 for n in pos)
    assert by_param[id(names["classifier.weight"])]["lr"] == 1.0
    assert len(by_param) == len(names)


def test_freeze_encoder() -> None:
    task = SupervisedSegmentation(num_classes=3, freeze_encoder=True, **KW)
    trainable = {n for n, p in task.model.named_parameters() if p.requires_grad}
    assert trainable and not any(n.startswith("encoder.") for n in trainable)
    grouped = {id(p) for g in task.parameter_groups() for p in g["params"]}
    assert grouped == {id(p) for p in task.model.parameters() if p.requires_grad}


def test_init_from_another_architecture_warns(tmp_path) -> None:
    import pytest
    import torch

    from s5geo.tasks import SupervisedSegmentation

    source = SupervisedSegmentation(model="upernet_vit_tiny", num_classes=3, model_kwargs={"img_size": 32})
    path = tmp_path / "vit.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.model.state_dict().items()}}, path)
    target = SupervisedSegmentation(model="upernet_resnet18", num_classes=3)
    with pytest.warns(UserWarning, match="not in the checkpoint"):
        report = target.load_pretrained(path)
    assert report["missing"]  # the encoder kept its own initialisation
