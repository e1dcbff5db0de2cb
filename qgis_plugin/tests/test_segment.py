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


def test_sparse_vrt_is_skipped_in_bulk_and_written_sparse(provider, raster, tmp_path) -> None:
    """A 30,000 px square VRT holding the test raster: only the data is read, predicted and written."""
    from osgeo import gdal

    source = gdal.Open(str(raster))
    size, offset = 30_000, (12_345, 20_011)  # (row, col), not on the window grid
    gt = list(source.GetGeoTransform())
    gt[0] -= offset[1] * gt[1]
    gt[3] -= offset[0] * gt[5]
    vrt = gdal.GetDriverByName("VRT").Create(str(tmp_path / "sparse.vrt"), size, size, 0)
    vrt.SetGeoTransform(gt)
    vrt.SetProjection(source.GetProjection())
    height, width = source.RasterYSize, source.RasterXSize
    for band in range(1, source.RasterCount + 1):
        vrt.AddBand(gdal.GDT_UInt16)
        target = vrt.GetRasterBand(band)
        target.SetNoDataValue(0)
        target.SetMetadataItem(
            "source_0",
            f"<SimpleSource><SourceFilename>{raster}</SourceFilename><SourceBand>{band}</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
            f'<DstRect xOff="{offset[1]}" yOff="{offset[0]}" xSize="{width}" ySize="{height}"/>'
            "</SimpleSource>",
            "new_vrt_sources",
        )
    vrt = None
    output = tmp_path / "classes.tif"
    processing.run(
        "s5geo:segment", {"INPUT": str(tmp_path / "sparse.vrt"), "MODEL": str(MODEL), "OUTPUT": str(output)}
    )

    result = gdal.Open(str(output))
    band = result.GetRasterBand(1)
    assert (result.RasterXSize, result.RasterYSize) == (size, size)
    inside = band.ReadAsArray(offset[1], offset[0], width, height)
    np.testing.assert_array_equal(inside, expected_classes(band_values()))
    assert (band.ReadAsArray(0, 0, 512, 512) == 255).all()
    # Tiles away from the data were never written: the file holds a few tiles, not 30,000 px squared.
    block = band.GetBlockSize()[0]
    assert band.GetMetadataItem("BLOCK_OFFSET_0_0", "TIFF") in (None, "", "0")
    written = band.GetMetadataItem(f"BLOCK_OFFSET_{offset[1] // block}_{offset[0] // block}", "TIFF")
    assert written not in (None, "", "0")
    assert output.stat().st_size < 1_000_000
