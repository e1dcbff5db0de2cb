"""Sliding-window segmentation of a GDAL raster with the s5geo inference core.

The window pipeline, the blending and the output encodings are the vendored ``s5geo.runtime``
(exactly what ``s5geo segment`` runs); this module brings only the GDAL reader and writer. Outputs
go to temporary names beside the destination and are renamed only when complete; on cancel or
error they are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from osgeo import gdal

from . import gdal_io
from .model import Model
from .shared import ModelMetadata, S5GeoError, Window, WindowGrid, bands, outputs, pipeline

#: Value of the class map where the input had nodata.
CLASS_NODATA = outputs.CLASS_NODATA
#: Value of the confidence raster (uint8, probability x 255) where the input had nodata.
CONFIDENCE_NODATA = outputs.CONFIDENCE_NODATA

#: The run was canceled; no output was left behind.
CanceledError = pipeline.CanceledError


@dataclass
class SegmentResult:
    """What a segmentation run produced."""

    class_map: Path
    confidence: Path | None
    device: str
    windows: int
    metadata: ModelMetadata
    log: list[str] = field(default_factory=list)


def resolve_bands(
    metadata: ModelMetadata, band_count: int, bands_: Sequence[int] | None, name: str
) -> list[int]:
    """Return the 1-based raster bands that feed the model inputs, in model order.

    Raises:
        ValueError: the mapping does not fit the model or the raster.
    """
    try:
        return bands.select_bands(metadata, band_count, bands_, name)
    except S5GeoError as error:
        raise ValueError(str(error)) from error


class _Reader:
    """Reads windows of the selected bands and their validity the way ``s5geo segment`` does.

    Valid pixels are those GDAL's mask bands mark valid in every selected band (nodata values,
    alpha bands, per-dataset masks) and, for floating-point bands, finite in every band.
    """

    def __init__(self, dataset: gdal.Dataset, selected: list[int]) -> None:
        self.dataset = dataset
        self.bands = [dataset.GetRasterBand(b) for b in selected]
        self.masked = any(not band.GetMaskFlags() & gdal.GMF_ALL_VALID for band in self.bands)
        self.floating = any(
            gdal.GetDataTypeName(band.DataType).startswith(("Float", "CFloat")) for band in self.bands
        )
        # Blocks GDAL reports empty read as nodata only where every band has a nodata value.
        self.skippable = all(band.GetNoDataValue() is not None for band in self.bands)

    def read(self, window: Window, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` with the raw values of ``window``; return its valid-pixel mask."""
        col, row, width, height = window.col, window.row, window.width, window.height
        valid = np.ones((height, width), dtype=bool)
        for index, band in enumerate(self.bands):
            data = band.ReadAsArray(col, row, width, height, buf_type=gdal.GDT_Float32)
            if data is None:
                raise gdal_io.RasterError(
                    f"cannot read pixels at row {row}, column {col}: {gdal.GetLastErrorMsg()}"
                )
            out[index] = data
            if self.masked:
                valid &= band.GetMaskBand().ReadAsArray(col, row, width, height) > 0
        if self.floating:
            valid &= np.all(np.isfinite(out), axis=0)
        return valid

    def region_has_data(self, row: int, col: int, height: int, width: int) -> bool:
        """False only where GDAL knows the region holds no data (sparse files, VRT gaps).

        The pipeline asks about whole rows and runs of windows first, so empty parts of a huge
        raster are skipped in a few calls.
        """
        if not self.skippable:
            return True
        for band in self.bands:
            flags, _ = band.GetDataCoverageStatus(col, row, width, height)
            if (
                not flags & gdal.GDAL_DATA_COVERAGE_STATUS_EMPTY
                or flags & gdal.GDAL_DATA_COVERAGE_STATUS_DATA
            ):
                return True
        return False


def segment(
    source: str,
    model: Model,
    class_map: str | Path,
    confidence: str | Path | None = None,
    bands: Sequence[int] | None = None,
    window: int | None = None,
    overlap: float | None = None,
    batch_size: int = 4,
    blend: str = "cosine",
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> SegmentResult:
    """Segment ``source`` with ``model`` into a class map (and optionally a confidence raster).

    Args:
        source: raster path (anything GDAL opens).
        model: a loaded model (:func:`s5geo_qgis.runtime.model.load`).
        class_map: destination GeoTIFF of class ids (uint8, colour table, 255 = nodata).
        confidence: optional destination GeoTIFF of the winning class probability (uint8,
            probability x 255 in 1-255, 0 = nodata), as ``s5geo segment --confidence`` writes.
        bands: band mapping (see :func:`resolve_bands`); defaults to the model's bands.
        window: window size in pixels (default: the model's).
        overlap: overlap fraction between windows (default: the model's).
        batch_size: windows per model call.
        blend: ``none``, ``linear`` or ``cosine`` (see the vendored ``tiling`` module).
        progress: called with a percentage after each batch.
        is_canceled: polled between batches; when it returns True the run stops.

    Returns:
        The written outputs.

    Raises:
        CanceledError: ``is_canceled`` returned True (partial outputs were deleted).
    """
    metadata = model.metadata
    dataset = gdal_io.open_raster(source)
    selected = resolve_bands(metadata, dataset.RasterCount, bands, str(source))
    reader = _Reader(dataset, selected)
    try:
        grid = WindowGrid(
            dataset.RasterYSize,
            dataset.RasterXSize,
            int(window or metadata.window_size),
            metadata.overlap if overlap is None else float(overlap),
        )
        kinds = ["classes"] + (["confidence"] if confidence else [])
        specs = outputs.output_specs(metadata, kinds)
    except (S5GeoError, ValueError) as error:
        raise ValueError(str(error)) from error

    finals = {"classes": Path(class_map)}
    if confidence:
        finals["confidence"] = Path(confidence)
    partials = {key: gdal_io.partial_path(path) for key, path in finals.items()}
    datasets: dict[str, gdal.Dataset] = {}
    try:
        for key, spec in specs.items():
            datasets[key] = gdal_io.create_output(dataset, partials[key], spec)
        tile = tuple(datasets["classes"].GetRasterBand(1).GetBlockSize()[::-1])

        def write_tile(row: int, col: int, arrays: dict[str, np.ndarray]) -> None:
            for key, data in arrays.items():
                _write(datasets[key], row, col, data)

        try:
            pipeline.segment_windows(
                grid,
                reader.read,
                model,  # type: ignore[arg-type]
                specs,
                batch_size=max(1, int(batch_size)),
                blend=blend,  # type: ignore[arg-type]
                region_has_data=reader.region_has_data,
                write_tile=write_tile,
                tile_size=tile,
                progress=None if progress is None else lambda done, total: progress(100.0 * done / total),
                is_canceled=is_canceled,
            )
        except S5GeoError as error:
            raise ValueError(str(error)) from error
        for output in datasets.values():
            if output.FlushCache() not in (None, 0):
                raise gdal_io.RasterError(f"GDAL write failed: {gdal.GetLastErrorMsg()}")
        datasets.clear()  # closes the datasets
        for key, final in finals.items():
            gdal_io.finish(partials[key], final)
    except BaseException:
        datasets.clear()
        for path in partials.values():
            gdal_io.remove_quietly(path)
        raise
    finally:
        dataset = None
    return SegmentResult(
        class_map=finals["classes"],
        confidence=finals.get("confidence"),
        device=model.device,
        windows=len(grid),
        metadata=metadata,
    )


def _write(dataset: gdal.Dataset, row: int, col: int, data: np.ndarray) -> None:
    """Write ``bands x h x w`` data at ``(row, col)``."""
    for index in range(data.shape[0]):
        if dataset.GetRasterBand(index + 1).WriteArray(data[index], col, row) != 0:
            raise gdal_io.RasterError(f"GDAL write failed: {gdal.GetLastErrorMsg()}")
