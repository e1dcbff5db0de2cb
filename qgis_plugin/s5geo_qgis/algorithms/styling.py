"""Layer post-processors that style the outputs once Processing loads them into the project."""

from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsColorRampShader,
    QgsFillSymbol,
    QgsGradientColorRamp,
    QgsMapLayer,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
    QgsRasterLayer,
    QgsRasterShader,
    QgsRendererCategory,
    QgsSingleBandPseudoColorRenderer,
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


#: Confidence ramp, red (unsure) over yellow to green (sure): ColorBrewer RdYlGn end points.
CONFIDENCE_RAMP = ((0.0, (215, 25, 28), "0 unsure"), (0.5, (255, 255, 191), "0.5"),
                   (1.0, (26, 150, 65), "1 sure"))  # fmt: skip


def confidence_renderer(layer: QgsRasterLayer) -> QgsSingleBandPseudoColorRenderer:
    """Return a red-yellow-green ramp of band 1 over 0..1 (the confidence of the chosen class)."""
    ramp = QgsGradientColorRamp(QColor(*CONFIDENCE_RAMP[0][1]), QColor(*CONFIDENCE_RAMP[-1][1]))
    shader_function = QgsColorRampShader(0.0, 1.0, ramp)
    shader_function.setColorRampType(QgsColorRampShader.Type.Interpolated)
    shader_function.setColorRampItemList(
        [QgsColorRampShader.ColorRampItem(v, QColor(*rgb), label) for v, rgb, label in CONFIDENCE_RAMP]
    )
    shader = QgsRasterShader(0.0, 1.0)
    shader.setRasterShaderFunction(shader_function)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    return renderer


def expand_legend(layer: QgsMapLayer, context: QgsProcessingContext) -> None:
    """Expand the layer's legend in the layer tree (its classes are shown without a click)."""
    project = context.project() or QgsProject.instance()
    node = project.layerTreeRoot().findLayer(layer.id())
    if node is not None:
        node.setExpanded(True)


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
        layer.emitStyleChanged()
        layer.triggerRepaint()
        expand_legend(layer, context)

    @classmethod
    def attach(cls, context: QgsProcessingContext, path: str, classes: Classes, name: str) -> None:
        """Style the output ``path`` when Processing loads it on completion (no-op otherwise)."""
        if not context.willLoadLayerOnCompletion(path):
            return
        processor = cls(classes, name)
        _ALIVE.append(processor)
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(processor)


class ConfidenceStyle(QgsProcessingLayerPostProcessorInterface):
    """Styles a confidence raster with a 0..1 red-yellow-green ramp and names the layer."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def postProcessLayer(  # noqa: N802 - QGIS API name
        self, layer: QgsMapLayer, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        """Apply the ramp once the layer is in the project."""
        if not isinstance(layer, QgsRasterLayer):
            return
        layer.setRenderer(confidence_renderer(layer))
        layer.setName(self.name)
        layer.emitStyleChanged()
        layer.triggerRepaint()
        expand_legend(layer, context)

    @classmethod
    def attach(cls, context: QgsProcessingContext, path: str, name: str) -> None:
        """Style the output ``path`` when Processing loads it on completion (no-op otherwise)."""
        if not context.willLoadLayerOnCompletion(path):
            return
        processor = cls(name)
        _ALIVE.append(processor)
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(processor)
