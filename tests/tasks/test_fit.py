from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer
from trainer_helpers import quiet_trainer

from s5geo.tasks import FixMatch, SupervisedSegmentation, UniMatch

MODELS = {
    "upernet_vit_tiny": {"img_size": 32},
    "upernet_resnet18": {"channels": 16},
    "deeplabv3plus_resnet18": {"channels": 16},
}


def _trainer(tmp_path: Path, steps: int = 2) -> Trainer:
    return quiet_trainer(
        max_steps=steps,
        limit_val_batches=1,
        val_check_interval=steps,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )


@pytest.mark.parametrize("task_cls", [SupervisedSegmentation, FixMatch, UniMatch])
@pytest.mark.parametrize("name", list(MODELS))
def test_short_fit_each_task_and_model_family(tmp_path, tiny_data, task_cls, name) -> None:
    torch.manual_seed(0)
    kwargs = {"tau": 0.0} if task_cls is not SupervisedSegmentation else {}
    task = task_cls(model=name, model_kwargs=MODELS[name], num_classes=4, lr=1e-3, warmup_steps=1, **kwargs)
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    trainer = _trainer(tmp_path)
    trainer.fit(task, datamodule=tiny_data(size=32, semi=task_cls is not SupervisedSegmentation))
    assert trainer.global_step == 2
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"])
    for key in ("val/mIoU", "val/mF1", "val/OA", "train/lr"):
        assert key in metrics, key
    if task_cls is not SupervisedSegmentation:
        # tau = 0: every real pixel is confident, padding never counts
        assert metrics["train/mask_ratio"].item() == pytest.approx(1.0)
        assert metrics["train/loss_u"].item() > 0
    if task_cls is UniMatch:
        assert {"train/loss_fp", "train/loss_s1", "train/loss_s2"} <= set(metrics)
    changed = [k for k, v in task.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("encoder.") for k in changed)
    assert any(k.startswith("classifier.") for k in changed)
