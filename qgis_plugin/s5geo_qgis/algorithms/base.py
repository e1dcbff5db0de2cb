"""What every s5geo Processing algorithm shares: group, translation, input layer, polygon options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterNumber,
    QgsProcessingParameterVectorDestination,
)
from qgis.PyQt.QtCore import QCoreApplication

#: The plugin's documentation page (the algorithms' Help button opens a section of it).
DOCS_URL = "https://github.com/s5geo/s5geo/blob/main/docs/qgis.md"

#: Words an analyst may type in the toolbox search to find the s5geo tools.
SEARCH_TAGS = [
    "land cover",
    "landcover",
    "land use",
    "classification",
    "classify",
    "classifier",
    "deep learning",
    "machine learning",
    "ai",
    "neural network",
    "onnx",
    "remote sensing",
    "satellite",
    "aerial",
    "orthophoto",
    "s5geo",
]


class S5GeoAlgorithm(QgsProcessingAlgorithm):
    """Base of the s5geo algorithms (all in the "Land cover" group)."""

    INPUT = "INPUT"
    MIN_AREA = "MIN_AREA"
    SIMPLIFY = "SIMPLIFY"
    OUTPUT = "OUTPUT"

    def tr(self, text: str) -> str:
        """Translate ``text`` in the context of the concrete algorithm class."""
        return QCoreApplication.translate(type(self).__name__, text)

    def createInstance(self) -> S5GeoAlgorithm:  # noqa: N802, D102
        return type(self)()

    def tags(self) -> list[str]:  # noqa: D102
        return list(SEARCH_TAGS)

    def group(self) -> str:  # noqa: D102
        return self.tr("Land cover")

    def groupId(self) -> str:  # noqa: N802, D102
        return "landcover"

    def number_parameter(
        self,
        name: str,
        description: str,
        integer: bool = False,
        help_text: str = "",
        decimals: int | None = None,
        **options: Any,
    ) -> QgsProcessingParameterNumber:
        """A number parameter (decimal unless ``integer``); ``options`` as QGIS names them.

        ``help_text`` is the label's tooltip; ``decimals`` how many the dialog shows (QGIS: 6).
        """
        number = QgsProcessingParameterNumber.Type
        kind = number.Integer if integer else number.Double
        parameter = QgsProcessingParameterNumber(name, self.tr(description), type=kind, **options)
        if help_text:
            parameter.setHelp(self.tr(help_text))
        if decimals is not None:
            parameter.setMetadata({"widget_wrapper": {"decimals": decimals}})
        return parameter

    def polygon_parameters(self, prefix: str = "") -> list[QgsProcessingParameterNumber]:
        """The polygons' minimum area and simplification tolerance, labelled after ``prefix``."""
        labels = {
            self.MIN_AREA: (
                "minimum area (m²)",
                "Patches smaller than this many square metres are merged into their largest neighbour.",
                0,
            ),
            self.SIMPLIFY: (
                "simplification tolerance (m)",
                "How far a simplified polygon edge may move, in metres (0: no simplification).",
                1,
            ),
        }
        parameters = []
        for name, (text, help_text, decimals) in labels.items():
            label = prefix + text
            label = label[0].upper() + label[1:]
            parameters.append(
                self.number_parameter(
                    name, label, help_text=help_text, decimals=decimals, defaultValue=0.0, minValue=0.0
                )
            )
        return parameters

    def polygon_destination(self, name: str, **options: Any) -> QgsProcessingParameterVectorDestination:
        """A file destination for the "Land-cover polygons"; ``options`` as QGIS names them."""
        polygons = QgsProcessingParameterVectorDestination(
            name,
            self.tr("Land-cover polygons"),
            type=QgsProcessing.SourceType.TypeVectorPolygon,
            **options,
        )
        polygons.setSupportsNonFileBasedOutput(False)
        return polygons

    def input_layer(self, parameters: dict[str, Any], context: QgsProcessingContext) -> Any:
        """The INPUT raster layer; raises QGIS's own error when it cannot be loaded."""
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, self.INPUT))
        return layer

    def polygonize(
        self,
        classmap: str,
        output: str,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        progress: Callable[[float], None] | None = None,
    ) -> Any:
        """Vectorize ``classmap`` into ``output`` with the MIN_AREA and SIMPLIFY parameters.

        ``progress`` receives percents (default: the feedback's). Raises the runtime's errors
        (``CanceledError``, ``ValueError``, ``RasterError``) as they are.
        """
        from ..runtime import vectorize as vectorize_runtime

        return vectorize_runtime.vectorize(
            classmap,
            output,
            min_area=self.parameterAsDouble(parameters, self.MIN_AREA, context),
            simplify=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
            progress=progress or feedback.setProgress,
            is_canceled=feedback.isCanceled,
        )
