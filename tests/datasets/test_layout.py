import zipfile
from pathlib import Path

import pytest

from s5geo.datasets._layout import (
    archive_hint,
    descend_nested,
    extraction_pending,
    safe_extract,
)
from s5geo.errors import S5GeoError


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_descend_nested(tmp_path: Path) -> None:
    (tmp_path / "images/images").mkdir(parents=True)
    (tmp_path / "images/images/a.png").write_bytes(b"")
    assert descend_nested(tmp_path / "images", (".png",)) == tmp_path / "images/images"
    (tmp_path / "images/b.png").write_bytes(b"")
    assert descend_nested(tmp_path / "images", (".png",)) == tmp_path / "images"
    assert descend_nested(tmp_path / "none", (".png",)) == tmp_path / "none"


def test_archive_hint(tmp_path: Path) -> None:
    assert archive_hint([tmp_path], tmp_path) == ""
    (tmp_path / "Train.zip").write_bytes(b"")
    assert "Train.zip: unpack it into" in archive_hint([tmp_path, tmp_path / "missing"], tmp_path)


def test_safe_extract_never_overwrites_and_resumes(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "r.zip", {"d/a.txt": b"new", "d/b.txt": b"b", "d/sub/": b""})
    dest = tmp_path / "out"
    (dest / "d").mkdir(parents=True)
    (dest / "d/a.txt").write_text("mine")
    assert safe_extract(archive, dest) == 1
    assert (dest / "d/a.txt").read_text() == "mine" and (dest / "d/b.txt").read_text() == "b"
    assert (dest / "d/sub").is_dir() and not extraction_pending(archive, dest)
    # an interrupted extraction leaves its marker and is resumed
    (dest / ".r.zip.extracting").touch()
    (dest / "d/b.txt").unlink()
    assert extraction_pending(archive, dest)
    assert safe_extract(archive, dest) == 1 and not extraction_pending(archive, dest)


def test_safe_extract_refuses_bad_archives(tmp_path: Path) -> None:
    evil = make_zip(tmp_path / "evil.zip", {"../escape.txt": b"x"})
    with pytest.raises(S5GeoError, match="outside"):
        safe_extract(evil, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(S5GeoError, match=r"broken\.zip: not a readable zip"):
        safe_extract(broken, tmp_path / "out")
