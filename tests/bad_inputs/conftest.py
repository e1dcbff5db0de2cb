"""Fixtures of the bad-input tests: tiny data, checkpoints and a model that needs no ``s5geo.tasks``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


class Evil:
    """Pickles to a call that creates a file: loading it with ``weights_only=False`` would run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint whose pickle would create ``marker`` if executed; returns (checkpoint, marker)."""
    import torch

    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": Evil(marker)}, "s5geo_metadata": {}}, path)
    return path, marker
