"""Layer post-processors that style the outputs once Processing loads them into the project."""

from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsMapLayer,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

Classes = dict[int, tuple[str, tuple[int, int, int]]]

# QGIS holds post-processors by raw pointer: Python must keep them alive until the layer is loaded.
_ALIVE: list[QgsProcessingLayerPostProcessorInterface] = []


def paletted_renderer(layer: QgsRasterLayer, classes: Classes) -> QgsPalettedRasterRenderer:
    """Return a paletted renderer of band 1 with one entry per class (value, colour, name)."""
    entries = [
        QgsPalettedRasterRenderer.Class(value, QColor(*rgb), name)
        for value, (name, rgb) in sorted(classes.items())
    ]
    return QgsPalettedRasterRenderer(layer.dataProvider(), 1, entries)


def categorized_renderer(classes: Classes, field: str = "class_id") -> QgsCategorizedSymbolRenderer:
    """Return a renderer with one filled category per class, keyed on ``field``."""
    categories = []
    for value, (name, rgb) in sorted(classes.items()):
        symbol = QgsFillSymbol.createSimple(
            {"color": f"{rgb[0]},{rgb[1]},{rgb[2]},255", "outline_color": "35,35,35,255"}
        )
        categories.append(QgsRendererCategory(value, symbol, name))
    return QgsCategorizedSymbolRenderer(field, categories)


class ClassStyle(QgsProcessingLayerPostProcessorInterface):
    """Styles a class raster (paletted) or class polygons (categorized) and names the layer."""

    def __init__(self, classes: Classes, name: str) -> None:
        super().__init__()
        self.classes = dict(classes)
        self.name = name

    def postProcessLayer(  # noqa: N802 - QGIS API name
        self, layer: QgsMapLayer, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        """Apply the renderer once the layer is in the project."""
        if isinstance(layer, QgsRasterLayer):
            layer.setRenderer(paletted_renderer(layer, self.classes))
        elif isinstance(layer, QgsVectorLayer):
            layer.setRenderer(categorized_renderer(self.classes))
        else:
            return
        layer.setName(self.name)
        layer.triggerRepaint()

    @classmethod
    def attach(cls, context: QgsProcessingContext, path: str, classes: Classes, name: str) -> None:
        """Style the output ``path`` when Processing loads it on completion (no-op otherwise)."""
        if not context.willLoadLayerOnCompletion(path):
            return
        processor = cls(classes, name)
        _ALIVE.append(processor)
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(processor)
