from __future__ import annotations

import json

import numpy as np
import processing
import pytest
from plugin_helpers import EPSG, MODEL, band_values, expected_classes, make_model, read_band
from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsPalettedRasterRenderer,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
)


class LogFeedback(QgsProcessingFeedback):
    """Keeps the log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def pushInfo(self, info: str) -> None:  # noqa: N802
        self.lines.append(info)
        super().pushInfo(info)


class CancelAfterFirstBatch(QgsProcessingFeedback):
    """Cancels as soon as the first batch reported progress."""

    def __init__(self) -> None:
        super().__init__()
        self.reports = 0

    def setProgress(self, progress: float) -> None:  # noqa: N802
        super().setProgress(progress)
        if progress > 0:
            self.reports += 1
            self.cancel()


def _classes_and_colors(renderer: QgsPalettedRasterRenderer) -> list[tuple[int, str, tuple]]:
    return [(c.value, c.label, c.color.getRgb()[:3]) for c in renderer.classes()]


def test_segment_outputs_styled_georeferenced_layers(provider, raster, tmp_path, qgis_new_project):
    input_layer = QgsRasterLayer(str(raster), "input")
    output = tmp_path / "classes.tif"
    confidence = tmp_path / "confidence.tif"
    polygons = tmp_path / "polygons.gpkg"
    feedback = LogFeedback()
    results = processing.runAndLoadResults(
        "s5geo:segment",
        {
            "INPUT": str(raster),
            "MODEL": str(MODEL),
            "BATCH_SIZE": 3,
            "OUTPUT": str(output),
            "CONFIDENCE": str(confidence),
            "POLYGONS": str(polygons),
        },
        feedback=feedback,
    )
    meta = make_model.METADATA
    # The class map equals the fixture model's map recomputed with numpy, nodata included.
    expected = expected_classes(band_values())
    np.testing.assert_array_equal(read_band(output), expected)

    layers = {layer.source(): layer for layer in QgsProject.instance().mapLayers().values()}
    classes_layer = layers[str(output)]
    assert classes_layer.crs().authid() == f"EPSG:{EPSG}"
    assert classes_layer.extent() == input_layer.extent()
    assert (classes_layer.width(), classes_layer.height()) == (
        input_layer.width(),
        input_layer.height(),
    )
    renderer = classes_layer.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert _classes_and_colors(renderer) == [
        (i, name, tuple(color))
        for i, (name, color) in enumerate(zip(meta["classes"], meta["colors"], strict=True))
    ]
    assert classes_layer.dataProvider().sourceNoDataValue(1) == 255

    # Confidence as `s5geo segment` writes it: uint8 probability x 255 in 1-255, 0 = nodata.
    conf = read_band(confidence)
    valid = expected != 255
    assert conf.dtype == np.uint8
    assert (conf[valid] >= 255 / len(meta["classes"])).all()
    assert (conf[~valid] == 0).all()
    confidence_layer = layers[str(confidence)]
    assert confidence_layer.crs().authid() == f"EPSG:{EPSG}"

    polygon_layer = next(layer for src, layer in layers.items() if src.startswith(str(polygons)))
    assert polygon_layer.crs().authid() == f"EPSG:{EPSG}"
    assert isinstance(polygon_layer.renderer(), QgsCategorizedSymbolRenderer)
    area = sum(f["area_m2"] for f in polygon_layer.getFeatures())
    assert area == pytest.approx(valid.sum() * 30.0 * 30.0)
    assert {f["class_id"] for f in polygon_layer.getFeatures()} == set(np.unique(expected[valid]))

    # The log and the DEVICE_USED output say which onnxruntime provider ran the model.
    assert "CPUExecutionProvider" in results["DEVICE_USED"]
    assert any("CPUExecutionProvider" in line and "Device" in line for line in feedback.lines)
    # The class map carries the model metadata and colour table for viewers without the plugin.
    from osgeo import gdal

    dataset = gdal.Open(str(output))
    assert json.loads(dataset.GetMetadataItem("s5geo"))["classes"] == meta["classes"]
    table = dataset.GetRasterBand(1).GetColorTable()
    assert [table.GetColorEntry(i)[:3] for i in range(4)] == [tuple(c) for c in meta["colors"]]


def test_window_and_overlap_do_not_change_a_pointwise_model(provider, raster, tmp_path):
    output = tmp_path / "small_windows.tif"
    processing.run(
        "s5geo:segment",
        {
            "INPUT": str(raster),
            "MODEL": str(MODEL),
            "WINDOW": 16,
            "OVERLAP": 0.5,
            "BLEND": 2,  # none
            "OUTPUT": str(output),
        },
    )
    np.testing.assert_array_equal(read_band(output), expected_classes(band_values()))


def test_cancel_leaves_no_output(provider, raster, tmp_path, qgis_new_project) -> None:
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    feedback = CancelAfterFirstBatch()
    with pytest.raises(QgsProcessingException):
        processing.runAndLoadResults(
            "s5geo:segment",
            {
                "INPUT": str(raster),
                "MODEL": str(MODEL),
                "BATCH_SIZE": 1,
                "OUTPUT": str(output_dir / "classes.tif"),
                "CONFIDENCE": str(output_dir / "confidence.tif"),
            },
            feedback=feedback,
        )
    assert feedback.reports == 1  # stopped right after the first batch
    assert list(output_dir.iterdir()) == []
    assert QgsProject.instance().mapLayers() == {}
