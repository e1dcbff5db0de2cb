"""Processing algorithm "Vectorize land-cover map"."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .base import S5GeoAlgorithm
from .styling import ClassStyle


class VectorizeAlgorithm(S5GeoAlgorithm):
    """Class raster -> polygons per class, with minimum area and simplification, styled by class."""

    INPUT = "INPUT"
    MIN_AREA = "MIN_AREA"
    SIMPLIFY = "SIMPLIFY"
    OUTPUT = "OUTPUT"

    def name(self) -> str:  # noqa: D102
        return "vectorize"

    def displayName(self) -> str:  # noqa: N802, D102
        return self.tr("Vectorize land-cover map")

    def shortHelpString(self) -> str:  # noqa: N802, D102
        return self.tr(
            "Turns a class raster (band 1, e.g. the output of Segment raster) into polygons with "
            "the attributes class_id, class_name and area_m2, styled with the class colours.\n\n"
            "Minimum area: regions smaller than this many square map units are merged into their "
            "largest neighbour before polygonising (GDAL sieve); nodata stays nodata.\n\n"
            "Simplify: Douglas-Peucker tolerance in map units applied to each polygon (polygons "
            "stay valid; neighbours may no longer share edges exactly - use `s5geo vectorize "
            "--simplify` for gap-free simplification)."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802, D102
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Land-cover map")))
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MIN_AREA,
                self.tr("Minimum area (square map units)"),
                type=QgsProcessingParameterNumber.Type.Double,
                defaultValue=0.0,
                minValue=0.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SIMPLIFY,
                self.tr("Simplification tolerance (map units)"),
                type=QgsProcessingParameterNumber.Type.Double,
                defaultValue=0.0,
                minValue=0.0,
            )
        )
        output = QgsProcessingParameterVectorDestination(
            self.OUTPUT,
            self.tr("Land-cover polygons"),
            type=QgsProcessing.SourceType.TypeVectorPolygon,
        )
        output.setSupportsNonFileBasedOutput(False)
        self.addParameter(output)

    def processAlgorithm(  # noqa: N802, D102
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        from ..runtime import vectorize as vectorize_runtime
        from ..runtime.gdal_io import RasterError

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, self.INPUT))
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        try:
            result = vectorize_runtime.vectorize(
                layer.source(),
                output,
                min_area=self.parameterAsDouble(parameters, self.MIN_AREA, context),
                simplify=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
                progress=feedback.setProgress,
                is_canceled=feedback.isCanceled,
            )
        except vectorize_runtime.CanceledError as error:
            raise QgsProcessingException(self.tr("Canceled: no output was written.")) from error
        except (ValueError, RasterError) as error:
            raise QgsProcessingException(f"{layer.name()}: {error}") from error
        feedback.pushInfo(f"Wrote {result.features} polygons to {output}")
        classes = {
            value: result.classes.get(value, (f"class {value}", (128, 128, 128)))
            for value in result.present
        }
        ClassStyle.attach(context, output, classes, self.tr("Land-cover polygons"))
        return {self.OUTPUT: output}
