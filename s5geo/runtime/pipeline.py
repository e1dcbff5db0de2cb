"""The window pipeline: read -> predict -> blend -> encode -> write, threaded and cancellable.

Three stages overlap: a reader thread reads and normalises the next batch of windows, the calling
thread runs the model, and a writer thread stitches, encodes and hands finished rows to the
caller's writer. At most one batch waits in each stage, so memory stays bounded; the windows are
generated lazily (:func:`~s5geo.runtime.tiling.iter_windows`), so it does not grow with the number
of windows either. Windows without valid data are never predicted; a ``region_has_data`` test
rules out whole rows and runs of windows at once, before they are read. Only output tiles holding a
valid pixel are handed to the writer: the parts of a sparse raster without data cost neither time
nor memory, and a sparse output file (GeoTIFF ``SPARSE_OK``) reads them back as nodata.

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
from s5geo.runtime.tiling import (
    BlendMode,
    Block,
    RegionTest,
    StreamingStitcher,
    Window,
    WindowGrid,
    iter_windows,
)

#: ``read(window, out)`` fills ``out`` (float32 ``C x h x w`` raw values of the selected bands) and
#: returns the ``h x w`` boolean mask of pixels with data.
ReadWindow = Callable[[Window, np.ndarray], np.ndarray]
#: ``write_tile(row, col, arrays)`` receives one output tile at ``(row, col)``: one
#: ``bands x h x w`` array per output kind, reused for later tiles once it returns.
WriteTile = Callable[[int, int, dict[str, np.ndarray]], None]


class CanceledError(RuntimeError):
    """The run was canceled through ``is_canceled``."""


def segment_windows(
    grid: WindowGrid,
    read: ReadWindow,
    predictor: Predictor,
    specs: dict[str, OutputSpec],
    write_tile: WriteTile,
    *,
    batch_size: int = 4,
    blend: BlendMode = "cosine",
    region_has_data: RegionTest | None = None,
    tile_size: tuple[int, int] = (256, 256),
    progress: Callable[[int, int], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> int:
    """Predict every window of ``grid`` and hand the encoded output tiles to the writer, top to bottom.

    Args:
        grid: the window grid over the raster.
        read: reads one window (see :data:`ReadWindow`); runs in the reader thread.
        predictor: the model (its metadata gives the normalisation and the classes).
        specs: the outputs to encode (:func:`~s5geo.runtime.outputs.output_specs`).
        write_tile: receives the ``tile_size`` tiles (row-major, edge tiles clipped to the raster)
            that hold at least one valid pixel (see :data:`WriteTile`); the other tiles are left to
            the file's nodata. Runs in the writer thread.
        batch_size: windows per forward pass.
        blend: how overlapping windows are merged.
        region_has_data: optional test of pixel regions (see
            :data:`~s5geo.runtime.tiling.RegionTest`); rows and runs of windows it rules out are
            neither read nor predicted.
        tile_size: ``(height, width)`` of the tiles ``write_tile`` receives.
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
    stitcher = StreamingStitcher(grid, k, blend, normalise=len(specs) > 1, empty_blocks=False)
    n_cols = grid.shape[1]
    total = len(grid)
    tiles = _Tiles(grid, specs, logits, k, tile_size, write_tile)

    def consume(chunk: list[Window], scores: np.ndarray, valid: np.ndarray) -> None:
        for window, values, mask in zip(chunk, scores, valid, strict=True):
            for block in stitcher.add(window, values, mask):
                tiles.put(block)
            tiles.flush(stitcher.final_rows)

    def finish() -> None:
        for block in stitcher.finish():
            tiles.put(block)
        tiles.flush(stitcher.final_rows)

    def read_batch(chunk: list[Window]) -> tuple[np.ndarray, np.ndarray]:
        shape = (len(chunk), meta.in_channels, grid.window_height, grid.window_width)
        raw = np.empty(shape, dtype=np.float32)
        valid = np.empty((shape[0], *shape[2:]), dtype=bool)
        for n, window in enumerate(chunk):
            valid[n] = read(window, raw[n])
        # Normalised here, in the reader thread: numpy releases the GIL on large arrays.
        return normalise(raw, valid, meta), valid

    predicted = 0
    windows = iter_windows(grid, region_has_data=region_has_data)
    batches = _prefetch(_chunks(windows, batch_size), read_batch)
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
        post.submit(finish).result()
    if not stitcher.finished():
        raise RuntimeError("not all windows were stitched")
    if progress is not None:
        progress(total, total)
    return predicted


class _Tiles:
    """Encodes finished blocks into output tiles and writes each tile once, when all its rows are final.

    Only tiles a block with a valid pixel touched are held, filled first with what
    :func:`~s5geo.runtime.outputs.encode` gives pixels without data.
    """

    def __init__(
        self,
        grid: WindowGrid,
        specs: dict[str, OutputSpec],
        logits: bool,
        channels: int,
        tile_size: tuple[int, int],
        write: WriteTile,
    ) -> None:
        self.grid = grid
        self.specs = specs
        self.logits = logits
        self.th, self.tw = (max(1, int(t)) for t in tile_size)
        self.write = write
        empty = encode(np.zeros((channels, 1, 1), np.float32), np.zeros((1, 1), bool), specs, logits)
        self.fill = {key: value[:, 0, 0] for key, value in empty.items()}
        self.pending: dict[int, dict[int, dict[str, np.ndarray]]] = {}
        # Written tiles' arrays, reused: a fresh allocation per tile leaves the C allocator holding
        # memory it does not return.
        self.free: dict[tuple[str, int, int], list[np.ndarray]] = {}
        self.next_row = 0  # first tile row not written yet
        self.n_rows = -(-grid.height // self.th)
        self.n_cols = -(-grid.width // self.tw)

    def _tile(self, tr: int, tc: int) -> dict[str, np.ndarray]:
        row = self.pending.setdefault(tr, {})
        if tc not in row:
            h = min(self.th, self.grid.height - tr * self.th)
            w = min(self.tw, self.grid.width - tc * self.tw)
            arrays = {}
            for key, fill in self.fill.items():
                spare = self.free.get((key, h, w))
                array = spare.pop() if spare else np.empty((len(fill), h, w), self.specs[key].dtype)
                array[...] = fill[:, None, None]
                arrays[key] = array
            row[tc] = arrays
        return row[tc]

    def put(self, block: Block) -> None:
        """Encode ``block`` and copy it into the tiles it covers."""
        valid = block.weight > 0
        encoded = encode(block.data, valid, self.specs, self.logits)
        _, h, w = block.data.shape
        r0, c0 = block.row, block.col
        for tr in range(r0 // self.th, (r0 + h - 1) // self.th + 1):
            a, b = max(r0, tr * self.th), min(r0 + h, (tr + 1) * self.th)
            for tc in range(c0 // self.tw, (c0 + w - 1) // self.tw + 1):
                c, d = max(c0, tc * self.tw), min(c0 + w, (tc + 1) * self.tw)
                if not valid[a - r0 : b - r0, c - c0 : d - c0].any():
                    continue
                tile = self._tile(tr, tc)
                for key, data in encoded.items():
                    tile[key][:, a - tr * self.th : b - tr * self.th, c - tc * self.tw : d - tc * self.tw] = (
                        data[:, a - r0 : b - r0, c - c0 : d - c0]
                    )

    def flush(self, final_rows: int) -> None:
        """Write the tiles whose rows are all above ``final_rows``, in row-major order."""
        while (
            self.next_row < self.n_rows and min((self.next_row + 1) * self.th, self.grid.height) <= final_rows
        ):
            tr = self.next_row
            for tc, arrays in sorted(self.pending.pop(tr, {}).items()):
                self.write(tr * self.th, tc * self.tw, arrays)
                for key, array in arrays.items():
                    spare = self.free.setdefault((key, *array.shape[1:]), [])
                    if len(spare) < self.n_cols:
                        spare.append(array)
            self.next_row += 1


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
