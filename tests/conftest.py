"""Fixtures and helpers of the whole suite."""

import sys
from pathlib import Path

# The helper modules beside this file (trainer_helpers) are importable from every test folder, and
# from the scripts the tests launch with this folder on PYTHONPATH.
sys.path.insert(0, str(Path(__file__).parent))
