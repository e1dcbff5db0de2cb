from __future__ import annotations

import numpy as np
import processing
import pytest
from osgeo import gdal, osr
from plugin_helpers import EPSG, ORIGIN, PIXEL
from qgis.core import QgsCategorizedSymbolRenderer, QgsProject, QgsRasterLayer

COLORS = {0: (10, 20, 30), 1: (200, 10, 10), 2: (10, 200, 10), 3: (250, 250, 0)}


def class_map(path, specks: list[tuple[int, int]]) -> np.ndarray:
    """A 60 x 80 class map: class 0 background, a disc of class 1, a block of 2, specks of 3."""
    rows, cols = np.mgrid[:60, :80]
    data = np.zeros((60, 80), np.uint8)
    data[(rows - 30) ** 2 + (cols - 25) ** 2 < 15**2] = 1
    data[10:40, 50:75] = 2
    for r, c in specks:
        data[r, c] = 3
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 80, 60, 1, gdal.GDT_Byte)
    dataset.SetGeoTransform((ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    dataset.SetProjection(srs.ExportToWkt())
    table = gdal.ColorTable()
    for value, rgb in COLORS.items():
        table.SetColorEntry(value, (*rgb, 255))
    dataset.GetRasterBand(1).SetColorTable(table)
    dataset.GetRasterBand(1).WriteArray(data)
    dataset = None
    return data


SPECKS = [(2, 2), (5, 40), (50, 60), (55, 5)]


def _run(raster, output, **params):
    results = processing.runAndLoadResults(
        "s5geo:vectorize", {"INPUT": str(raster), "OUTPUT": str(output), **params}
    )
    layer = next(
        layer
        for layer in QgsProject.instance().mapLayers().values()
        if layer.source().startswith(results["OUTPUT"])
    )
    return layer


def test_vectorize_styles_by_class_and_keeps_geometry(provider, tmp_path, qgis_new_project):
    raster = tmp_path / "classes.tif"
    data = class_map(raster, SPECKS)
    layer = _run(raster, tmp_path / "polygons.gpkg")
    assert layer.crs().authid() == f"EPSG:{EPSG}"
    assert layer.extent() == QgsRasterLayer(str(raster), "r").extent()
    features = list(layer.getFeatures())
    assert sum(f["area_m2"] for f in features) == pytest.approx(data.size * PIXEL**2)
    for value in COLORS:
        area = sum(f["area_m2"] for f in features if f["class_id"] == value)
        assert area == pytest.approx((data == value).sum() * PIXEL**2)
    assert sum(f["class_id"] == 3 for f in features) == len(SPECKS)
    assert all(f.geometry().isGeosValid() for f in features)
    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer)
    assert renderer.classAttribute() == "class_id"
    styled = {c.value(): c.symbol().color().getRgb()[:3] for c in renderer.categories()}
    assert styled == COLORS
    assert {c.label() for c in renderer.categories()} == {f"class {v}" for v in COLORS}


def test_min_area_merges_small_regions(provider, tmp_path, qgis_new_project):
    raster = tmp_path / "classes.tif"
    data = class_map(raster, SPECKS)
    min_area = 3 * PIXEL**2
    layer = _run(raster, tmp_path / "sieved.gpkg", MIN_AREA=min_area)
    features = list(layer.getFeatures())
    assert all(f["area_m2"] >= min_area for f in features)
    assert {f["class_id"] for f in features} == {0, 1, 2}  # the one-pixel specks were merged
    assert sum(f["area_m2"] for f in features) == pytest.approx(data.size * PIXEL**2)
    assert {c.value() for c in layer.renderer().categories()} == {0, 1, 2}


def test_simplify_reduces_vertices_and_keeps_polygons_valid(provider, tmp_path, qgis_new_project):
    raster = tmp_path / "classes.tif"
    class_map(raster, [])
    plain = _run(raster, tmp_path / "plain.gpkg")
    simple = _run(raster, tmp_path / "simple.gpkg", SIMPLIFY=1.5 * PIXEL)

    def disc(layer):
        feature = next(f for f in layer.getFeatures() if f["class_id"] == 1)
        return feature.geometry()

    assert disc(simple).constGet().nCoordinates() < disc(plain).constGet().nCoordinates() / 2
    assert all(f.geometry().isGeosValid() for f in simple.getFeatures())
    assert disc(simple).area() == pytest.approx(disc(plain).area(), rel=0.05)


def _geographic_class_map(path) -> np.ndarray:
    """The class map of :func:`class_map` on EPSG:4326 with 0.0001 degree pixels (~9 x 11 m)."""
    data = class_map(path, SPECKS)
    dataset = gdal.Open(str(path), gdal.GA_Update)
    dataset.SetGeoTransform((-78.8, 0.0001, 0.0, 35.9, 0.0, -0.0001))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    dataset.SetProjection(srs.ExportToWkt())
    dataset = None
    return data


def test_min_area_is_square_metres_on_a_geographic_crs(provider, tmp_path, qgis_new_project) -> None:
    raster = tmp_path / "classes_4326.tif"
    _geographic_class_map(raster)
    # MIN_AREA=1 m2 once overflowed GDAL's sieve (it was read as square degrees).
    tiny = _run(raster, tmp_path / "tiny.gpkg", MIN_AREA=1)
    assert 3 in {f["class_id"] for f in tiny.getFeatures()}  # 1 m2 keeps ~100 m2 specks
    # 300 m2 (~3 pixels) removes the one-pixel specks but keeps the disc and the block.
    sieved = _run(raster, tmp_path / "sieved.gpkg", MIN_AREA=300, SIMPLIFY=5)
    assert {f["class_id"] for f in sieved.getFeatures()} == {0, 1, 2}
    assert sum(f["area_m2"] for f in sieved.getFeatures()) == pytest.approx(
        sum(f["area_m2"] for f in tiny.getFeatures()), rel=0.01
    )
