import sys
from pathlib import Path

import numpy as np
import pytest

# The helpers module sits beside this file; make it importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).parent))
from _inference_helpers import NUM_CLASSES


@pytest.fixture
def class_map() -> np.ndarray:
    """A random 4-class map whose size is not a multiple of the 32 px window."""
    return np.random.default_rng(0).integers(0, NUM_CLASSES, size=(75, 101)).astype(np.uint8)
