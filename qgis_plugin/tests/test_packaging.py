"""The built zip: contents, install into a fresh profile, runs with qgis_process."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import build
import numpy as np
import pytest
from osgeo import gdal
from plugin_helpers import EPSG, MODEL, band_values, expected_classes, read_band

QGIS_PROCESS = "/usr/bin/qgis_process.bin"
# What the plugin repository requires, and what a good listing has besides.
REQUIRED_METADATA = [
    *build.REPOSITORY_REQUIRED_METADATA,
    "homepage",
    "tags",
    "category",
    "icon",
    "hasProcessingProvider",
    "experimental",
    "license",
]


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.build_zip(tmp_path_factory.mktemp("dist"))


def _env(home: Path, plugin_path: Path | None = None) -> dict[str, str]:
    """Environment of a fresh QGIS user: own HOME (so own profile); onnxruntime from this venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QGIS")}
    env.update(
        HOME=str(home),
        QT_QPA_PLATFORM="offscreen",
        XDG_RUNTIME_DIR=str(home),
        # qgis_process embeds the system Python; give it this venv's packages (onnxruntime).
        PYTHONPATH=sysconfig.get_paths()["purelib"],
    )
    if plugin_path is not None:
        env["QGIS_PLUGINPATH"] = str(plugin_path)
    return env


def _qgis_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_zip_holds_the_plugin_and_its_vendored_modules(plugin_zip: Path) -> None:
    with zipfile.ZipFile(plugin_zip) as archive:
        names = set(archive.namelist())
        metadata_text = archive.read("s5geo_qgis/metadata.txt").decode()
    assert plugin_zip.name == f"s5geo_qgis-{build.plugin_version()}.zip"
    assert all(name.startswith("s5geo_qgis/") for name in names)
    for required in (
        "__init__.py",
        "plugin.py",
        "provider.py",
        "icon.svg",
        "algorithms/segment.py",
    ):
        assert f"s5geo_qgis/{required}" in names
    for vendored in build.VENDORED.values():
        assert f"s5geo_qgis/_vendor/{vendored}" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(metadata_text)
    general = parser["general"]
    assert [key for key in REQUIRED_METADATA if not general.get(key)] == []
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert f"s5geo_qgis/{general['icon']}" in names


def test_zip_installs_into_a_fresh_profile_and_loads(plugin_zip: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    plugins = home / ".local/share/QGIS/QGIS3/profiles/default/python/plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(plugin_zip) as archive:
        archive.extractall(plugins)
    script = f"""
import sys
sys.path[:0] = [{str(plugins)!r}, "/usr/share/qgis/python/plugins"]
from qgis.core import QgsApplication
app = QgsApplication([], False)
app.initQgis()
from processing.core.Processing import Processing
Processing.initialize()
import s5geo_qgis
assert s5geo_qgis.__file__.startswith({str(plugins)!r}), s5geo_qgis.__file__
plugin = s5geo_qgis.classFactory(None)
plugin.initProcessing()
ids = sorted(a.id() for a in QgsApplication.processingRegistry().providerById("s5geo").algorithms())
print("IDS", ",".join(ids), "TORCH", "torch" in sys.modules)
plugin.unload()
print("UNLOADED", QgsApplication.processingRegistry().providerById("s5geo") is None)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(home),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "IDS s5geo:segment,s5geo:vectorize TORCH False" in result.stdout
    assert "UNLOADED True" in result.stdout
    # qgis_process finds the plugin in the fresh profile too.
    listed = _qgis_process(_env(home), "plugins")
    assert "s5geo_qgis" in listed.stdout


def test_qgis_process_runs_segment_and_vectorize(plugin_zip, raster, tmp_path) -> None:
    plugin_path = tmp_path / "plugins"
    with zipfile.ZipFile(plugin_zip) as archive:
        archive.extractall(plugin_path)
    env = _env(tmp_path / "home", plugin_path)
    (tmp_path / "home").mkdir()
    enabled = _qgis_process(env, "plugins", "enable", "s5geo_qgis")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr

    output = tmp_path / "classes.tif"
    run = _qgis_process(
        env,
        "--json",
        "run",
        "s5geo:segment",
        "--",
        f"INPUT={raster}",
        f"MODEL={MODEL}",
        "DEVICE=1",
        f"OUTPUT={output}",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout[run.stdout.index("{") :])
    assert "CPUExecutionProvider" in report["results"]["DEVICE_USED"]
    np.testing.assert_array_equal(read_band(output), expected_classes(band_values()))
    dataset = gdal.Open(str(output))
    assert dataset.GetSpatialRef().GetAuthorityCode(None) == str(EPSG)
    assert dataset.GetGeoTransform() == gdal.Open(str(raster)).GetGeoTransform()

    polygons = tmp_path / "polygons.gpkg"
    run = _qgis_process(env, "run", "s5geo:vectorize", "--", f"INPUT={output}", f"OUTPUT={polygons}")
    assert run.returncode == 0, run.stdout + run.stderr
    from osgeo import ogr

    source = ogr.Open(str(polygons))  # keep the data source alive while using its layer
    layer = source.GetLayer(0)
    assert layer.GetSpatialRef().GetAuthorityCode(None) == str(EPSG)
    assert layer.GetFeatureCount() > 0


def test_zip_passes_the_plugin_repository_rules(plugin_zip: Path) -> None:
    """plugins.qgis.org's upload rules, checked offline: licence, metadata, no compiled files."""
    assert build.repository_problems(plugin_zip) == []
    with zipfile.ZipFile(plugin_zip) as archive:
        licence = archive.read("s5geo_qgis/LICENSE").decode()
        metadata_text = archive.read("s5geo_qgis/metadata.txt").decode()
    assert licence == (build.REPO_ROOT / "LICENSE").read_text()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(metadata_text)
    # Deliberately not experimental: the reason is a comment just above the key.
    assert parser["general"]["experimental"] == "False"
    lines = metadata_text.splitlines()
    assert lines[lines.index("experimental=False") - 1].startswith("#")


def _write_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


GOOD_METADATA = """[general]
name=x
qgisMinimumVersion=3.22
description=d
about=a
version=1.0
author=me
email=me@example.org
repository=https://example.org/repo
tracker=https://example.org/issues
icon=icon.svg
experimental=False
"""


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"plugin/LICENSE": None}, "plugin/LICENSE is missing"),
        ({"plugin/a.pyc": "x"}, "compiled Python"),
        ({"plugin/__pycache__/a.py": "x"}, "__pycache__ folder"),
        ({"plugin/icon.svg": None}, "icon icon.svg"),
        ({"other/x.py": ""}, "exactly one top-level folder"),
        ({"plugin/metadata.txt": GOOD_METADATA.replace("email=me@example.org\n", "")}, "email"),
        ({"plugin/metadata.txt": GOOD_METADATA.replace("tracker=https", "tracker=ftp")}, "tracker"),
        ({"plugin/metadata.txt": GOOD_METADATA.replace("=False", "=yes")}, "True or False"),
        ({"plugin/metadata.txt": GOOD_METADATA.replace("author=me", "author=a/b")}, "author"),
    ],
)
def test_repository_rules_catch_what_the_repository_refuses(tmp_path, change, problem) -> None:
    files = {
        "plugin/__init__.py": "",
        "plugin/metadata.txt": GOOD_METADATA,
        "plugin/LICENSE": "MIT",
        "plugin/icon.svg": "<svg/>",
    }
    assert build.repository_problems(_write_zip(tmp_path / "ok.zip", files)) == []
    for name, text in change.items():
        if text is None:
            files.pop(name)
        else:
            files[name] = text
    problems = build.repository_problems(_write_zip(tmp_path / "bad.zip", files))
    assert any(problem in line for line in problems), problems
