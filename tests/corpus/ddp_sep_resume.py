"""2-process DDP (gloo, CPU) SEP runs over shards, launched by test_shard.py.

``python ddp_sep_resume.py SHARDS OUT WORKERS``: with the same seed, one uninterrupted epoch
(``full``), a run stopped after ``STOP`` steps by ``max_steps`` with a checkpoint saved at that step
(``stop``), and a run resumed from that checkpoint until the end of the epoch (``resume``). Each rank
writes the sample indices its training steps saw to ``OUT/<run><rank>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from trainer_helpers import quiet_trainer

from s5geo.datamodules.sep import SEPDataModule

STOP = 2


class Recorder(LightningModule):
    """One weight, and the ``index`` of every training sample seen."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.seen: list[int] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.seen += batch["index"].tolist()
        return (self.weight * batch["image"].mean()).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def run(name: str, shards: str, out: Path, workers: int, **options: object) -> None:
    """Fit a :class:`Recorder` on the shards and write what this rank saw."""
    data = SEPDataModule(
        shards=shards, batch_size=2, crop_size=8, num_workers=workers, augment=False, seed=5, in_channels=3
    )
    model = Recorder()
    ckpt_path = options.pop("ckpt_path", None)
    trainer = quiet_trainer(
        devices=2, strategy="ddp", num_sanity_val_steps=0, default_root_dir=out, **options
    )
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    (out / f"{name}{trainer.global_rank}.json").write_text(json.dumps(model.seen))


def main(shards: str, out: Path, workers: int) -> None:
    run("full", shards, out, workers, max_epochs=1)
    checkpoint = ModelCheckpoint(dirpath=out, filename="mid", every_n_train_steps=STOP, save_top_k=-1)
    run("stop", shards, out, workers, max_steps=STOP, callbacks=[checkpoint], enable_checkpointing=True)
    run("resume", shards, out, workers, max_epochs=1, ckpt_path=str(out / "mid.ckpt"))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
