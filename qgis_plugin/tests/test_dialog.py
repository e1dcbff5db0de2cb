"""What the analyst meets before and after Run: search, help, checks in plain words, results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import processing
import pytest
from osgeo import gdal
from plugin_helpers import (
    MODEL,
    REPO_ROOT,
    band_values,
    expected_classes,
    make_model,
    read_band,
    write_raster,
)
from qgis.core import (
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProject,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
)


def _algorithm(name: str):
    return QgsApplication.processingRegistry().createAlgorithmById(f"s5geo:{name}")


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    size, prefix = len(payload), b""
    while True:
        byte, size = size & 0x7F, size >> 7
        prefix += bytes([byte | (0x80 if size else 0)])
        if not size:
            break
    return bytes([number << 3 | 2]) + prefix + payload


def onnx_with_metadata(path: Path, metadata: dict | None, source: Path = MODEL) -> Path:
    """Copy ``source`` (an ONNX file) with its s5geo metadata replaced (None: removed)."""
    from s5geo_qgis.algorithms import checks

    data = source.read_bytes()
    props = checks.onnx_metadata_props(source)
    entry = _field(1, b"s5geo") + _field(2, props["s5geo"].encode())
    old = _field(14, entry)
    assert data.count(old) == 1
    new = b""
    if metadata is not None:
        new = _field(14, _field(1, b"s5geo") + _field(2, json.dumps(metadata).encode()))
    path.write_bytes(data.replace(old, new))
    return path


def _check(name: str, params: dict) -> tuple[bool, str]:
    return _algorithm(name).checkParameterValues(params, QgsProcessingContext())


# --- search and help ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("segment", ["classification", "classify", "land cover", "segmentation", "onnx",
                     "deep learning", "remote sensing"]),
        ("vectorize", ["polygonize", "vectorize", "land cover", "classification"]),
    ],
)  # fmt: skip
def test_toolbox_search_words_are_tags(provider, name, words) -> None:
    tags = _algorithm(name).tags()
    assert [word for word in words if word not in tags] == []


@pytest.mark.parametrize("name", ["segment", "vectorize"])
def test_help_is_plain_text_with_a_help_url_to_the_docs(provider, name) -> None:
    algorithm = _algorithm(name)
    text = algorithm.shortHelpString()
    assert "`" not in text and "<" not in text
    assert not re.search(r"\b[A-Z]+_[A-Z_]+\b", text), "internal parameter or output names"
    assert "--" not in text
    url = algorithm.helpUrl()
    assert url.startswith("https://github.com/s5geo/s5geo/blob/main/docs/qgis.md#")
    anchor = url.split("#")[1]
    headings = [
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in (REPO_ROOT / "docs" / "qgis.md").read_text().splitlines()
        if line.startswith("#")
    ]
    assert anchor in headings


# --- checks before Run ---------------------------------------------------------------------------


def test_a_model_with_more_bands_than_the_layer_is_refused_before_run(provider, raster, tmp_path):
    six = onnx_with_metadata(
        tmp_path / "six.onnx",
        {**make_model.METADATA, "bands": [1, 2, 3, 4, 5, 6], "mean": [0.0] * 6, "std": [1.0] * 6},
    )
    layer = QgsRasterLayer(str(raster), "ortho")
    ok, message = _check("segment", {"INPUT": layer, "MODEL": str(six), "OUTPUT": "x.tif"})
    assert not ok
    assert "The model reads 6 bands" in message and "'ortho' has 3" in message
    assert "[4, 5, 6]" not in message and "Traceback" not in message


@pytest.mark.parametrize("kind", ["text", "raster", "onnx without s5geo metadata"])
def test_a_file_that_is_not_a_model_is_refused_in_plain_words(provider, raster, tmp_path, kind):
    if kind == "text":
        model = tmp_path / "notes.onnx"
        model.write_text("not a model\n" * 50)
    elif kind == "raster":
        model = raster
    else:
        model = onnx_with_metadata(tmp_path / "plain.onnx", None)
    ok, message = _check("segment", {"INPUT": str(raster), "MODEL": str(model), "OUTPUT": "x.tif"})
    assert not ok
    assert "this file is not an s5geo ONNX model" in message
    assert "ONNXRuntimeError" not in message and "PROTOBUF" not in message


@pytest.mark.parametrize(
    ("order", "words"),
    [
        ("3,2", "lists 2 band(s) (3, 2) but the model reads 3"),
        ("4,2,1", "asks for band 4 but the layer 'input' has only 3"),
        ("3,x,1", "is not a list of band numbers"),
        ("0,1,2", "is not a list of band numbers"),
    ],
)
def test_a_band_order_that_does_not_fit_is_refused_before_run(provider, raster, order, words):
    params = {"INPUT": str(raster), "MODEL": str(MODEL), "BANDS": order, "OUTPUT": "x.tif"}
    ok, message = _check("segment", params)
    assert not ok
    assert words in message


def test_a_fitting_model_and_band_order_pass_the_check(provider, raster) -> None:
    for order in (None, "", "3,2,1", "3 2 1", [3, 2, 1]):
        params = {"INPUT": str(raster), "MODEL": str(MODEL), "BANDS": order, "OUTPUT": "x.tif"}
        assert _check("segment", params) == (True, "")


def test_band_order_typed_as_text_reorders_bands(provider, tmp_path) -> None:
    data = band_values(seed=3)
    reversed_raster = write_raster(tmp_path / "bgr.tif", data[::-1].copy())
    output = tmp_path / "classes.tif"
    params = {"INPUT": str(reversed_raster), "MODEL": str(MODEL), "BANDS": "3, 2, 1"}
    processing.run("s5geo:segment", {**params, "OUTPUT": str(output)})
    np.testing.assert_array_equal(read_band(output), expected_classes(data))


def test_band_order_defaults_to_the_model_band_names(provider, tmp_path) -> None:
    """The layer stores blue, green, red; the model names its inputs red, green, blue."""
    data = band_values(seed=4)
    raster = write_raster(tmp_path / "bgr.tif", data[::-1].copy())
    dataset = gdal.Open(str(raster), gdal.GA_Update)
    for index, name in enumerate(["Blue", "Green", "Red"]):
        dataset.GetRasterBand(index + 1).SetDescription(name)
    dataset = None
    named = onnx_with_metadata(
        tmp_path / "named.onnx", {**make_model.METADATA, "band_names": ["red", "green", "blue"]}
    )
    output = tmp_path / "classes.tif"
    processing.run("s5geo:segment", {"INPUT": str(raster), "MODEL": str(named), "OUTPUT": str(output)})
    np.testing.assert_array_equal(read_band(output), expected_classes(data))


def test_band_names_fit_a_layer_the_band_numbers_do_not(provider, tmp_path) -> None:
    """A model trained on bands 2-4 of its imagery runs on a 3-band layer whose bands it names."""
    raster = write_raster(tmp_path / "bgr.tif", band_values(seed=5)[::-1].copy())
    dataset = gdal.Open(str(raster), gdal.GA_Update)
    for index, name in enumerate(["Blue", "Green", "Red"]):
        dataset.GetRasterBand(index + 1).SetDescription(name)
    dataset = None
    numbered = {**make_model.METADATA, "bands": [2, 3, 4]}
    unnamed = onnx_with_metadata(tmp_path / "unnamed.onnx", numbered)
    named = onnx_with_metadata(tmp_path / "named.onnx", {**numbered, "band_names": ["red", "green", "blue"]})
    ok, message = _check("segment", {"INPUT": str(raster), "MODEL": str(unnamed), "OUTPUT": "x.tif"})
    assert not ok and "The model reads 3 bands" in message
    assert _check("segment", {"INPUT": str(raster), "MODEL": str(named), "OUTPUT": "x.tif"}) == (True, "")


def test_model_band_names_are_matched_by_the_vendored_runtime() -> None:
    from s5geo_qgis._vendor.runtime import bands
    from s5geo_qgis.algorithms import checks

    assert checks.model_band_names({"band_descriptions": ["NIR", "Red"]}) == ["NIR", "Red"]
    assert checks.model_band_names({"bands": [1, 2]}) is None
    names = checks.model_band_names({"band_names": ["red", "green", "blue"]})
    assert bands.bands_from_names(names, ["Blue", "Green", "Red"]) == [3, 2, 1]
    assert not hasattr(checks, "bands_from_names")  # one matching rule, the runtime's


def _single_band(path: Path, data: np.ndarray, gdal_type: int, colours: bool = False) -> Path:
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[1], data.shape[0], 1, gdal_type)
    dataset.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    if colours:
        table = gdal.ColorTable()
        table.SetColorEntry(1, (255, 0, 0, 255))
        dataset.GetRasterBand(1).SetColorTable(table)
    dataset.GetRasterBand(1).WriteArray(data)
    dataset = None
    return path


def test_vectorize_refuses_an_image_before_run(provider, raster, tmp_path) -> None:
    rng = np.random.default_rng(0)
    photo = _single_band(tmp_path / "grey.tif", rng.integers(0, 256, (60, 60)), gdal.GDT_Byte)
    confidence = _single_band(tmp_path / "conf.tif", rng.random((60, 60)), gdal.GDT_Float32)
    cases = {
        str(raster): "has 3 bands, so it looks like an image, not a land-cover map",
        str(confidence): "holds decimal numbers (Float32), not class numbers",
        str(photo): "has no class table",
    }
    for source, words in cases.items():
        ok, message = _check("vectorize", {"INPUT": source, "OUTPUT": str(tmp_path / "p.gpkg")})
        assert not ok and words in message, message
        assert "Segment raster (land cover)" in message
    # A class map without colours but with few values is accepted, as is a photo styled paletted.
    plain = _single_band(tmp_path / "plain.tif", rng.integers(0, 5, (60, 60)), gdal.GDT_Byte)
    assert _check("vectorize", {"INPUT": str(plain), "OUTPUT": "p.gpkg"}) == (True, "")
    styled = QgsRasterLayer(str(photo), "styled")
    styled.setRenderer(
        QgsPalettedRasterRenderer(
            styled.dataProvider(), 1, QgsPalettedRasterRenderer.classDataFromRaster(styled.dataProvider(), 1)
        )
    )
    assert _check("vectorize", {"INPUT": styled, "OUTPUT": "p.gpkg"}) == (True, "")


# --- results -----------------------------------------------------------------------------------


def test_results_are_named_expanded_and_styled(provider, raster, tmp_path, qgis_new_project):
    named_input = QgsRasterLayer(str(raster), "Scene 7")
    QgsProject.instance().addMapLayer(named_input)
    processing.runAndLoadResults(
        "s5geo:segment",
        {
            "INPUT": named_input.id(),
            "MODEL": str(MODEL),
            "OUTPUT": str(tmp_path / "classes.tif"),
            "CONFIDENCE": str(tmp_path / "confidence.tif"),
            "POLYGONS": str(tmp_path / "polygons.gpkg"),
        },
    )
    layers = {layer.name(): layer for layer in QgsProject.instance().mapLayers().values()}
    model = MODEL.stem
    classes = layers[f"Scene 7 land cover ({model})"]
    confidence = layers[f"Scene 7 confidence ({model})"]
    polygons = layers[f"Scene 7 land-cover polygons ({model})"]
    root = QgsProject.instance().layerTreeRoot()
    for layer in (classes, confidence, polygons):
        assert root.findLayer(layer.id()).isExpanded(), layer.name()

    ramp = confidence.renderer()
    assert isinstance(ramp, QgsSingleBandPseudoColorRenderer)
    assert (ramp.classificationMin(), ramp.classificationMax()) == (0.0, 1.0)
    items = ramp.shader().rasterShaderFunction().colorRampItemList()
    assert items[0].color.red() > items[0].color.green()  # unsure is red
    assert items[-1].color.green() > items[-1].color.red()  # sure is green

    palette = {c.value: (c.label, c.color.getRgb()[:3]) for c in classes.renderer().classes()}
    categorized = polygons.renderer()
    assert isinstance(categorized, QgsCategorizedSymbolRenderer)
    for category in categorized.categories():
        label, colour = palette[int(category.value())]
        assert category.label() == label
        assert category.symbol().color().getRgb()[:3] == colour
