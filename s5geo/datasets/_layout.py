"""Finding release files as users have them: nested folders from unzipping, and release archives.

Unzipping an archive into a folder of the same name gives ``images/images/P0000.png`` or
``Train/Train/Urban``; :func:`descend_nested` finds the inner folder. Archives found where data was
expected are named in errors (:func:`archive_hint`) or, for releases whose archives s5geo knows,
extracted on first use with :func:`safe_extract`, which never overwrites a file that exists.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

from s5geo.errors import S5GeoError

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".7z", ".rar")


def has_files(folder: Path, extensions: tuple[str, ...]) -> bool:
    """Whether ``folder`` directly holds a file whose lower-cased name ends with one of ``extensions``."""
    try:
        with os.scandir(folder) as entries:
            return any(e.name.lower().endswith(extensions) and e.is_file() for e in entries)
    except OSError:
        return False


def descend_nested(folder: Path, extensions: tuple[str, ...], max_depth: int = 3) -> Path:
    """Return ``folder``, or ``folder/<name>/<name>...`` if the files sit in a same-named subfolder.

    Args:
        folder: the folder where the layout expects the files.
        extensions: file endings that count as "the files" (lower case, with the dot).
        max_depth: how many same-named levels to look through.
    """
    current = folder
    for _ in range(max_depth):
        if has_files(current, extensions):
            return current
        inner = current / folder.name
        if not inner.is_dir():
            return current
        current = inner
    return current


def archives_in(folders: Iterable[Path]) -> list[Path]:
    """Archive files (zip, tar, 7z, rar) directly in any of ``folders``, sorted."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += [
                p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES)
            ]
    return sorted(set(found))


def archive_hint(folders: Iterable[Path], target: Path) -> str:
    """``"; found a.zip, b.zip: unpack them into <target>"`` for archives in ``folders``, else ``""``."""
    found = archives_in(folders)
    if not found:
        return ""
    names = ", ".join(str(p) for p in found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
    them = "it" if len(found) == 1 else "them"
    return f"; found {names}: unpack {them} into {target} (e.g. unzip -n <archive> -d {target})"


def _marker(archive: Path, dest: Path) -> Path:
    return dest / f".{archive.name}.extracting"


def extraction_pending(archive: Path, dest: Path) -> bool:
    """Whether an earlier :func:`safe_extract` of ``archive`` into ``dest`` was interrupted."""
    return _marker(archive, dest).exists()


def safe_extract(archive: Path, dest: Path) -> int:
    """Extract a zip archive into ``dest`` without overwriting anything.

    Members that would land outside ``dest`` are refused; members whose file exists are kept as
    they are (so a resumed or repeated extraction only adds what is missing). Each file is written
    under a temporary name and renamed when complete, and a marker file in ``dest`` records an
    extraction in progress, so an interrupted one is resumed on the next call.

    Returns:
        Number of files written.

    Raises:
        S5GeoError: if the archive is not a readable zip, a member escapes ``dest``, or ``dest`` is
            not writable (the message says how to unpack it by hand).
    """
    dest = Path(dest)
    by_hand = f"unpack it by hand: unzip -n {archive} -d {dest}"
    written = 0
    try:
        dest.mkdir(parents=True, exist_ok=True)
        marker = _marker(archive, dest)
        marker.touch()
        logger.warning("extracting %s into %s (first use; existing files are kept)", archive, dest)
        with zipfile.ZipFile(archive) as zf:
            root = dest.resolve()
            for member in zf.infolist():
                target = (dest / member.filename).resolve()
                if target != root and root not in target.parents:
                    raise S5GeoError(f"{archive}: member {member.filename!r} would be written outside {dest}")
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if target.exists():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.partial")
                with zf.open(member) as src, open(partial, "wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                os.replace(partial, target)
                written += 1
        marker.unlink()
    except zipfile.BadZipFile as error:
        raise S5GeoError(f"{archive}: not a readable zip archive ({error}); download it again") from error
    except OSError as error:
        raise S5GeoError(f"{archive}: cannot extract into {dest} ({error}); {by_hand}") from error
    return written
