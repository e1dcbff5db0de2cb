"""Fixtures of the task tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# Loaded by path: pytest runs with --import-mode=importlib, and ddp_fixmatch.py (a script run from
# this folder) imports the same module by name.
_path = Path(__file__).with_name("tasks_tiny_data.py")
_spec = importlib.util.spec_from_file_location("tasks_tiny_data", _path)
assert _spec is not None and _spec.loader is not None
tasks_tiny_data = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("tasks_tiny_data", tasks_tiny_data)
_spec.loader.exec_module(tasks_tiny_data)
TinySemiDataModule = tasks_tiny_data.TinySemiDataModule


@pytest.fixture
def tiny_data() -> type[TinySemiDataModule]:
    return TinySemiDataModule
