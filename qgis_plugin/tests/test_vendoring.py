"""build.py vendors s5geo/runtime whole and refuses a vendored copy that differs from s5geo."""

from __future__ import annotations

import sys
from pathlib import Path

import build
import pytest


def test_runtime_package_is_vendored_whole() -> None:
    build.vendor()
    sources = sorted(p.name for p in build.RUNTIME_PACKAGE.glob("*.py"))
    vendored = sorted(p.name for p in (build.VENDOR_DIR / "runtime").glob("*.py"))
    assert vendored == sources and "pipeline.py" in vendored
    build.check_vendored()  # an exact copy passes


def test_a_differing_vendored_copy_is_refused(tmp_path: Path) -> None:
    build.vendor()
    target = build.VENDOR_DIR / "runtime" / "tiling.py"
    original = target.read_text(encoding="utf-8")
    stale = build.VENDOR_DIR / "runtime" / "stale.py"
    try:
        target.write_text(original + "# edited by hand\n", encoding="utf-8")
        stale.write_text("", encoding="utf-8")
        with pytest.raises(build.BuildError, match=r"runtime/tiling\.py differs.*|runtime/stale\.py"):
            build.check_vendored()
        assert build.main(["--check"]) == 1
    finally:
        target.write_text(original, encoding="utf-8")
        stale.unlink(missing_ok=True)
    build.check_vendored()


def test_vendored_runtime_imports_without_s5geo_or_torch() -> None:
    import s5geo_qgis._vendor.runtime.pipeline as pipeline

    assert pipeline.__file__.startswith(str(build.VENDOR_DIR))
    assert "torch" not in sys.modules
    assert not any(name == "s5geo" or name.startswith("s5geo.") for name in sys.modules)
