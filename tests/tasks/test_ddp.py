import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent


@pytest.mark.ddp
def test_fixmatch_ddp_two_processes_gloo(tmp_path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), env.get("PYTHONPATH", "")])
    env.pop("LOCAL_RANK", None)
    result = subprocess.run(
        [sys.executable, str(HERE / "ddp_fixmatch.py"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for r in ranks:
        assert r["world_size"] == 2 and r["backend"] == "gloo"
        assert len(r["seen"]) == 2
        assert torch.isfinite(torch.tensor(r["loss_u"])) and r["loss_u"] > 0
    # each process saw its own shard of the data
    assert set(ranks[0]["seen"]).isdisjoint(ranks[1]["seen"])
    # gradients were averaged: the replicas stay identical, and they did train
    final0, final1 = ranks[0]["final"], ranks[1]["final"]
    for key, value in final0.items():
        if value.is_floating_point() and "running" not in key:
            assert torch.allclose(value, final1[key], atol=1e-6), key
    assert any(not torch.equal(v, ranks[0]["initial"][k]) for k, v in final0.items())
