"""kill -9 during ``s5geo fit``, then ``--ckpt_path`` resume: the same final weights, nothing left behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from lightning_tiny import FOLDER_DATA_CONFIG, QUIET_TRAINER_CONFIG, write_tiny_folder

HERE = Path(__file__).resolve().parent
EPOCHS = 20
CONFIG = f"""\
model:
  class_path: lightning_tiny.SlowTinyTask
  init_args:
    num_classes: 3
    delay: 0.05
{FOLDER_DATA_CONFIG}trainer:
  max_epochs: {EPOCHS}
  limit_val_batches: 0
  num_sanity_val_steps: 0
{QUIET_TRAINER_CONFIG}        every_n_epochs: 1
        save_on_train_epoch_end: true
"""
SCRIPT = (
    f"import sys; sys.path.insert(0, {str(HERE)!r}); "
    "from s5geo.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def _fit(folder: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-c", SCRIPT, "fit", "--config", "cfg.yaml", *extra]
    return subprocess.Popen(
        command, cwd=folder, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )


def _workdir(folder: Path) -> Path:
    write_tiny_folder(folder / "data")
    (folder / "cfg.yaml").write_text(CONFIG)
    return folder


def _finished(proc: subprocess.Popen) -> None:
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()  # type: ignore[union-attr]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "data" not in p.parts)


def test_kill9_during_fit_then_resume(tmp_path: Path) -> None:
    run = _workdir(tmp_path / "run")
    last = run / "ckpts" / "last.ckpt"
    proc = _fit(run)
    end = time.monotonic() + 120
    while not last.exists() and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(random.Random(0).uniform(0.0, 0.5))  # a seeded random point after the first save
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert 1 <= saved["epoch"] < EPOCHS - 1  # killed mid-run, after at least one saved epoch
    _finished(_fit(run, "--ckpt_path", "ckpts/last.ckpt"))
    resumed = torch.load(last, map_location="cpu", weights_only=True)
    assert resumed["epoch"] == EPOCHS - 1 and resumed["global_step"] == 2 * EPOCHS

    reference = _workdir(tmp_path / "reference")
    _finished(_fit(reference))
    expected = torch.load(reference / "ckpts" / "last.ckpt", map_location="cpu", weights_only=True)
    assert resumed["state_dict"].keys() == expected["state_dict"].keys()
    for name, value in expected["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], value), name
    assert _files(run) == _files(reference)  # the same checkpoints and saved config, no stray files
