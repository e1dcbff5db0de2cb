"""2-process DDP FixMatch run on CPU (gloo), launched by test_ddp.py: ``python ddp_fixmatch.py OUT``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from lightning.pytorch import Callback, seed_everything
from tasks_tiny_data import TinySemiDataModule
from trainer_helpers import quiet_trainer

from s5geo.tasks import FixMatch


class Record(Callback):
    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(float(batch["unlabeled"]["image"].sum()))


def main(out: Path) -> None:
    seed_everything(0)
    task = FixMatch(model="upernet_resnet18", model_kwargs={"channels": 16}, num_classes=4, tau=0.0, lr=1e-3)
    initial = {k: v.clone() for k, v in task.model.state_dict().items()}
    record = Record()
    trainer = quiet_trainer(
        devices=2,
        strategy="ddp",
        max_steps=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        callbacks=[record],
        default_root_dir=out,
    )
    trainer.fit(task, datamodule=TinySemiDataModule(size=32, batch_size=1, n=4))
    rank = trainer.global_rank
    torch.save(
        {
            "world_size": trainer.world_size,
            "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else "",
            "seen": record.seen,
            "initial": initial,
            "final": task.model.state_dict(),
            "loss_u": float(trainer.callback_metrics["train/loss_u"]),
            "miou": float(trainer.callback_metrics["val/mIoU"]),
        },
        out / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
