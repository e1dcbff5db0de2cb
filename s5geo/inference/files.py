"""Checks on input and output files shared by ``segment``, ``pseudo-label``, ``vectorize`` and ``export``.

* an input is never an output (:func:`check_not_input`);
* output folders are checked for writability before any work (:func:`check_writable_folder`);
* temporary files carry the writer's process id, so the next run removes those of killed runs
  (:func:`temp_name`, :func:`remove_stale_temps`);
* PNG and JPEG files are checked for truncation, which GDAL reads silently as zeros
  (:func:`check_image_complete`);
* free memory and disk space can be compared with what a job needs (:func:`available_memory`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from s5geo.errors import S5GeoError
from s5geo.imagefile import JPEG_SUFFIXES

#: Suffixes checked by :func:`check_image_complete` (with :data:`~s5geo.imagefile.JPEG_SUFFIXES`).
PNG_SUFFIXES = (".png",)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same file (through links and ``..``), existing or not."""
    a, b = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_not_input(output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Raise when ``output`` is one of ``inputs``: an input is never overwritten.

    Raises:
        S5GeoError: the output path names an input file.
    """
    for source in inputs:
        text = str(source)
        if "://" in text or text.startswith("/vsi"):
            continue
        if same_file(output, source):
            raise S5GeoError(f"output {str(output)!r} is the input {text!r}; choose another output file")


def check_writable_folder(folder: str | os.PathLike[str], what: str = "output folder") -> None:
    """Raise a one-line error unless ``folder`` exists and the user may create files in it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise S5GeoError(f"{what} {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise S5GeoError(f"{what} {str(folder)!r} is not writable")


def temp_name(final: Path, tag: str = "part") -> Path:
    """Temporary path next to ``final``: ``.<name>.<pid>-<random>.<tag>`` (hidden, same folder)."""
    return final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.{tag}")


_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)(?:-[0-9a-f]+)?\.(?P<tag>part|tmp)(?P<rest>.*)$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(final: Path) -> list[Path]:
    """Remove temporary files that a killed run left for ``final`` (its writer process is gone).

    Matches :func:`temp_name` files of ``final`` and their GDAL/SQLite side files
    (``.aux.xml``, ``.msk``, ``-wal``, ``-shm``, ``-journal``).

    Returns:
        The paths removed.
    """
    removed = []
    folder = final.parent
    if not folder.is_dir():
        return removed
    prefix = f".{final.name}."
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            match = _TEMP_RE.match(entry.name)
            if match is None or match.group("name") != final.name or _alive(int(match.group("pid"))):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def remove_stale_temps_under(folder: Path) -> int:
    """Remove every stale :func:`temp_name` file below ``folder`` (recursively); returns the count."""
    count = 0
    if not folder.is_dir():
        return 0
    for root, _, files in os.walk(folder):
        for name in files:
            match = _TEMP_RE.match(name) if name.startswith(".") else None
            if match is None or _alive(int(match.group("pid"))):
                continue
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(root, name))
                count += 1
    return count


def check_image_complete(path: str | os.PathLike[str]) -> None:
    """Raise when a PNG or JPEG file is truncated or damaged (GDAL would read it without error).

    Other formats are not checked here: GDAL reports their damage when the pixels are read.

    Raises:
        S5GeoError: the file is truncated or its chunks are corrupt.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PNG_SUFFIXES + JPEG_SUFFIXES or not path.is_file():
        return
    if suffix in JPEG_SUFFIXES:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 2))
            if handle.read(2) == b"\xff\xd9":  # ends with the end-of-image marker
                return
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... for damaged files
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise S5GeoError(f"{path}: image is truncated or damaged ({text})") from error


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None if unknown."""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def free_disk(folder: str | os.PathLike[str]) -> int | None:
    """Free bytes on the file system of ``folder``, or None if unknown."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def human_bytes(n: float) -> str:
    """``1.5 GB``-style size."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"
