"""Sliding-window segmentation of a GDAL raster, block by block, with constant memory.

Windows are read one at a time through GDAL, normalised with the model's metadata, batched,
predicted, blended by the vendored :class:`StreamingStitcher` and written as soon as their rows are
final. Outputs go to temporary names beside the destination and are renamed only when complete; on
cancel or error they are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from osgeo import gdal

from . import gdal_io
from .model import Model
from .shared import Block, ModelMetadata, StreamingStitcher, Window, WindowGrid, argmax, softmax

#: Value of the class map where the input had nodata.
CLASS_NODATA = 255
CONFIDENCE_NODATA = -1.0


class CanceledError(RuntimeError):
    """The run was canceled; no output was left behind."""


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
    metadata: ModelMetadata, band_count: int, bands: Sequence[int] | None, name: str
) -> list[int]:
    """Return the 1-based raster bands that feed the model inputs, in model order.

    Args:
        metadata: model metadata (its ``bands`` are the default mapping).
        band_count: number of bands of the raster.
        bands: user band mapping (model input ``i`` reads raster band ``bands[i]``), or None.
        name: raster name for messages.
    """
    chosen = [int(b) for b in bands] if bands else list(metadata.bands)
    if len(chosen) != metadata.in_channels:
        raise ValueError(
            f"the model takes {metadata.in_channels} bands but the band mapping lists "
            f"{len(chosen)} ({chosen})"
        )
    missing = [b for b in chosen if not 1 <= b <= band_count]
    if missing:
        raise ValueError(
            f"{name} has {band_count} bands; the band mapping asks for band(s) {missing}. "
            "Set the band mapping parameter to the raster bands that match the model's inputs"
        )
    return chosen


class _Reader:
    """Reads and normalises windows of the selected bands."""

    def __init__(self, dataset: gdal.Dataset, bands: list[int], metadata: ModelMetadata) -> None:
        self.dataset = dataset
        self.bands = bands
        self.mean = np.asarray(metadata.mean, np.float32)[:, None, None]
        self.inv_std = 1.0 / np.asarray(metadata.std, np.float32)[:, None, None]
        self.nodata = [dataset.GetRasterBand(b).GetNoDataValue() for b in bands]

    def raw(self, col: int, row: int, width: int, height: int) -> np.ndarray:
        data = self.dataset.ReadAsArray(col, row, width, height, band_list=self.bands)
        if data is None:
            raise gdal_io.RasterError(f"GDAL read failed: {gdal.GetLastErrorMsg()}")
        return np.asarray(data, dtype=np.float32).reshape(len(self.bands), height, width)

    def invalid(self, raw: np.ndarray) -> np.ndarray:
        """Pixels where any selected band is nodata or NaN."""
        bad = np.isnan(raw).any(axis=0)
        for index, value in enumerate(self.nodata):
            if value is not None:
                bad |= raw[index] == np.float32(value)
        return bad

    def window(self, window: Window, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the normalised window padded to ``size`` (reflection) and its valid mask."""
        raw = self.raw(window.col, window.row, window.width, window.height)
        invalid = self.invalid(raw)
        data = (raw - self.mean) * self.inv_std
        data[:, invalid] = 0.0
        # A raster smaller than the window gives a clipped window; pad it so that networks with
        # size constraints (patch size, strides) still get the window size they were built for.
        pad_h, pad_w = max(size - window.height, 0), max(size - window.width, 0)
        if pad_h or pad_w:
            mode = "reflect" if min(window.height, window.width) > 1 else "edge"
            data = np.pad(data, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)
        return data, ~invalid


def _batches(
    grid: WindowGrid, reader: _Reader, batch_size: int
) -> Iterator[tuple[list[Window], np.ndarray, list[np.ndarray]]]:
    windows: list[Window] = []
    arrays: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for window in grid:
        data, valid = reader.window(window, grid.window)
        windows.append(window)
        arrays.append(data)
        masks.append(valid)
        if len(windows) == batch_size:
            yield windows, np.stack(arrays), masks
            windows, arrays, masks = [], [], []
    if windows:
        yield windows, np.stack(arrays), masks


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
        confidence: optional destination GeoTIFF of the winning class probability (float32).
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
    if metadata.num_classes >= CLASS_NODATA:
        raise ValueError(
            f"the model has {metadata.num_classes} classes; at most 254 fit a byte map"
        )
    dataset = gdal_io.open_raster(source)
    selected = resolve_bands(metadata, dataset.RasterCount, bands, str(source))
    reader = _Reader(dataset, selected, metadata)
    grid = WindowGrid(
        dataset.RasterYSize,
        dataset.RasterXSize,
        int(window or metadata.window_size),
        metadata.overlap if overlap is None else float(overlap),
    )
    stitcher = StreamingStitcher(grid, metadata.num_classes, blend)  # type: ignore[arg-type]

    finals = [Path(class_map)] + ([Path(confidence)] if confidence else [])
    partials = [gdal_io.partial_path(path) for path in finals]
    outputs: list[gdal.Dataset] = []
    try:
        classes_ds = gdal_io.create_like(dataset, partials[0], gdal.GDT_Byte)
        outputs.append(classes_ds)
        classes_ds.GetRasterBand(1).SetNoDataValue(CLASS_NODATA)
        gdal_io.set_class_style(classes_ds, metadata)
        if confidence:
            confidence_ds = gdal_io.create_like(dataset, partials[1], gdal.GDT_Float32)
            outputs.append(confidence_ds)
            confidence_ds.GetRasterBand(1).SetNoDataValue(CONFIDENCE_NODATA)
            confidence_ds.GetRasterBand(1).SetDescription("confidence")

        done = 0
        for windows, batch, masks in _batches(grid, reader, max(1, int(batch_size))):
            if is_canceled is not None and is_canceled():
                raise CanceledError("segmentation canceled")
            logits = model.predict(batch)[:, :, : grid.window_height, : grid.window_width]
            for win, values, valid in zip(windows, logits, masks, strict=True):
                for block in stitcher.add(win, values, valid):
                    _write_block(block, outputs)
            done += len(windows)
            if progress is not None:
                progress(100.0 * done / len(grid))
        if is_canceled is not None and is_canceled():
            raise CanceledError("segmentation canceled")
        for output in outputs:
            if output.FlushCache() not in (None, 0):
                raise gdal_io.RasterError(f"GDAL write failed: {gdal.GetLastErrorMsg()}")
        outputs.clear()  # closes the datasets
        classes_ds = confidence_ds = None
        for partial, final in zip(partials, finals, strict=True):
            gdal_io.finish(partial, final)
    except BaseException:
        outputs.clear()
        classes_ds = confidence_ds = None
        for path in partials:
            gdal_io.remove_quietly(path)
        raise
    finally:
        dataset = None
    return SegmentResult(
        class_map=finals[0],
        confidence=finals[1] if confidence else None,
        device=model.device,
        windows=len(grid),
        metadata=metadata,
    )


def _write_block(block: Block, outputs: list[gdal.Dataset]) -> None:
    classes = argmax(block.data)
    best = softmax(block.data).max(axis=0) if len(outputs) > 1 else None
    invalid = block.weight <= 0  # nodata in every window that covers the pixel
    if invalid.any():
        classes[invalid] = CLASS_NODATA
        if best is not None:
            best[invalid] = CONFIDENCE_NODATA
    outputs[0].GetRasterBand(1).WriteArray(classes, block.col, block.row)
    if best is not None:
        outputs[1].GetRasterBand(1).WriteArray(best, block.col, block.row)
