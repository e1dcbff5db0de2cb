"""MultiDatasetSegmentation: per-dataset losses and metrics, per-dataset heads, checkpoints and export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from jsonargparse import ArgumentParser
from tasks_tiny_data import TinySemiDataModule
from trainer_helpers import quiet_trainer

from s5geo.cli.main import main as s5geo_main
from s5geo.datamodules import MultiDatasetDataModule
from s5geo.errors import S5GeoError
from s5geo.inference.predictor import make_predictor
from s5geo.metadata import CHECKPOINT_METADATA_KEY, METADATA_KEY, ModelMetadata
from s5geo.models.vit_moe import MoEUPerNet
from s5geo.tasks import BaseSegmentationTask, MultiDatasetSegmentation, evaluation
from s5geo.tasks.multi_dataset import DATASETS_METADATA_KEY, export_dataset_head, load_dataset_model

SIZE = 64
CLASSES = {"alpha": 3, "beta": 4}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(**options: Any) -> MultiDatasetDataModule:
    children = {
        name: TinySemiDataModule(size=SIZE, num_classes=k, batch_size=2, n=4, semi=False)
        for name, k in CLASSES.items()
    }
    return MultiDatasetDataModule(children, **options)


def _task(**options: Any) -> MultiDatasetSegmentation:
    torch.manual_seed(0)
    kwargs = {"img_size": SIZE, "datasets": dict(CLASSES), "dropout": 0.0, "drop_path_rate": 0.0}
    options = {"model": "upernet_mdf_vit_tiny_moe", "model_kwargs": kwargs, "lr": 1e-3, **options}
    return MultiDatasetSegmentation(**options)


def _batch(dm: MultiDatasetDataModule) -> dict[str, dict[str, torch.Tensor]]:
    return {name: next(iter(child.train_dataloader())) for name, child in dm.datamodules.items()}


def test_cli_lists_own_and_inherited_arguments() -> None:
    parser = ArgumentParser()
    parser.add_class_arguments(MultiDatasetSegmentation, "model")
    defaults = parser.get_defaults().model.as_dict()
    own = {
        "model": "upernet_mdf_vit_b_moe",
        "loss_weights": None,
        "loss_start_epochs": None,
        "loss_reduction": "sum",
        "mean_datasets": None,
        "eval_modes": None,
    }
    assert {k: defaults[k] for k in own} == own
    assert defaults["lr"] == 1e-4 and "sliding_window" in defaults and "init_from" in defaults
    helps = {a.dest.removeprefix("model."): a.help for a in parser._actions if a.dest.startswith("model.")}
    assert all(helps.get(name) for name in defaults), [n for n in defaults if not helps.get(n)]


def test_each_dataset_is_evaluated_in_its_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    task = _task(sliding_window=[32, 16], eval_modes={"beta": "resize"}, eval_size=48)
    calls = []

    def record(model, image, sliding_window, flip_tta, resize_to=None):
        calls.append((sliding_window, resize_to))
        return torch.zeros(image.shape[0], 3, *image.shape[2:])

    monkeypatch.setattr(evaluation, "predict_probabilities", record)
    image = torch.rand(1, 3, SIZE, SIZE)
    task.predict_probabilities(image, "alpha")
    task.predict_probabilities(image, "beta")
    assert calls == [([32, 16], None), (None, 48)]
    with pytest.raises(S5GeoError, match="unknown modes"):
        _task(eval_modes={"alpha": "tiles"})
    with pytest.raises(S5GeoError, match="unknown datasets"):
        _task(eval_modes={"gamma": "whole"})


def test_refuses_a_single_dataset_network_and_unknown_datasets() -> None:
    with pytest.raises(S5GeoError, match="multi-dataset network"):
        MultiDatasetSegmentation(model="upernet_vit_tiny", num_classes=3)
    with pytest.raises(S5GeoError, match="loss_weights: unknown datasets"):
        _task(loss_weights={"gamma": 2.0})
    task = _task()
    trainer = quiet_trainer(max_steps=1)
    data = MultiDatasetDataModule({"alpha": TinySemiDataModule(size=SIZE, num_classes=5, semi=False)})
    trainer.strategy.connect(task)
    trainer.datamodule = data  # type: ignore[misc]
    task.trainer = trainer
    with pytest.raises(S5GeoError, match="classifier has 3 classes"):
        task.setup("fit")


def test_each_head_learns_only_from_its_own_dataset() -> None:
    task = _task()
    batch = _batch(_data())
    losses = task.compute_losses(batch)
    assert set(losses) == {"loss", "alpha/loss", "beta/loss"}
    torch.testing.assert_close(losses["loss"], losses["alpha/loss"] + losses["beta/loss"])
    losses["alpha/loss"].backward()
    grads = {n: p.grad for n, p in task.model.named_parameters()}
    assert all(grads[n] is None for n in grads if n.startswith(("decoders.beta.", "classifiers.beta.")))
    assert grads["classifiers.alpha.weight"].abs().sum() > 0
    beta = task.network.encoder.expert_index("beta")
    assert all(g is None or not g.any() for n, g in grads.items() if f".mlp.experts.{beta}." in n), (
        "beta's expert got gradients from alpha's loss"
    )
    # alpha's head gradient does not depend on beta's images
    task.zero_grad()
    reference = {n: p.grad for n, p in task.model.named_parameters()}
    assert all(g is None for g in reference.values())

    def alpha_head_grads(data: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        task.zero_grad()
        task.compute_losses(data)["loss"].backward()
        return {
            n: p.grad.clone() for n, p in task.model.named_parameters() if n.startswith("decoders.alpha.")
        }

    first = alpha_head_grads(batch)
    changed = {**batch, "beta": {**batch["beta"], "image": torch.rand_like(batch["beta"]["image"])}}
    second = alpha_head_grads(changed)
    for name, grad in first.items():
        torch.testing.assert_close(second[name], grad, msg=name)


def test_training_lowers_the_loss_and_logs_every_dataset(tmp_path: Path) -> None:
    task, dm = _task(), _data()
    batch = _batch(dm)
    with torch.no_grad():
        before = task.compute_losses(batch)
    trainer = quiet_trainer(max_steps=12, num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(task, datamodule=dm)
    with torch.no_grad():
        after = task.compute_losses(batch)
    assert after["loss"] < before["loss"]
    assert all(after[f"{n}/loss"] < before[f"{n}/loss"] for n in CLASSES)
    logged = trainer.callback_metrics
    for name in CLASSES:
        assert {f"val/{name}/mIoU", f"val/{name}/mF1", f"val/{name}/OA", f"val/{name}/loss"} <= set(logged)
        assert f"train/{name}/loss" in logged
    expected = (logged["val/alpha/mIoU"] + logged["val/beta/mIoU"]) / 2
    torch.testing.assert_close(logged["val/mIoU"], expected)
    assert set(task.last_metrics["val"]) == {"alpha", "beta", "mean"}
    trainer.test(task, datamodule=dm, verbose=False)
    assert {"test/alpha/mIoU", "test/beta/mIoU", "test/beta/loss", "test/mIoU"} <= set(
        trainer.callback_metrics
    )


def test_loss_options_weigh_start_and_average() -> None:
    task = _task(loss_start_epochs={"beta": 1}, loss_reduction="mean", mean_datasets=["beta"])
    trainer = quiet_trainer(max_epochs=1, limit_val_batches=1, num_sanity_val_steps=0)
    trainer.fit(task, datamodule=_data())
    logged = trainer.callback_metrics
    # epoch 0: beta's loss does not count yet; the sum is averaged over the two datasets
    torch.testing.assert_close(logged["train/loss"], logged["train/alpha/loss"] / 2)
    torch.testing.assert_close(logged["val/mIoU"], logged["val/beta/mIoU"])
    weighted = _task(loss_weights={"alpha": 0.5})
    losses = weighted.compute_losses(_batch(_data()))
    torch.testing.assert_close(losses["loss"], 0.5 * losses["alpha/loss"] + losses["beta/loss"])


def test_checkpoint_records_every_dataset_and_exports_one(tmp_path: Path) -> None:
    task, dm = _task(), _data()
    trainer = quiet_trainer(
        max_steps=2, limit_val_batches=1, num_sanity_val_steps=0, default_root_dir=tmp_path
    )
    trainer.fit(task, datamodule=dm)
    path = tmp_path / "mdf.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    recorded = checkpoint[DATASETS_METADATA_KEY]
    assert set(recorded) == set(CLASSES)
    for name, count in CLASSES.items():
        assert recorded[name]["classes"] == [f"c{i}" for i in range(count)]
        assert recorded[name]["colors"] == [[10 * i, 20 * i, 30 * i] for i in range(count)]
        assert recorded[name]["model"] == "upernet_vit_tiny_moe"
    assert checkpoint[CHECKPOINT_METADATA_KEY]["classes"] == recorded["alpha"]["classes"]
    assert checkpoint["hyper_parameters"]["model_kwargs"]["datasets"] == CLASSES

    module, metadata = load_dataset_model(path, "beta")
    assert isinstance(module, MoEUPerNet) and module.dataset == "beta" and metadata.num_classes == 4
    x = torch.randn(1, 3, SIZE, SIZE)
    task.eval()
    with torch.no_grad():
        expected = task.network(x, "beta")
        torch.testing.assert_close(module(x), expected)
    onnx_path, exported = export_dataset_head(path, tmp_path / "beta.onnx", "beta")
    assert exported == metadata
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"image": x.numpy()})
    np.testing.assert_allclose(logits, expected.numpy(), atol=1e-4, rtol=1e-4)
    with pytest.raises(S5GeoError, match="no dataset 'gamma'"):
        load_dataset_model(path, "gamma")
    # the CLI exports one dataset with --head and asks for one without it
    assert s5geo_main(["export", str(path), "--head", "alpha", "-o", str(tmp_path / "alpha.onnx")]) == 0
    alpha = onnx.load(str(tmp_path / "alpha.onnx"))
    props = {p.key: p.value for p in alpha.metadata_props}
    assert ModelMetadata.from_json(props[METADATA_KEY]).classes == recorded["alpha"]["classes"]
    assert s5geo_main(["export", str(path), "-o", str(tmp_path / "none.onnx")]) != 0
    assert not (tmp_path / "none.onnx").exists()
    with pytest.raises(S5GeoError, match=r"multi-dataset checkpoint \(alpha, beta\); export one dataset"):
        make_predictor(path)

    # fine-tuning again starts from the whole multi-dataset checkpoint
    again = _task(init_from=str(path))
    again.setup("fit")
    assert not again.init_report["missing"] and not again.init_report["skipped"]
    assert all(torch.equal(v, task.model.state_dict()[k]) for k, v in again.model.state_dict().items())


def test_single_dataset_checkpoint_is_refused_by_the_export(tmp_path: Path) -> None:
    task = BaseSegmentationTask(model="upernet_vit_tiny", model_kwargs={"img_size": SIZE}, num_classes=3)
    trainer = quiet_trainer(max_steps=0)
    trainer.strategy.connect(task)
    path = tmp_path / "single.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(S5GeoError, match="not a multi-dataset checkpoint"):
        load_dataset_model(path, "alpha")


def test_predict_refuses_to_guess_the_dataset() -> None:
    image = torch.rand(1, 3, SIZE, SIZE)
    with pytest.raises(S5GeoError, match=r"multi-dataset model \(alpha, beta\).*--head alpha"):
        _task().predict_step({"image": image}, 0)
    torch.manual_seed(0)
    kwargs = {"img_size": SIZE, "datasets": {"alpha": 3}, "dropout": 0.0, "drop_path_rate": 0.0}
    single = MultiDatasetSegmentation(model="upernet_mdf_vit_tiny_moe", model_kwargs=kwargs).eval()
    single.setup("predict")
    with torch.no_grad():
        classes = single.predict_step({"image": image}, 0)
    assert classes.shape == (1, SIZE, SIZE) and int(classes.max()) < 3
