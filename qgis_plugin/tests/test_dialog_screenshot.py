"""The dialogs as an analyst sees them, rendered offscreen: not blank, every label there and readable.

Each test opens a real QGIS dialog (the Processing dialogs of both algorithms, filled in as an analyst
would, and the runtime installer), renders it with ``QWidget.grab()`` and reads what it shows from the
widget tree. With ``S5GEO_SCREENSHOTS`` set to a folder, the PNGs are written there too; the docs keep
them in ``docs/img``::

    S5GEO_SCREENSHOTS=docs/img QT_QPA_PLATFORM=offscreen .venv-qgis/bin/python -m pytest \
        -p no:cacheprovider qgis_plugin/tests/test_dialog_screenshot.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import processing
import pytest
from plugin_helpers import MODEL
from qgis.core import QgsApplication, QgsProcessingContext, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QPoint, Qt
from qgis.PyQt.QtGui import QImage
from qgis.PyQt.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QDialog,
    QGroupBox,
    QLabel,
    QLineEdit,
    QScrollArea,
    QTextBrowser,
    QWidget,
)

#: Width and height of a Processing dialog in a fresh QGIS 3.22 profile (no saved geometry).
DEFAULT_SIZE = (688, 523)
#: The tallest a screenshot may grow to show every parameter without scrolling.
MAX_HEIGHT = 1000
#: Where to write the PNGs too (S5GEO_SCREENSHOTS; relative to the folder pytest started in).
SCREENSHOTS = Path(os.environ["S5GEO_SCREENSHOTS"]).resolve() if os.environ.get("S5GEO_SCREENSHOTS") else None
#: The input layer's name in the screenshots: an RGB orthophoto stored blue, green, red.
LAYER_NAME = "Orthophoto"


@pytest.fixture
def iface(qgis_iface, monkeypatch):
    """pytest-qgis's stub iface, with the real browser model the parameter widgets need."""
    from qgis.gui import QgsBrowserGuiModel

    model = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: model, raising=False)
    return qgis_iface


def settle(widget: QWidget) -> None:
    """Show ``widget`` and let Qt lay it out."""
    widget.show()
    for _ in range(3):
        QgsApplication.processEvents()


def algorithm_dialog(iface, name: str, parameters: dict) -> QDialog:
    """Open the Processing dialog of ``s5geo:<name>`` filled with ``parameters``, at the default size."""
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(f"s5geo:{name}")
    dialog = AlgorithmDialog(algorithm, parent=iface.mainWindow())
    dialog.setParameters(parameters)
    settle(dialog)
    dialog.resize(*DEFAULT_SIZE)  # after showing: QGIS restores the last dialog's size when shown
    settle(dialog)
    expand_advanced(dialog)
    return dialog


def expand_advanced(dialog: QDialog, expanded: bool = True) -> None:
    """Open (or close) the dialog's "Advanced Parameters" group; QGIS opens it collapsed."""
    from qgis.gui import QgsCollapsibleGroupBoxBasic
    from qgis.PyQt import sip

    groups = [
        sip.cast(group, QgsCollapsibleGroupBoxBasic)
        for group in dialog.findChildren(QGroupBox)
        if group.metaObject().className().startswith("QgsCollapsibleGroupBox")
    ]
    assert [group.title() for group in groups] == ["Advanced Parameters"]
    for group in groups:
        group.setCollapsed(not expanded)
    settle(dialog)


def visible_labels(widget: QWidget) -> list[QLabel]:
    """The labels with text that are shown in ``widget``."""
    return [label for label in widget.findChildren(QLabel) if label.isVisible() and label.text().strip()]


def cut_labels(dialog: QWidget, margin: int = 12) -> list[str]:
    """Labels wider than their scrolled panel (less ``margin`` for the group boxes' frames).

    Such a label gives the panel a horizontal scroll bar: the reader must scroll sideways to read it.
    QGIS's own widgets (the "Open output file" check box) are left out: the plugin cannot shorten them.
    """
    cut = []
    for scroll in dialog.findChildren(QScrollArea):
        if not scroll.isVisible():
            continue
        viewport = scroll.viewport()
        for label in visible_labels(scroll.widget()):
            right = label.mapTo(viewport, QPoint(label.sizeHint().width(), 0)).x()
            if right > viewport.width() - margin:
                cut.append(f"{label.text()!r} ends at {right} px of {viewport.width()}")
    return cut


def grow_to_fit(dialog: QWidget) -> None:
    """Make the dialog tall enough to show its parameter panel without scrolling (at most MAX_HEIGHT)."""
    for _ in range(3):
        scrolls = [scroll for scroll in dialog.findChildren(QScrollArea) if scroll.isVisible()]
        extra = max(scroll.verticalScrollBar().maximum() for scroll in scrolls)
        if extra == 0 or dialog.height() >= MAX_HEIGHT:
            return
        dialog.resize(dialog.width(), min(dialog.height() + extra, MAX_HEIGHT))
        settle(dialog)


def screenshot(widget: QWidget, name: str, tmp_path: Path) -> QImage:
    """Render ``widget``, check the image is a real picture, save it (and to S5GEO_SCREENSHOTS if set)."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert (image.width(), image.height()) == (widget.width(), widget.height())
    assert 400 <= image.width() <= 1200 and 300 <= image.height() <= MAX_HEIGHT, image.size()
    pixels = pixel_array(image)
    colours, counts = np.unique(pixels, return_counts=True)
    assert len(colours) >= 16, f"{name}: only {len(colours)} colours, the rendering is blank"
    assert counts.max() / pixels.size < 0.9, f"{name}: one colour covers {counts.max() / pixels.size:.0%}"
    # 256 colours (the most frequent; the rest are anti-aliasing shades) keep the PNG small for the docs.
    table = [int(colour) for colour in colours[np.argsort(counts)[::-1][:256]]]
    small = image.convertToFormat(
        QImage.Format.Format_Indexed8, table, Qt.ImageConversionFlag.ThresholdDither
    )
    folders = [tmp_path] + ([SCREENSHOTS] if SCREENSHOTS else [])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        assert small.save(str(folder / f"{name}.png"), "PNG", 0)  # 0: the smallest file
    return image


def pixel_array(image: QImage) -> np.ndarray:
    """The pixels of an RGB32 image as a ``height x width`` array of 0xffRRGGBB values."""
    data = image.constBits()
    data.setsize(image.sizeInBytes())
    rows = np.frombuffer(data, np.uint32).reshape(image.height(), image.bytesPerLine() // 4)
    return rows[:, : image.width()].copy()


def project_context() -> QgsProcessingContext:
    """A Processing context that finds the project's layers, as the dialog's does."""
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    return context


def buttons(widget: QWidget) -> set[str]:
    """Texts of the visible buttons."""
    return {button.text() for button in widget.findChildren(QAbstractButton) if button.isVisible()}


def check_algorithm_dialog(dialog: QDialog, must_show: list[str]) -> None:
    """Every parameter labelled and readable at the default size, help shown, Run and Help there."""
    labels = {label.text() for label in visible_labels(dialog)}
    missing = [text for text in must_show if text not in labels]
    assert missing == [], f"not shown: {missing}; shown: {sorted(labels)}"
    algorithm = dialog.algorithm()
    for parameter in algorithm.parameterDefinitions():
        assert any(text.startswith(parameter.description()) for text in labels), parameter.name()
    assert cut_labels(dialog) == [], "labels cut off at the default dialog width"
    assert {"Run", "Close", "Help"} <= buttons(dialog)
    help_text = " ".join(b.toPlainText() for b in dialog.findChildren(QTextBrowser) if b.isVisible())
    assert algorithm.shortHelpString().split("\n")[0][:60] in help_text


def test_segment_dialog(provider, iface, raster, tmp_path, qgis_new_project, monkeypatch) -> None:
    """Segment, filled in for an orthophoto stored blue, green, red: band order 3,2,1."""
    layer = QgsRasterLayer(str(raster), LAYER_NAME)
    QgsProject.instance().addMapLayer(layer)
    monkeypatch.chdir(MODEL.parent)  # the model field shows the file name, not this checkout's path
    dialog = algorithm_dialog(
        iface, "segment", {"INPUT": layer.id(), "MODEL": MODEL.name, "BANDS": "3,2,1", "BATCH_SIZE": 8}
    )
    check_algorithm_dialog(
        dialog,
        [
            "Input raster",
            "Model (ONNX from s5geo export)",
            "Band order (empty: model's) [optional]",
            "Device",
            "Land-cover map",
            "Confidence [optional]",
            "Land-cover polygons [optional]",
        ],
    )
    combos = {combo.currentText() for combo in dialog.findChildren(QComboBox) if combo.isVisible()}
    assert any(text.startswith(LAYER_NAME) for text in combos), combos
    edits = {edit.text() for edit in dialog.findChildren(QLineEdit) if edit.isVisible()}
    assert {MODEL.name, "3,2,1"} <= edits, edits
    band_label = next(label for label in visible_labels(dialog) if label.text().startswith("Band order"))
    assert "3,2,1" in band_label.toolTip(), "the band order's tooltip gives an example"

    parameters = dialog.createProcessingParameters()
    assert parameters["BANDS"] == "3,2,1" and parameters["BATCH_SIZE"] == 8
    assert dialog.algorithm().checkParameterValues(parameters, project_context()) == (True, "")
    expand_advanced(dialog, False)  # the screenshot shows what opens, the advanced group closed
    grow_to_fit(dialog)
    screenshot(dialog, "qgis_dialog_segment", tmp_path)
    dialog.close()


def test_vectorize_dialog(provider, iface, raster, tmp_path, qgis_new_project) -> None:
    """Vectorize, filled in with the land-cover map Segment just added."""
    source = QgsRasterLayer(str(raster), LAYER_NAME)
    QgsProject.instance().addMapLayer(source)
    processing.runAndLoadResults(
        "s5geo:segment", {"INPUT": source.id(), "MODEL": str(MODEL), "OUTPUT": str(tmp_path / "map.tif")}
    )
    classes = next(
        layer for layer in QgsProject.instance().mapLayers().values() if "land cover" in layer.name()
    )
    dialog = algorithm_dialog(
        iface, "vectorize", {"INPUT": classes.id(), "MIN_AREA": 900.0, "SIMPLIFY": 15.0}
    )
    check_algorithm_dialog(
        dialog,
        ["Land-cover map", "Minimum area (m²)", "Simplification tolerance (m)", "Land-cover polygons"],
    )
    combos = {combo.currentText() for combo in dialog.findChildren(QComboBox) if combo.isVisible()}
    assert any(text.startswith(classes.name()) for text in combos), combos
    edits = {edit.text() for edit in dialog.findChildren(QLineEdit) if edit.isVisible()}
    assert {"900", "15.0"} <= edits, f"areas in whole m², tolerance to 0.1 m: {edits}"

    parameters = dialog.createProcessingParameters()
    assert (parameters["MIN_AREA"], parameters["SIMPLIFY"]) == (900.0, 15.0)
    assert dialog.algorithm().checkParameterValues(parameters, project_context()) == (True, "")
    grow_to_fit(dialog)
    screenshot(dialog, "qgis_dialog_vectorize", tmp_path)
    dialog.close()


def test_installer_dialog_on_first_run(iface, tmp_path, monkeypatch) -> None:
    """The runtime installer as a new user meets it: runtime missing, a build to choose, Install."""
    from s5geo_qgis import installer
    from s5geo_qgis.gui.installer_dialog import InstallerDialog

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    profile = "~/.local/share/QGIS/QGIS3/profiles/default"  # the folder shown, nothing is written
    dialog = InstallerDialog(iface.mainWindow(), target=installer.target_dir(profile))
    settle(dialog)
    dialog.resize(DEFAULT_SIZE[0], 420)
    settle(dialog)
    labels = [label.text() for label in visible_labels(dialog)]
    assert any(f"into {profile}/s5geo_qgis/python/py3." in text for text in labels), labels
    assert "onnxruntime is not installed." in labels and "Build:" in labels
    builds = [dialog.build.itemText(i) for i in range(dialog.build.count())]
    assert builds == ["CPU (works on every computer)", "NVIDIA GPU (CUDA; needs an NVIDIA driver)"]
    assert {"Install", "Close"} <= buttons(dialog)
    assert dialog.install_button.isEnabled()
    for label in visible_labels(dialog):
        assert label.wordWrap() or label.sizeHint().width() <= label.width(), label.text()
    screenshot(dialog, "qgis_dialog_installer", tmp_path)
    dialog.close()
