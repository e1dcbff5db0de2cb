"""One call from a raster to land-cover polygons."""

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

sys.path.insert(0, str(Path(__file__).parent / "inference"))
from _inference_helpers import IdentityModel, make_metadata, write_raster

import s5geo
from s5geo.errors import S5GeoError


def _blocks() -> np.ndarray:
    classes = np.zeros((64, 96), dtype=np.uint8)
    classes[:, 48:] = 2
    classes[40:, :20] = 3
    return classes


def test_raster_to_polygons_keeps_the_map_and_writes_one_polygon_per_region(tmp_path) -> None:
    src = write_raster(tmp_path / "scene.tif", _blocks())
    (tmp_path / "out").mkdir()
    frame = s5geo.raster_to_polygons(
        src, IdentityModel(), tmp_path / "out" / "cover.gpkg", metadata=make_metadata(32), progress=False
    )
    classmap = tmp_path / "out" / "cover_landcover.tif"
    with rasterio.open(classmap) as map_src, rasterio.open(src) as in_src:
        np.testing.assert_array_equal(map_src.read(1), _blocks())
        assert map_src.crs == in_src.crs and map_src.transform == in_src.transform
    assert (tmp_path / "out" / "cover.gpkg").is_file()
    assert sorted(frame.class_name) == ["class0", "class2", "class3"]
    pixel_area = 28.5 * 28.5
    areas = frame.set_index("class_name").area_m2
    assert areas["class3"] == pytest.approx(24 * 20 * pixel_area)
    assert areas.sum() == pytest.approx(64 * 96 * pixel_area)


def test_raster_to_polygons_refuses_one_file_for_both_outputs(tmp_path) -> None:
    src = write_raster(tmp_path / "scene.tif", _blocks())
    with pytest.raises(S5GeoError, match="different files"):
        s5geo.raster_to_polygons(
            src, IdentityModel(), tmp_path / "a.tif", classmap=tmp_path / "a.tif", metadata=make_metadata(32)
        )
