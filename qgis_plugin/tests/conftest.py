"""Fixtures of the plugin tests (real QGIS 3.22, headless, through pytest-qgis).

The vendored s5geo modules are refreshed first by the same code the zip build uses, so the tests
exercise exactly what ships.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
PLUGIN_ROOT = TESTS_DIR.parent
# Works with pytest's importlib import mode too: build.py, the plugin and plugin_helpers.
sys.path[:0] = [str(PLUGIN_ROOT), str(TESTS_DIR)]

import build  # noqa: E402

build.vendor()


@pytest.fixture(scope="session")
def provider(qgis_processing: None) -> Iterator[object]:
    """The s5geo provider, registered the way QGIS registers it (classFactory + initProcessing)."""
    import s5geo_qgis

    plugin = s5geo_qgis.classFactory(None)
    plugin.initProcessing()
    yield plugin.provider
    plugin.unload()


@pytest.fixture
def raster(tmp_path: Path) -> Path:
    """A 3-band 70 x 90 GeoTIFF in EPSG:32119 with a nodata corner."""
    from plugin_helpers import band_values, write_raster

    return write_raster(tmp_path / "input.tif", band_values())
