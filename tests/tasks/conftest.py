"""Fixtures of the task tests."""

from __future__ import annotations

import pytest
from tasks_tiny_data import TinySemiDataModule


@pytest.fixture
def tiny_data() -> type[TinySemiDataModule]:
    return TinySemiDataModule
