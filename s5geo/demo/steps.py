"""Re-runnable pipeline steps: each step's outputs are published atomically and remembered.

A step is skipped when its record in ``<output>/.steps/<name>.json`` exists, matches the step's
configuration and all its outputs are present. Files are written under a temporary name and renamed, and one
lock per output folder keeps two runs from writing into the same folder at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from s5geo.errors import S5GeoError


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` for the duration of the block.

    Raises:
        S5GeoError: if another process holds the lock.
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".lock", "w")  # noqa: SIM115 (kept open while locked)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise S5GeoError(
                f"{folder}: another s5geo run is writing to this folder; "
                "wait for it or choose another --output"
            ) from error
        yield
    finally:
        handle.close()


def atomic_path(path: Path) -> Path:
    """Return a temporary sibling of ``path`` to write to before :func:`publish`."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def publish(tmp: Path, path: Path) -> Path:
    """Move a finished temporary file to its final name (atomic on one file system)."""
    os.replace(tmp, path)
    return path


class StepRunner:
    """Runs named steps once, skipping those whose recorded outputs are complete.

    Args:
        output: the run's output folder.
        force: redo every step even if recorded as done.
        log: function used to print progress lines.
    """

    def __init__(self, output: Path, force: bool = False, log: Callable[[str], None] = print) -> None:
        self.output = output
        self.force = force
        self.log = log
        self.records = output / ".steps"
        self.records.mkdir(parents=True, exist_ok=True)

    def _record(self, name: str) -> Path:
        return self.records / f"{name}.json"

    @staticmethod
    def fingerprint(config: dict[str, Any]) -> str:
        """Hash of a step's configuration (JSON-serialisable)."""
        return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def done(self, name: str, config: dict[str, Any], outputs: list[Path]) -> dict[str, Any] | None:
        """Return the stored result of a completed step, or None if it must run."""
        record = self._record(name)
        if self.force or not record.exists() or not all(p.exists() for p in outputs):
            return None
        data = json.loads(record.read_text())
        if data.get("fingerprint") != self.fingerprint(config):
            return None
        return data.get("result", {})

    def run(
        self,
        name: str,
        config: dict[str, Any],
        outputs: list[Path],
        func: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run ``func`` unless the step is already done; return its (JSON-serialisable) result."""
        previous = self.done(name, config, outputs)
        if previous is not None:
            self.log(f"[skip] {name}: done in an earlier run (use --force to redo)")
            return previous
        self.log(f"[run ] {name}")
        start = time.perf_counter()
        result = func()
        missing = [str(p) for p in outputs if not p.exists()]
        if missing:
            raise S5GeoError(f"step {name} did not write {', '.join(missing)}")
        seconds = time.perf_counter() - start
        record = {"fingerprint": self.fingerprint(config), "result": result, "seconds": seconds}
        tmp = atomic_path(self._record(name))
        tmp.write_text(json.dumps(record, indent=2, default=str))
        publish(tmp, self._record(name))
        self.log(f"[done] {name} in {seconds:.0f} s")
        return result
