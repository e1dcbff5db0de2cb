import sys
from pathlib import Path

# Spawned DDP workers unpickle objects from ``_tiny``; make it importable everywhere.
sys.path.insert(0, str(Path(__file__).parent))
