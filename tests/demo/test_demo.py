"""The demo end to end in its quick (smoke) mode on the shipped sample data."""

import json
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio

from s5geo.cli.main import main
from s5geo.datasets.geo import NC_LANDSAT_CLASSES
from s5geo.demo import run_demo, sample_data_root
from s5geo.demo.steps import folder_lock
from s5geo.errors import S5GeoError


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--no-progress", "--output", str(output)]) == 0
    return output


def test_demo_writes_every_output(demo_output: Path) -> None:
    for name in (
        "dubai_s5.ckpt",
        "dubai_supervised.ckpt",
        "dubai_comparison.png",
        "landsat.ckpt",
        "landsat_landcover.tif",
        "landsat_landcover.gpkg",
        "report.md",
    ):
        assert (demo_output / name).stat().st_size > 0, name
    with (
        rasterio.open(demo_output / "landsat_landcover.tif") as out,
        rasterio.open(sample_data_root() / "nc_landsat" / "lsat7_2000_10.tif") as scene,
    ):
        assert out.crs == scene.crs
        assert out.transform == scene.transform
        assert out.shape == scene.shape
        assert out.dtypes[0] == "uint8"
    polygons = gpd.read_file(demo_output / "landsat_landcover.gpkg")
    assert len(polygons) > 0
    assert set(polygons["class_name"]) <= set(NC_LANDSAT_CLASSES)
    report = (demo_output / "report.md").read_text()
    assert "supervised only" in report and "S5" in report and "mIoU" in report


def test_demo_rerun_skips_finished_steps(demo_output: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in demo_output.glob("*.ckpt")}
    lines: list[str] = []
    summary = run_demo(demo_output, quick=True, progress=False, log=lines.append)
    assert lines and all(line.startswith("[skip]") for line in lines)
    assert {p.name: p.stat().st_mtime_ns for p in demo_output.glob("*.ckpt")} == before
    record = json.loads((demo_output / ".steps" / "dubai_evaluate.json").read_text())
    assert summary["dubai"]["metrics"] == record["result"]


def test_demo_refuses_a_folder_in_use(tmp_path: Path) -> None:
    with folder_lock(tmp_path), pytest.raises(S5GeoError, match="another s5geo run"):
        run_demo(tmp_path, quick=True, progress=False)
