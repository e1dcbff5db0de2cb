"""`s5geo fit` on configs/tiny/mdf_four_datasets.yaml trains, validates each dataset and exports one."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from s5geo.tasks.multi_dataset import DATASETS_METADATA_KEY, export_dataset_head

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "tiny" / "mdf_four_datasets.yaml"
DATASETS = ["vaihingen", "potsdam", "openearthmap", "loveda"]


@pytest.mark.slow
def test_tiny_multi_dataset_fit_runs(tmp_path: Path) -> None:
    # The ISPRS datasets extract their archives on first use: run on a copy of the fake releases.
    for name in DATASETS:
        shutil.copytree(ROOT / "tests" / "data" / name, tmp_path / "tests" / "data" / name)
    config = tmp_path / "configs" / "tiny" / CONFIG.name
    config.parent.mkdir(parents=True)
    shutil.copy(CONFIG, config)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "s5geo", "fit", "--config", str(config.relative_to(tmp_path))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / yaml.safe_load(CONFIG.read_text())["trainer"]["default_root_dir"]
    rows = list(csv.DictReader((run / "logs" / "version_0" / "metrics.csv").open()))
    logged = {key for row in rows for key, value in row.items() if value}
    for name in DATASETS:
        assert {f"train/{name}/loss", f"val/{name}/mIoU", f"val/{name}/loss"} <= logged
    assert "val/mIoU" in logged
    checkpoint = run / "checkpoints" / "last.ckpt"
    recorded = torch.load(checkpoint, weights_only=True)[DATASETS_METADATA_KEY]
    assert list(recorded) == DATASETS
    assert len(recorded["openearthmap"]["classes"]) == 9 and recorded["potsdam"]["gsd"] == 0.05
    path, metadata = export_dataset_head(checkpoint, tmp_path / "loveda.onnx", "loveda")
    assert path.is_file() and metadata.classes == recorded["loveda"]["classes"]
