"""Render ``docs/img/qgis_segmented.png`` with real QGIS, offscreen.

Segments the NC Landsat sample shipped with s5geo (its six bands stacked in a VRT) with the plugin's
"Segment raster (land cover)" algorithm, lets Processing load and style the result (paletted renderer from
the model's classes), and renders the input (bands 3-2-1) and the styled map side by side with
``QgsMapRendererSequentialJob``, plus a legend drawn from the layer's renderer. The model is an exported
s5geo model, e.g. the demo's Landsat model (``s5geo export s5geo-demo/landsat.ckpt --output landsat.onnx``);
without one, the tests' tiny 3-band model (which only separates brightness levels)::

    QT_QPA_PLATFORM=offscreen .venv-qgis/bin/python qgis_plugin/tests/render_screenshot.py [MODEL.onnx]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
PLUGIN_ROOT = TESTS_DIR.parent
REPO_ROOT = PLUGIN_ROOT.parent
SAMPLE = REPO_ROOT / "s5geo" / "sample_data" / "nc_landsat"
OUTPUT = REPO_ROOT / "docs" / "img" / "qgis_segmented.png"
MODEL = TESTS_DIR / "data" / "tiny_model.onnx"
SIZE = 480


def render(layers: list, extent, size: int):
    """Render ``layers`` (top first) over ``extent`` into a square QImage."""
    from qgis.core import QgsMapRendererSequentialJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(layers[0].crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(size, size))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    return job.renderedImage()


def main(model: Path = MODEL) -> Path:
    """Run the algorithm with ``model`` and write the screenshot; return its path."""
    sys.path[:0] = [str(PLUGIN_ROOT), "/usr/share/qgis/python/plugins"]
    import build
    from osgeo import gdal
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
    from qgis.PyQt.QtCore import QRectF
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter

    build.vendor()
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    import processing
    import s5geo_qgis

    plugin = s5geo_qgis.classFactory(None)
    plugin.initProcessing()

    with tempfile.TemporaryDirectory() as folder:
        tiny = model == MODEL
        names = (30, 20, 10) if tiny else (10, 20, 30, 40, 50, 70)
        vrt = str(Path(folder) / "landsat.vrt")
        stacked = gdal.BuildVRT(vrt, [str(SAMPLE / f"lsat7_2000_{b}.tif") for b in names], separate=True)
        stacked = None  # closing writes the VRT  # noqa: F841
        output = str(Path(folder) / "land_cover.tif")
        processing.runAndLoadResults(
            "s5geo:segment",
            {"INPUT": vrt, "MODEL": str(model), "WINDOW": 128 if tiny else 64, "OUTPUT": output},
        )
        classes_layer = next(iter(QgsProject.instance().mapLayers().values()))
        rgb = QgsRasterLayer(vrt, "Landsat 7 (bands 3-2-1)")
        if not tiny:
            from qgis.core import QgsMultiBandColorRenderer

            renderer = QgsMultiBandColorRenderer(rgb.dataProvider(), 3, 2, 1)
            rgb.setRenderer(renderer)
            rgb.setDefaultContrastEnhancement()
        left = render([rgb], rgb.extent(), SIZE)
        right = render([classes_layer], rgb.extent(), SIZE)

        legend_width = 190
        image = QImage(2 * SIZE + legend_width + 30, SIZE + 40, QImage.Format.Format_ARGB32)
        image.fill(QColor(255, 255, 255))
        painter = QPainter(image)
        painter.setFont(QFont("DejaVu Sans", 11))
        painter.drawText(10, 22, "Input: NC Landsat sample")
        painter.drawText(SIZE + 20, 22, f"{classes_layer.name()} (s5geo:segment)")
        painter.drawImage(10, 30, left)
        painter.drawImage(SIZE + 20, 30, right)
        y = 50
        for entry in classes_layer.renderer().classes():
            painter.fillRect(QRectF(2 * SIZE + 30, y, 22, 16), entry.color)
            painter.setPen(QColor(40, 40, 40))
            painter.drawRect(QRectF(2 * SIZE + 30, y, 22, 16))
            painter.drawText(2 * SIZE + 60, y + 13, entry.label)
            y += 26
        painter.end()
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        image.save(str(OUTPUT))
        QgsProject.instance().clear()
        rgb = classes_layer = None  # release the VRT before its folder goes
    plugin.unload()
    return OUTPUT


if __name__ == "__main__":
    print(main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else MODEL))
