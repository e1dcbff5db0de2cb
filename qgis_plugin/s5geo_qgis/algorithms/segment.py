"""Processing algorithm "Segment raster (land cover)"."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterBand,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
    QgsUnitTypes,
)

from ..runtime import deps
from .base import S5GeoAlgorithm
from .styling import ClassStyle

DEVICE_OPTIONS = ("auto", "cpu", "cuda")
BLEND_OPTIONS = ("cosine", "linear", "none")


def warn(feedback: QgsProcessingFeedback, message: str) -> None:
    """Push a warning (``pushWarning`` exists from QGIS 3.20; else a non-fatal error)."""
    if hasattr(feedback, "pushWarning"):
        feedback.pushWarning(message)
    else:
        feedback.reportError(message, False)


def dependency_problem(model_path: str) -> str | None:
    """Return the install message when the packages needed to run ``model_path`` are missing."""
    from ..runtime.model import CHECKPOINT_SUFFIXES

    if Path(model_path).suffix.lower() in CHECKPOINT_SUFFIXES:
        if not deps.torch_available():
            return (
                f"{model_path} is an s5geo checkpoint, which needs s5geo and torch in QGIS's "
                "Python. Export it to ONNX with `s5geo export CHECKPOINT --output model.onnx`, "
                f"or install them with: {deps.install_command('s5geo')}"
            )
        return None
    try:
        deps.onnxruntime()
    except deps.MissingDependencyError as error:
        return str(error)
    return None


class SegmentAlgorithm(S5GeoAlgorithm):
    """Sliding-window land-cover segmentation of a raster layer with an s5geo model."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    BANDS = "BANDS"
    WINDOW = "WINDOW"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    DEVICE = "DEVICE"
    BLEND = "BLEND"
    MIN_AREA = "MIN_AREA"
    SIMPLIFY = "SIMPLIFY"
    OUTPUT = "OUTPUT"
    CONFIDENCE = "CONFIDENCE"
    POLYGONS = "POLYGONS"
    DEVICE_USED = "DEVICE_USED"

    def name(self) -> str:  # noqa: D102
        return "segment"

    def displayName(self) -> str:  # noqa: N802, D102
        return self.tr("Segment raster (land cover)")

    def shortHelpString(self) -> str:  # noqa: N802, D102
        return self.tr(
            "Segments a raster layer into a land-cover map with an s5geo model (an ONNX file made "
            "by `s5geo export`; an s5geo checkpoint only when s5geo and torch are installed in "
            "QGIS's Python).\n\n"
            "The raster is read window by window (memory does not grow with the raster); "
            "overlapping windows are blended. Window size and overlap default to the model's.\n\n"
            "Band mapping: the raster bands that feed the model's inputs, in the model's order "
            "(default: the bands stored in the model). Pixel values must be in the units the "
            "model was trained on; the model's normalisation is applied here.\n\n"
            "Device: auto uses CUDA when onnxruntime-gpu is installed, else the CPU; the log says "
            "which onnxruntime execution provider ran the model (also the DEVICE_USED output).\n\n"
            "Outputs: class map (GeoTIFF, byte, 255 = nodata, colour table from the model), "
            "optional confidence raster (probability of the chosen class) and optional polygons."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802, D102
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster")))
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL,
                self.tr("Model (ONNX from s5geo export)"),
                behavior=QgsProcessingParameterFile.Behavior.File,
                fileFilter=(
                    "ONNX models (*.onnx);;s5geo checkpoints (*.ckpt *.pt *.pth);;All files (*)"
                ),
            )
        )
        self.addParameter(
            QgsProcessingParameterBand(
                self.BANDS,
                self.tr("Band mapping (raster bands for the model inputs, in order)"),
                parentLayerParameterName=self.INPUT,
                optional=True,
                allowMultiple=True,
            )
        )
        window = QgsProcessingParameterNumber(
            self.WINDOW,
            self.tr("Window size in pixels (empty: the model's)"),
            type=QgsProcessingParameterNumber.Type.Integer,
            optional=True,
            minValue=8,
        )
        self.addParameter(window)
        self.addParameter(
            QgsProcessingParameterNumber(
                self.OVERLAP,
                self.tr("Overlap between windows, fraction (empty: the model's)"),
                type=QgsProcessingParameterNumber.Type.Double,
                optional=True,
                minValue=0.0,
                maxValue=0.9,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.BATCH_SIZE,
                self.tr("Batch size (windows per model call)"),
                type=QgsProcessingParameterNumber.Type.Integer,
                defaultValue=4,
                minValue=1,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.DEVICE,
                self.tr("Device"),
                options=[
                    self.tr("auto (CUDA GPU when available)"),
                    self.tr("CPU"),
                    self.tr("CUDA GPU"),
                ],
                defaultValue=0,
            )
        )
        advanced = [
            QgsProcessingParameterEnum(
                self.BLEND,
                self.tr("Blending of overlapping windows"),
                list(BLEND_OPTIONS),
                defaultValue=0,
            ),
            QgsProcessingParameterNumber(
                self.MIN_AREA,
                self.tr("Polygons: minimum area (square map units)"),
                type=QgsProcessingParameterNumber.Type.Double,
                defaultValue=0.0,
                minValue=0.0,
            ),
            QgsProcessingParameterNumber(
                self.SIMPLIFY,
                self.tr("Polygons: simplification tolerance (map units)"),
                type=QgsProcessingParameterNumber.Type.Double,
                defaultValue=0.0,
                minValue=0.0,
            ),
        ]
        for parameter in advanced:
            parameter.setFlags(
                parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced
            )
            self.addParameter(parameter)
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Land-cover map"))
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.CONFIDENCE, self.tr("Confidence"), optional=True, createByDefault=False
            )
        )
        polygons = QgsProcessingParameterVectorDestination(
            self.POLYGONS,
            self.tr("Land-cover polygons"),
            type=QgsProcessing.SourceType.TypeVectorPolygon,
            optional=True,
            createByDefault=False,
        )
        polygons.setSupportsNonFileBasedOutput(False)
        self.addParameter(polygons)
        self.addOutput(
            QgsProcessingOutputString(self.DEVICE_USED, self.tr("Device that ran the model"))
        )

    def checkParameterValues(  # noqa: N802
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> tuple[bool, str]:
        """Refuse to start, with the install command, when the model's runtime is missing."""
        model_path = self.parameterAsFile(parameters, self.MODEL, context)
        problem = dependency_problem(model_path) if model_path else None
        if problem:
            return False, problem
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(  # noqa: N802, D102
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        from ..runtime import model as model_runtime
        from ..runtime import segment as segment_runtime
        from ..runtime import vectorize as vectorize_runtime
        from ..runtime.gdal_io import RasterError

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, self.INPUT))
        model_path = self.parameterAsFile(parameters, self.MODEL, context)
        problem = dependency_problem(model_path)
        if problem:
            raise QgsProcessingException(problem)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.CONFIDENCE, context) or None
        polygons = self.parameterAsOutputLayer(parameters, self.POLYGONS, context) or None
        for path in (output, confidence):
            if path and Path(path).suffix.lower() not in (".tif", ".tiff"):
                raise QgsProcessingException(f"{path}: raster outputs must be GeoTIFF (.tif)")
        device = DEVICE_OPTIONS[self.parameterAsEnum(parameters, self.DEVICE, context)]
        bands = self.parameterAsInts(parameters, self.BANDS, context) or None
        window = self._optional_number(parameters, self.WINDOW, context, integer=True)
        overlap = self._optional_number(parameters, self.OVERLAP, context, integer=False)

        try:
            model = model_runtime.load(model_path, device)
        except (model_runtime.ModelError, deps.MissingDependencyError) as error:
            raise QgsProcessingException(str(error)) from error
        metadata = model.metadata
        feedback.pushInfo(
            f"Model: {model_path} ({metadata.num_classes} classes: {', '.join(metadata.classes)})"
        )
        feedback.pushInfo(f"Device: the model runs on {model.device}")
        if device == "auto" and "CUDA" not in model.device and "cuda" not in model.device:
            feedback.pushInfo(
                "No CUDA GPU is used (this onnxruntime has no CUDA provider or no GPU is "
                "present). For NVIDIA GPUs install onnxruntime-gpu: "
                + deps.install_command("onnxruntime-gpu")
            )
        self._check_resolution(layer, metadata.gsd, feedback)

        source = layer.source()
        has_polygons = bool(polygons)
        scale = 80.0 if has_polygons else 100.0
        try:
            result = segment_runtime.segment(
                source,
                model,
                output,
                confidence=confidence,
                bands=bands,
                window=window,
                overlap=overlap,
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                blend=BLEND_OPTIONS[self.parameterAsEnum(parameters, self.BLEND, context)],
                progress=lambda percent: feedback.setProgress(percent * scale / 100.0),
                is_canceled=feedback.isCanceled,
            )
        except segment_runtime.CanceledError as error:
            raise QgsProcessingException(
                self.tr("CanceledError: no output was written.")
            ) from error
        except (ValueError, RasterError, model_runtime.ModelError) as error:
            raise QgsProcessingException(f"{layer.name()}: {error}") from error
        feedback.pushInfo(f"Wrote {output} ({result.windows} windows)")

        classes = {
            i: (name, rgb)
            for i, (name, rgb) in enumerate(zip(metadata.classes, metadata.colors, strict=True))
        }
        ClassStyle.attach(context, output, classes, self.tr("Land cover"))
        results: dict[str, Any] = {self.OUTPUT: output, self.DEVICE_USED: model.device}
        if confidence:
            results[self.CONFIDENCE] = confidence
        if polygons:
            try:
                vectors = vectorize_runtime.vectorize(
                    output,
                    polygons,
                    min_area=self.parameterAsDouble(parameters, self.MIN_AREA, context),
                    simplify=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
                    progress=lambda percent: feedback.setProgress(80.0 + percent / 5.0),
                    is_canceled=feedback.isCanceled,
                )
            except vectorize_runtime.CanceledError as error:
                for path in (output, confidence):
                    if path:
                        Path(path).unlink(missing_ok=True)
                raise QgsProcessingException(
                    self.tr("CanceledError: no output was written.")
                ) from error
            except (ValueError, RasterError) as error:
                raise QgsProcessingException(str(error)) from error
            feedback.pushInfo(f"Wrote {vectors.features} polygons to {polygons}")
            ClassStyle.attach(context, polygons, classes, self.tr("Land-cover polygons"))
            results[self.POLYGONS] = polygons
        return results

    def _optional_number(
        self, parameters: dict[str, Any], name: str, context: QgsProcessingContext, integer: bool
    ) -> float | int | None:
        value = parameters.get(name)
        if value is None or value == "":
            return None
        if integer:
            return self.parameterAsInt(parameters, name, context)
        return self.parameterAsDouble(parameters, name, context)

    def _check_resolution(
        self, layer: Any, gsd: float | None, feedback: QgsProcessingFeedback
    ) -> None:
        """Warn when the raster's pixel size is far from the resolution the model was trained at."""
        if not gsd or layer.crs().mapUnits() != QgsUnitTypes.DistanceUnit.DistanceMeters:
            return
        pixel = math.sqrt(abs(layer.rasterUnitsPerPixelX() * layer.rasterUnitsPerPixelY()))
        if pixel > 0 and not 0.67 <= pixel / gsd <= 1.5:
            warn(
                feedback,
                f"The raster has {pixel:.3g} m pixels but the model was trained at {gsd:.3g} m; "
                "results may be poor. Resample the raster (e.g. gdal:warpreproject) first.",
            )
