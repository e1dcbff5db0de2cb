"""Processing algorithm "Vectorize land-cover map"."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterRasterLayer,
)

from . import checks
from .base import DOCS_URL, S5GeoAlgorithm
from .styling import ClassStyle


class VectorizeAlgorithm(S5GeoAlgorithm):
    """Class raster -> polygons per class, with minimum area and simplification, styled by class."""

    def name(self) -> str:  # noqa: D102
        return "vectorize"

    def displayName(self) -> str:  # noqa: N802, D102
        return self.tr("Vectorize land-cover map")

    def shortHelpString(self) -> str:  # noqa: N802, D102
        return self.tr(
            "Turns a land-cover map (one band of class numbers, such as the output of Segment "
            "raster) into polygons, one per patch of a class, with the class number, class name "
            "and area in square metres, styled with the map's class colours. An image (several "
            "bands, or decimal values) is refused: segment it first.\n\n"
            "Minimum area: patches smaller than this many square metres are merged into their "
            "largest neighbour first, so single stray pixels do not become polygons. No-data "
            "areas stay empty.\n\n"
            "Simplification tolerance: how far, in metres, a simplified edge may move. Each "
            "polygon stays valid, but two neighbours may no longer share their edge exactly; the "
            "s5geo command-line tool simplifies without gaps."
        )

    def tags(self) -> list[str]:  # noqa: D102
        return [
            *super().tags(),
            "vectorize",
            "vectorise",
            "polygonize",
            "polygonise",
            "raster to vector",
            "polygons",
            "sieve",
            "simplify",
        ]

    def helpUrl(self) -> str:  # noqa: N802, D102
        return f"{DOCS_URL}#vectorize-a-land-cover-map"

    def checkParameterValues(  # noqa: N802
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> tuple[bool, str]:
        """Refuse an input that is not a class map (an image, a confidence raster), in plain words."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            return ok, message
        from qgis.core import QgsPalettedRasterRenderer

        paletted = isinstance(layer.renderer(), QgsPalettedRasterRenderer)
        problem = checks.class_map_problem(layer.source(), layer.name(), paletted)
        if problem:
            return False, problem
        return True, ""

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802, D102
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Land-cover map")))
        for parameter in self.polygon_parameters():
            self.addParameter(parameter)
        self.addParameter(self.polygon_destination(self.OUTPUT))

    def processAlgorithm(  # noqa: N802, D102
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        from ..runtime.gdal_io import RasterError
        from ..runtime.vectorize import CanceledError

        layer = self.input_layer(parameters, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        try:
            result = self.polygonize(layer.source(), output, parameters, context, feedback)
        except CanceledError as error:
            raise QgsProcessingException(self.tr("Canceled: no output was written.")) from error
        except (ValueError, RasterError) as error:
            raise QgsProcessingException(f"{layer.name()}: {error}") from error
        feedback.pushInfo(f"Wrote {result.features} polygons to {output}")
        classes = {
            value: result.classes.get(value, (f"class {value}", (128, 128, 128))) for value in result.present
        }
        ClassStyle.attach(context, output, classes, f"{layer.name()} polygons")
        return {self.OUTPUT: output}
