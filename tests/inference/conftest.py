import numpy as np
import pytest
from _inference_helpers import NUM_CLASSES


@pytest.fixture
def class_map() -> np.ndarray:
    """A random 4-class map whose size is not a multiple of the 32 px window."""
    return np.random.default_rng(0).integers(0, NUM_CLASSES, size=(75, 101)).astype(np.uint8)
