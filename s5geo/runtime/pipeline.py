"""The window pipeline: read -> predict -> blend -> encode -> write, threaded and cancellable.

Three stages overlap: a reader thread reads and normalises the next batch of windows, the calling
thread runs the model, and a writer thread stitches, encodes and hands finished rows to the
caller's writer. At most one batch waits in each stage, so memory stays bounded; the windows are
generated lazily (:func:`~s5geo.runtime.tiling.iter_windows`), so it does not grow with the number
of windows either. Windows without valid data are never predicted, and windows a cheap
``has_data`` test rules out are not even read.

The pipeline does no file I/O itself: ``s5geo segment`` plugs in rasterio, the QGIS plugin GDAL.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from s5geo.errors import S5GeoError
from s5geo.runtime.arrays import normalise, pad_to
from s5geo.runtime.outputs import OutputSpec, encode
from s5geo.runtime.predictor import Predictor
from s5geo.runtime.tiling import BlendMode, Block, StreamingStitcher, Window, WindowGrid, iter_windows

#: ``read(window, out)`` fills ``out`` (float32 ``C x h x w`` raw values of the selected bands) and
#: returns the ``h x w`` boolean mask of pixels with data.
ReadWindow = Callable[[Window, np.ndarray], np.ndarray]
#: ``write_rows(row, arrays)`` receives full-width rows starting at ``row``: one
#: ``bands x n x width`` array per output kind.
WriteRows = Callable[[int, dict[str, np.ndarray]], None]


class CanceledError(RuntimeError):
    """The run was canceled through ``is_canceled``."""


def segment_windows(
    grid: WindowGrid,
    read: ReadWindow,
    predictor: Predictor,
    specs: dict[str, OutputSpec],
    write_rows: WriteRows,
    *,
    batch_size: int = 4,
    blend: BlendMode = "cosine",
    has_data: Callable[[Window], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> int:
    """Predict every window of ``grid`` and hand the encoded rows to ``write_rows``, top to bottom.

    Args:
        grid: the window grid over the raster.
        read: reads one window (see :data:`ReadWindow`); runs in the reader thread.
        predictor: the model (its metadata gives the normalisation and the classes).
        specs: the outputs to encode (:func:`~s5geo.runtime.outputs.output_specs`).
        write_rows: receives finished rows (see :data:`WriteRows`); runs in the writer thread.
        batch_size: windows per forward pass.
        blend: how overlapping windows are merged.
        has_data: optional cheap test; windows it rules out are neither read nor predicted.
        progress: called as ``progress(done, total)`` windows after each batch.
        is_canceled: polled before each batch; True stops the run with :class:`CanceledError`.

    Returns:
        The number of windows the model predicted.
    """
    if batch_size < 1:
        raise S5GeoError(f"batch size must be positive, got {batch_size}")
    meta = predictor.metadata
    k = meta.num_classes
    logits = getattr(predictor, "returns_logits", True)
    stitcher = StreamingStitcher(grid, k, blend, normalise=len(specs) > 1)
    n_cols = grid.shape[1]
    total = len(grid)
    stripe: dict[str, np.ndarray] = {}
    top = [0]

    def put(block: Block) -> None:
        if block.col == 0:
            top[0] = block.row
            h = block.data.shape[1]
            stripe.clear()
            stripe.update({key: np.empty((s.count, h, grid.width), s.dtype) for key, s in specs.items()})
        _, h, w = block.data.shape
        for key, data in encode(block.data, block.weight > 0, specs, logits).items():
            stripe[key][:, :, block.col : block.col + w] = data
        if block.col + w == grid.width:
            write_rows(top[0], dict(stripe))

    def consume(chunk: list[Window], scores: np.ndarray, valid: np.ndarray) -> None:
        for window, values, mask in zip(chunk, scores, valid, strict=True):
            for block in stitcher.add(window, values, mask):
                put(block)

    def read_batch(chunk: list[Window]) -> tuple[np.ndarray, np.ndarray]:
        shape = (len(chunk), meta.in_channels, grid.window_height, grid.window_width)
        raw = np.empty(shape, dtype=np.float32)
        valid = np.empty((shape[0], *shape[2:]), dtype=bool)
        for n, window in enumerate(chunk):
            valid[n] = read(window, raw[n])
        # Normalised here, in the reader thread: numpy releases the GIL on large arrays.
        return normalise(raw, valid, meta), valid

    predicted = 0
    batches = _prefetch(_chunks(iter_windows(grid, has_data), batch_size), read_batch)
    with ThreadPoolExecutor(1, thread_name_prefix="s5geo-write") as post, contextlib.closing(batches):
        pending: Future | None = None
        for chunk, x, valid in batches:
            if is_canceled is not None and is_canceled():
                raise CanceledError("segmentation canceled")
            scores, n = _predict(predictor, grid, x, valid)
            predicted += n
            if pending is not None:
                pending.result()
            pending = post.submit(consume, chunk, scores, valid)
            if progress is not None:
                last = chunk[-1]
                progress(last.i * n_cols + last.j + 1, total)
        if pending is not None:
            pending.result()
        if is_canceled is not None and is_canceled():
            raise CanceledError("segmentation canceled")
        post.submit(lambda: [put(block) for block in stitcher.finish()]).result()
    if not stitcher.finished():
        raise RuntimeError("not all windows were stitched")
    if progress is not None:
        progress(total, total)
    return predicted


def _chunks(windows: Iterator[Window], size: int) -> Iterator[list[Window]]:
    while chunk := list(itertools.islice(windows, size)):
        yield chunk


def _prefetch(
    chunks: Iterator[list[Window]], read: Callable[[list[Window]], tuple[np.ndarray, np.ndarray]]
) -> Generator[tuple[list[Window], np.ndarray, np.ndarray], None, None]:
    """Yield ``(chunk, x, valid)``, reading the next chunk in a background thread."""
    with ThreadPoolExecutor(1, thread_name_prefix="s5geo-read") as pool:
        chunk = next(chunks, None)
        pending = pool.submit(read, chunk) if chunk is not None else None
        while chunk is not None and pending is not None:
            following = next(chunks, None)
            x, valid = pending.result()
            pending = pool.submit(read, following) if following is not None else None
            yield chunk, x, valid
            chunk = following


def _predict(
    predictor: Predictor, grid: WindowGrid, x: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, int]:
    """Return the scores of a batch (zeros for windows without data, which are not predicted)."""
    k = predictor.metadata.num_classes
    has_data = valid.reshape(valid.shape[0], -1).any(axis=1)
    out = None
    if not has_data.all():
        out = np.zeros((x.shape[0], k, grid.window_height, grid.window_width), np.float32)
        if not has_data.any():
            return out, 0
        x = x[has_data]
    scores = predictor.predict(pad_to(x, grid.window, grid.window))
    if scores.shape[1] != k:
        raise S5GeoError(f"model predicts {scores.shape[1]} classes but its metadata lists {k}")
    scores = scores[:, :, : grid.window_height, : grid.window_width].astype(np.float32, copy=False)
    if out is None:
        return scores, len(scores)
    out[has_data] = scores
    return out, len(scores)
