"""Processing algorithm "Segment raster (land cover)"."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsUnitTypes,
)

from .. import installer
from ..runtime import deps
from ..runtime.shared import bands as band_rules
from . import checks
from .base import DOCS_URL, S5GeoAlgorithm
from .styling import ClassStyle, ConfidenceStyle

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
    except deps.MissingDependencyError:
        return installer.missing_runtime_message()
    return None


class SegmentAlgorithm(S5GeoAlgorithm):
    """Sliding-window land-cover segmentation of a raster layer with an s5geo model."""

    MODEL = "MODEL"
    BANDS = "BANDS"
    WINDOW = "WINDOW"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    DEVICE = "DEVICE"
    BLEND = "BLEND"
    CONFIDENCE = "CONFIDENCE"
    POLYGONS = "POLYGONS"
    DEVICE_USED = "DEVICE_USED"

    def name(self) -> str:  # noqa: D102
        return "segment"

    def displayName(self) -> str:  # noqa: N802, D102
        return self.tr("Segment raster (land cover)")

    def shortHelpString(self) -> str:  # noqa: N802, D102
        return self.tr(
            "Classifies every pixel of a raster layer into land-cover classes (water, trees, "
            "buildings...) with a deep-learning model made by s5geo (an ONNX file), and adds the "
            "land-cover map styled with the model's class names and colours.\n\n"
            "Band order: the layer's bands in the order the model wants them, separated by "
            "commas. For a model trained on red, green, blue and a layer stored as blue, green, "
            "red, type 3,2,1. Leave it empty to use the model's own order (matched by band name "
            "when the layer's bands are named like the model's).\n\n"
            "Pixel values must be in the units the model was trained on; the model's own "
            "normalisation is applied. The log warns when the pixel size is far from the one the "
            "model was trained at: resample the layer first (Raster > Projections > Warp).\n\n"
            "The layer is read window by window, so large rasters need no more memory than small "
            "ones; overlapping windows are blended. Window size and overlap default to the "
            "model's.\n\n"
            "Device: auto uses an NVIDIA GPU when the GPU build of the runtime is installed, "
            "otherwise the CPU. The log names the device that ran the model.\n\n"
            "Outputs: the land-cover map (GeoTIFF; 255 = no data), optionally a confidence map "
            "(0 to 1, how sure the model is of each pixel) and polygons of the classes."
        )

    def tags(self) -> list[str]:  # noqa: D102
        return [*super().tags(), "segment", "segmentation", "semantic segmentation", "predict"]

    def helpUrl(self) -> str:  # noqa: N802, D102
        return f"{DOCS_URL}#segment-a-raster"

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802, D102
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster")))
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL,
                self.tr("Model (ONNX from s5geo export)"),
                behavior=QgsProcessingParameterFile.Behavior.File,
                fileFilter=("ONNX models (*.onnx);;s5geo checkpoints (*.ckpt *.pt *.pth);;All files (*)"),
            )
        )
        bands = QgsProcessingParameterString(
            self.BANDS, self.tr("Band order (empty: model's)"), optional=True
        )
        bands.setHelp(
            self.tr(
                "The layer's band numbers in the order the model reads them, separated by commas: "
                "3,2,1 feeds a layer stored blue, green, red to a model trained on red, green, blue. "
                "Empty: the bands named like the model's inputs, otherwise the model's band numbers."
            )
        )
        self.addParameter(bands)
        self.addParameter(
            self.number_parameter(
                self.WINDOW,
                "Window size (empty: model's)",
                True,
                help_text="Side of the square windows the model reads, in pixels.",
                optional=True,
                minValue=8,
            )
        )
        self.addParameter(
            self.number_parameter(
                self.OVERLAP,
                "Overlap (empty: model's)",
                help_text="Fraction of a window shared with its neighbour, 0 to 0.9; overlaps are blended.",
                decimals=2,
                optional=True,
                minValue=0.0,
                maxValue=0.9,
            )
        )
        self.addParameter(
            self.number_parameter(
                self.BATCH_SIZE, "Batch size (windows per model call)", True, defaultValue=4, minValue=1
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
            *self.polygon_parameters("Polygons: "),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Land-cover map")))
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.CONFIDENCE, self.tr("Confidence"), optional=True, createByDefault=False
            )
        )
        self.addParameter(self.polygon_destination(self.POLYGONS, optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputString(self.DEVICE_USED, self.tr("Device that ran the model")))

    def checkParameterValues(  # noqa: N802
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> tuple[bool, str]:
        """Refuse to start, in plain words: missing runtime, not a model, bands that do not fit."""
        model_path = self.parameterAsFile(parameters, self.MODEL, context)
        problem = dependency_problem(model_path) if model_path else None
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok or not model_path:
            return ok, message
        problem = self._model_problem(parameters, context, model_path)
        if problem:
            return False, problem
        return True, ""

    def _model_problem(
        self, parameters: dict[str, Any], context: QgsProcessingContext, model_path: str
    ) -> str | None:
        """Return why the model cannot run on the layer with the band order given (or None)."""
        from ..runtime.model import CHECKPOINT_SUFFIXES

        try:
            chosen = checks.parse_band_order(parameters.get(self.BANDS))
        except ValueError as error:
            return f"Band order: {error}."
        if Path(model_path).suffix.lower() in CHECKPOINT_SUFFIXES:
            return None  # read by torch when the run starts
        try:
            metadata, raw = checks.model_metadata(model_path)
        except checks.ModelFileError as error:
            return f"Model: {error}."
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            return None
        if chosen is None:
            chosen = band_rules.bands_from_names(checks.model_band_names(raw), _band_descriptions(layer))
        return checks.band_problem(layer.name(), layer.bandCount(), metadata.bands, chosen)

    def _bands(
        self, parameters: dict[str, Any], model_path: str, layer: Any, feedback: Any
    ) -> list[int] | None:
        """Return the band order typed by the user, else the one matched by band names, else None."""
        try:
            chosen = checks.parse_band_order(parameters.get(self.BANDS))
        except ValueError as error:
            raise QgsProcessingException(f"Band order: {error}.") from error
        if chosen is not None or Path(model_path).suffix.lower() != ".onnx":
            return chosen
        try:
            _, raw = checks.model_metadata(model_path)
        except checks.ModelFileError:
            return None
        matched = band_rules.bands_from_names(checks.model_band_names(raw), _band_descriptions(layer))
        if matched is not None:
            feedback.pushInfo("Band order from the band names: " + ", ".join(str(b) for b in matched))
        return matched

    def processAlgorithm(  # noqa: N802, D102
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        from ..runtime import model as model_runtime
        from ..runtime import segment as segment_runtime
        from ..runtime import vectorize as vectorize_runtime
        from ..runtime.gdal_io import RasterError

        layer = self.input_layer(parameters, context)
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
        bands = self._bands(parameters, model_path, layer, feedback)
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
        if device == "auto" and "cuda" not in model.device.lower() and installer.nvidia_gpu_present():
            feedback.pushInfo(
                "This computer has an NVIDIA GPU but the CPU build of onnxruntime is installed; "
                f"install the GPU build from {installer.MENU_PATH} to use the GPU."
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
            raise QgsProcessingException(self.tr("CanceledError: no output was written.")) from error
        except (ValueError, RasterError, model_runtime.ModelError) as error:
            raise QgsProcessingException(f"{layer.name()}: {error}") from error
        feedback.pushInfo(f"Wrote {output} ({result.windows} windows)")

        classes = {
            i: (name, rgb)
            for i, (name, rgb) in enumerate(zip(metadata.classes, metadata.colors, strict=True))
        }
        names = result_names(layer.name(), model_path)
        ClassStyle.attach(context, output, classes, names["map"])
        if confidence:
            ConfidenceStyle.attach(context, confidence, names["confidence"])
        results: dict[str, Any] = {self.OUTPUT: output, self.DEVICE_USED: model.device}
        if confidence:
            results[self.CONFIDENCE] = confidence
        if polygons:
            try:
                vectors = self.polygonize(
                    output,
                    polygons,
                    parameters,
                    context,
                    feedback,
                    lambda percent: feedback.setProgress(80.0 + percent / 5.0),
                )
            except vectorize_runtime.CanceledError as error:
                for path in (output, confidence):
                    if path:
                        Path(path).unlink(missing_ok=True)
                raise QgsProcessingException(self.tr("CanceledError: no output was written.")) from error
            except (ValueError, RasterError) as error:
                raise QgsProcessingException(str(error)) from error
            feedback.pushInfo(f"Wrote {vectors.features} polygons to {polygons}")
            ClassStyle.attach(context, polygons, classes, names["polygons"])
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

    def _check_resolution(self, layer: Any, gsd: float | None, feedback: QgsProcessingFeedback) -> None:
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


def result_names(layer: str, model_path: str) -> dict[str, str]:
    """Names of the result layers: ``<layer> land cover (<model>)`` and its siblings."""
    model = Path(model_path).stem
    return {
        "map": f"{layer} land cover ({model})",
        "confidence": f"{layer} confidence ({model})",
        "polygons": f"{layer} land-cover polygons ({model})",
    }


def _band_descriptions(layer: Any) -> list[str]:
    """The layer's band descriptions (GDAL's), band 1 first; empty strings where unnamed."""
    from osgeo import gdal

    dataset = gdal.OpenEx(layer.source(), gdal.OF_RASTER)
    if dataset is None:
        return []
    return [dataset.GetRasterBand(i + 1).GetDescription() for i in range(dataset.RasterCount)]
