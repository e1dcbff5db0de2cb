"""Sliding-window grids, blend weights and a streaming stitcher (pure numpy).

This module imports only numpy: the torch-free QGIS plugin vendors it. Rasters are addressed in
pixels, rows first (``row, col``), and windows are processed in row-major order. Windows are
generated lazily (:func:`iter_windows`), so a raster of billions of windows costs no memory for its
grid, and windows a reader knows to be empty can be skipped: the stitcher treats a skipped window
as one whose pixels are all masked. A region test (``region_has_data``) rules out whole rows and
runs of windows at once, so skipping the empty parts of a sparse raster costs no per-window work.

Memory: :class:`StreamingStitcher` never holds whole-raster arrays. It keeps the rows the next row
of windows overlaps (``window - stride`` rows) plus one window-sized working block, and hands
finished blocks to the caller as soon as no later window can touch them. The overlap rows are kept
per window column, and only where a window accumulated something: a raster 10x taller uses the same
memory, a raster 10x wider keeps 10x more overlap rows only where it has data.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

BlendMode = Literal["none", "linear", "cosine"]
BLEND_MODES: tuple[str, ...] = ("none", "linear", "cosine")

#: Smallest blend weight, so border pixels still count where only one window covers them.
_MIN_WEIGHT = 1e-3


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Return window offsets along one axis covering ``[0, length)``.

    Windows start every ``stride`` pixels; the last one is aligned to the end so that every pixel is
    covered without reading past the raster. If ``length <= window`` there is one window at 0. This is
    the one window layout of s5geo: prediction grids, dataset tiles and sliding-window evaluation.

    Args:
        length: raster size along the axis.
        window: window size along the axis.
        stride: step between window starts (``1 <= stride <= window``).

    Returns:
        Sorted, distinct window offsets.

    Raises:
        ValueError: if ``length`` is not positive or ``stride`` is outside ``[1, window]``.
    """
    if length <= 0:
        raise ValueError(f"raster length must be positive, got {length}")
    if not 1 <= stride <= window:
        raise ValueError(
            f"stride must be in [1, window={window}] (a larger one would skip pixels), got {stride}"
        )
    if length <= window:
        return [0]
    last = length - window
    starts = list(range(0, last, stride))
    starts.append(last)
    return starts


def stride_from_overlap(window: int, overlap: float) -> int:
    """Return the stride for a window and an overlap fraction in ``[0, 1)``."""
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    return max(1, window - round(window * overlap))


def _ownership(starts: list[int], window: int, length: int) -> list[tuple[int, int]]:
    """Return, per window, the absolute range of pixels whose nearest window centre is its own."""
    bounds = [0]
    for a, b in itertools.pairwise(starts):
        # Midpoint between the two centres a + window/2 and b + window/2.
        bounds.append((a + b + window) // 2)
    bounds.append(length)
    return [(bounds[k], bounds[k + 1]) for k in range(len(starts))]


@dataclass(frozen=True)
class Window:
    """A window of the grid: position in the grid and pixel offsets/size in the raster."""

    i: int
    j: int
    row: int
    col: int
    height: int
    width: int


class WindowGrid:
    """Windows covering a ``height x width`` raster, row-major.

    Args:
        height: raster height in pixels.
        width: raster width in pixels.
        window: window side in pixels (clipped to the raster when the raster is smaller).
        overlap: overlap between neighbouring windows as a fraction of the window.
    """

    def __init__(self, height: int, width: int, window: int, overlap: float = 0.25) -> None:
        if window < 1:
            raise ValueError(f"window must be positive, got {window}")
        self.height = int(height)
        self.width = int(width)
        self.window = int(window)
        self.overlap = float(overlap)
        self.stride = stride_from_overlap(self.window, self.overlap)
        self.window_height = min(self.window, self.height)
        self.window_width = min(self.window, self.width)
        wh, ww = self.window_height, self.window_width
        self.row_starts = window_starts(self.height, wh, self.stride_for(self.height))
        self.col_starts = window_starts(self.width, ww, self.stride_for(self.width))
        self.row_owned = _ownership(self.row_starts, self.window_height, self.height)
        self.col_owned = _ownership(self.col_starts, self.window_width, self.width)

    def stride_for(self, length: int) -> int:
        """Stride along an axis of the given length (the window may be clipped to it)."""
        return min(self.stride, min(self.window, length))

    @property
    def shape(self) -> tuple[int, int]:
        """Number of window rows and columns."""
        return len(self.row_starts), len(self.col_starts)

    def __len__(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    def __iter__(self) -> Iterator[Window]:
        return iter_windows(self)

    def window_at(self, i: int, j: int) -> Window:
        """Return window ``(i, j)`` (window row ``i``, window column ``j``)."""
        return Window(i, j, self.row_starts[i], self.col_starts[j], self.window_height, self.window_width)

    def weights(self, i: int, j: int, blend: BlendMode) -> np.ndarray:
        """Return the ``window_height x window_width`` float32 blend weights of window ``(i, j)``.

        ``none`` gives 1 on the pixels this window owns (nearest window centre) and 0 elsewhere, so
        each pixel takes the prediction of exactly one window, away from that window's borders.
        ``linear`` and ``cosine`` ramp from the window borders over the overlap width.
        """
        if blend == "none":
            wy = _indicator(self.row_owned[i], self.row_starts[i], self.window_height)
            wx = _indicator(self.col_owned[j], self.col_starts[j], self.window_width)
        elif blend in ("linear", "cosine"):
            wy = _ramp(self.window_height, self.window_height - self.stride_for(self.height), blend)
            wx = _ramp(self.window_width, self.window_width - self.stride_for(self.width), blend)
        else:
            raise ValueError(f"unknown blend mode {blend!r}; expected one of {BLEND_MODES}")
        return np.outer(wy, wx).astype(np.float32)


#: ``region_has_data(row, col, height, width)``: False only when no pixel of that pixel region
#: holds data (e.g. a VRT's source rectangles, GDAL's data coverage status).
RegionTest = Callable[[int, int, int, int], bool]


def iter_windows(
    grid: WindowGrid,
    has_data: Callable[[Window], bool] | None = None,
    *,
    region_has_data: RegionTest | None = None,
) -> Iterator[Window]:
    """Yield the windows of ``grid`` lazily, in row-major order.

    This is the one window generator of s5geo (raster segmentation, arrays, evaluation).

    Args:
        grid: the window grid.
        has_data: optional cheap test (e.g. GDAL's data coverage); windows for which it returns
            False are not yielded. Feed the yielded windows to :class:`StreamingStitcher` as usual:
            it fills skipped windows in as fully masked ones.
        region_has_data: optional test of a pixel region (see :data:`RegionTest`). Rows and runs
            of windows whose region it rules out are skipped without visiting their windows
            (binary subdivision), so an empty part of the raster costs a few tests, not one per
            window. ``has_data`` is still asked about each remaining window.
    """
    if region_has_data is None:
        for i, row in enumerate(grid.row_starts):
            for j, col in enumerate(grid.col_starts):
                window = Window(i, j, row, col, grid.window_height, grid.window_width)
                if has_data is None or has_data(window):
                    yield window
        return
    wh, ww = grid.window_height, grid.window_width
    rows, cols = grid.row_starts, grid.col_starts

    def rows_have_data(a: int, b: int) -> bool:
        return region_has_data(rows[a], 0, rows[b - 1] + wh - rows[a], grid.width)

    for i in _subdivide(len(rows), rows_have_data):
        row = rows[i]

        def cols_have_data(a: int, b: int, row: int = row) -> bool:
            return region_has_data(row, cols[a], wh, cols[b - 1] + ww - cols[a])

        for j in _subdivide(len(cols), cols_have_data):
            window = Window(i, j, row, cols[j], wh, ww)
            if has_data is None or has_data(window):
                yield window


def _subdivide(n: int, test: Callable[[int, int], bool]) -> Iterator[int]:
    """Yield, in order, the indices ``k < n`` for which ``test(k, k + 1)`` holds.

    Ranges ``[a, b)`` that ``test(a, b)`` accepts are halved, those it rejects dropped whole.
    """
    stack = [(0, n)] if n > 0 else []
    while stack:
        a, b = stack.pop()
        if not test(a, b):
            continue
        if b - a == 1:
            yield a
            continue
        mid = (a + b) // 2
        stack.append((mid, b))
        stack.append((a, mid))


def _indicator(owned: tuple[int, int], start: int, size: int) -> np.ndarray:
    w = np.zeros(size, dtype=np.float32)
    w[owned[0] - start : owned[1] - start] = 1.0
    return w


def _ramp(size: int, overlap: int, blend: BlendMode) -> np.ndarray:
    if overlap <= 0:
        return np.ones(size, dtype=np.float32)
    x = np.arange(size, dtype=np.float64)
    distance = np.minimum(x, size - 1 - x) + 0.5
    t = np.clip(distance / overlap, 0.0, 1.0)
    if blend == "cosine":
        t = 0.5 - 0.5 * np.cos(np.pi * t)
    return np.maximum(t, _MIN_WEIGHT).astype(np.float32)


@dataclass
class Block:
    """A finished block at ``(row, col)``: ``data`` (``C x h x w``) and the weight sum (``h x w``).

    Pixels with weight 0 were masked out in every window; their ``data`` is 0. ``data`` is the
    weighted mean, or the weighted sum if the stitcher does not normalise.
    """

    row: int
    col: int
    data: np.ndarray
    weight: np.ndarray


class StreamingStitcher:
    """Weighted average of overlapping window predictions, streamed in row-major order.

    Feed every window of ``grid`` in row-major order to :meth:`add`; it returns the blocks that
    became final (weighted mean of all windows covering them), in row-major order. The blocks of
    window row ``i`` span rows ``[row_starts[i], row_starts[i + 1])``; rows above
    :attr:`final_rows` are final.

    Args:
        grid: the window grid.
        channels: number of channels of each window prediction.
        blend: blend mode (see :meth:`WindowGrid.weights`).
        normalise: divide blocks by the weight sum. Without it blocks hold weighted sums, which is
            enough (and cheaper) when only a per-pixel argmax is needed.
        empty_blocks: also return blocks that no window gave any weight (all zero). Without them,
            skipped and fully masked windows cost nothing: a run of them is passed over in one
            step wherever nothing is carried from earlier windows.
    """

    def __init__(
        self,
        grid: WindowGrid,
        channels: int,
        blend: BlendMode = "cosine",
        normalise: bool = True,
        *,
        empty_blocks: bool = True,
    ) -> None:
        self.grid = grid
        self.normalise = normalise
        self.channels = int(channels)
        self.blend = blend
        self.empty_blocks = empty_blocks
        wh, ww = grid.window_height, grid.window_width
        self._weights: dict[tuple[int, ...], np.ndarray] = {}
        # Working block for the current row of windows: rows [row_start, row_start + wh), columns
        # [self._ws_col, self._ws_col + ww). Columns left of the current window are already flushed,
        # so one window width is enough. Channel -1 holds the weight sum. Columns from
        # self._live_end on are zero.
        self._ws = np.zeros((self.channels + 1, wh, ww), dtype=np.float32)
        self._tmp = np.empty((self.channels, wh, ww), dtype=np.float32)
        self._ws_col = 0
        self._ws_end = 0  # first column not yet initialised in the working block
        self._live_end = 0
        # Rows carried to the next row of windows (the overlap), per window column j: columns
        # [col_starts[j], col_starts[j + 1]), kept only where some weight was accumulated.
        # _carry_keys[_carry_pos] is the first segment not yet copied whole into the working block.
        self._carry: dict[int, np.ndarray] = {}
        self._carry_keys: list[int] = []
        self._carry_pos = 0
        self._next_carry: dict[int, np.ndarray] = {}
        self._next_keys: list[int] = []
        # Consumed segments, reused for the next ones: allocating a fresh one per window leaves the
        # C allocator holding memory it does not return.
        self._free: list[np.ndarray] = []
        self._expected = (0, 0)
        self._window_ends = [c + ww for c in grid.col_starts]

    @property
    def final_rows(self) -> int:
        """Rows above this one are final: every block covering them was returned."""
        i = self._expected[0]
        return self.grid.row_starts[i] if i < len(self.grid.row_starts) else self.grid.height

    @property
    def carry_nbytes(self) -> int:
        """Bytes held for the overlap rows carried between rows of windows."""
        held = [*self._carry.values(), *self._next_carry.values(), *self._free]
        return sum(a.nbytes for a in held)

    def _weight(self, i: int, j: int) -> np.ndarray:
        # Ramps are the same for all windows; ownership depends only on the owned ranges relative
        # to the window, which differ at the raster edges only.
        key: tuple[int, ...] = (0,)
        if self.blend == "none":
            grid = self.grid
            (r0, r1), (c0, c1) = grid.row_owned[i], grid.col_owned[j]
            row, col = grid.row_starts[i], grid.col_starts[j]
            key = (r0 - row, r1 - row, c0 - col, c1 - col)
        if key not in self._weights:
            if len(self._weights) > 64:
                self._weights.clear()
            self._weights[key] = self.grid.weights(i, j, self.blend)
        return self._weights[key]

    def add(self, window: Window, values: np.ndarray, mask: np.ndarray | None = None) -> list[Block]:
        """Accumulate one window prediction and return the blocks it finished.

        Windows skipped since the previous call (see :func:`iter_windows`) count as fully masked;
        call :meth:`finish` after the last window when trailing windows may have been skipped.

        Args:
            window: the window (the next one in row-major order, or a later one).
            values: ``channels x window_height x window_width`` array.
            mask: optional boolean ``window_height x window_width`` array; pixels where it is False
                get weight 0 (pixels that are False in every window come out with ``weight`` 0).

        Returns:
            Finished blocks (weighted means), possibly none.
        """
        if (window.i, window.j) < self._expected:
            raise ValueError(
                f"windows must be added in row-major order: expected {self._expected} or a later "
                f"window, got {(window.i, window.j)}"
            )
        if values.shape != (self.channels, window.height, window.width):
            raise ValueError(
                f"window values have shape {values.shape}, expected "
                f"{(self.channels, window.height, window.width)}"
            )
        blocks = self._skip_to(window.i, window.j)
        if mask is not None and not mask.any():
            return blocks + self._skip_to(*self._after(window.i, window.j))
        return blocks + self._step(window, values, mask)

    def finish(self) -> list[Block]:
        """Treat the windows not added yet as fully masked and return the blocks they finish."""
        return self._skip_to(len(self.grid.row_starts), 0)

    def finished(self) -> bool:
        """Whether all windows of the grid were added."""
        return self._expected == (len(self.grid.row_starts), 0)

    def _after(self, i: int, j: int) -> tuple[int, int]:
        return (i, j + 1) if j + 1 < len(self.grid.col_starts) else (i + 1, 0)

    def _skip_to(self, i: int, j: int) -> list[Block]:
        """Pass the windows before ``(i, j)`` as fully masked ones."""
        blocks: list[Block] = []
        n_cols = len(self.grid.col_starts)
        while self._expected < (i, j):
            ei, ej = self._expected
            if self.empty_blocks:
                blocks += self._step(self.grid.window_at(ei, ej), None, None)
                continue
            if ej == 0:
                if ei < i and not self._carry:
                    # Nothing reaches rows ei..i-1 from above, and they add nothing.
                    self._expected = (i, 0)
                    continue
                self._start_row(ei)
            stop = j if ei == i else n_cols
            busy = self._next_busy(ej)
            if busy > ej:
                self._jump(ei, min(busy, stop))
            else:
                blocks += self._step(self.grid.window_at(ei, ej), None, None)
        return blocks

    def _seg_end(self, j: int) -> int:
        cols = self.grid.col_starts
        return cols[j + 1] if j + 1 < len(cols) else self.grid.width

    def _next_busy(self, j: int) -> int:
        """First window from ``j`` on that meets non-zero carried or working-block values."""
        if self._live_end > self._ws_col:
            return j
        cols = self.grid.col_starts
        if self._carry_pos == len(self._carry_keys):
            return len(cols)
        unconsumed = max(cols[self._carry_keys[self._carry_pos]], self._ws_end)
        return max(j, bisect.bisect_right(self._window_ends, unconsumed))

    def _jump(self, i: int, j: int) -> None:
        """Move to window ``(i, j)`` of the current row when the windows before it add nothing."""
        n_cols = len(self.grid.col_starts)
        if j >= n_cols:
            self._end_row(i)
            return
        self._ws_col = self.grid.col_starts[j]
        self._ws_end = max(self._ws_end, self._ws_col)
        self._expected = (i, j)

    def _end_row(self, i: int) -> None:
        self._carry, self._carry_keys, self._carry_pos = self._next_carry, self._next_keys, 0
        self._next_carry, self._next_keys = {}, []
        self._free.clear()
        self._expected = (i + 1, 0)

    def _step(self, window: Window, values: np.ndarray | None, mask: np.ndarray | None) -> list[Block]:
        """Accumulate ``values`` (None: a fully masked window) and return the finished blocks."""
        grid = self.grid
        i, j = window.i, window.j
        n_rows, n_cols = grid.shape
        if j == 0:
            self._start_row(i)
        self._extend(window.col + window.width)
        if values is not None:
            w = self._weight(i, j)
            if mask is not None and not mask.all():
                w = w * mask
            c0 = window.col - self._ws_col
            target = self._ws[:, :, c0 : c0 + window.width]
            np.multiply(values, w, out=self._tmp)
            target[:-1] += self._tmp
            target[-1] += w
            self._live_end = max(self._live_end, window.col + window.width)

        # Rows [row_start, next_row_start) are final for columns up to the next window start.
        row = window.row
        row_end = grid.row_starts[i + 1] if i + 1 < n_rows else grid.height
        col_end = grid.col_starts[j + 1] if j + 1 < n_cols else grid.width
        n_final = row_end - row
        width = col_end - self._ws_col
        live = self._live_end - self._ws_col  # working-block columns that may be non-zero
        blocks = []
        acc = self._ws[:, :, :width]
        if live > 0 or self.empty_blocks:
            weight = acc[-1, :n_final]
            if self.empty_blocks or weight.any():
                weight = weight.copy()
                if self.normalise:
                    data = acc[:-1, :n_final] / np.maximum(weight, np.float32(1e-12))
                else:
                    data = acc[:-1, :n_final].copy()
                blocks.append(Block(row, self._ws_col, data, weight))
        if live > 0 and n_final < window.height and acc[-1, n_final:].any():
            rows = acc[:, n_final:]
            spare = self._free.pop() if self._free else None
            if spare is not None and spare.shape == rows.shape:
                np.copyto(spare, rows)
                rows = spare
            else:
                rows = rows.copy()
            self._next_carry[j] = rows
            self._next_keys.append(j)
        if live > 0:
            # Shift the working block left by `width` columns.
            keep = self._live_end - col_end
            if keep > 0:
                self._ws[:, :, :keep] = self._ws[:, :, width : width + keep]
            self._ws[:, :, max(keep, 0) : live] = 0.0
        self._ws_col = col_end
        if j + 1 == n_cols:
            self._end_row(i)
        else:
            self._expected = (i, j + 1)
        return blocks

    def _start_row(self, i: int) -> None:
        self._ws_col = 0
        self._ws_end = 0
        self._live_end = 0
        self._next_carry, self._next_keys = {}, []

    def _extend(self, col_stop: int) -> None:
        """Initialise working-block columns up to ``col_stop`` from the carried overlap rows."""
        start = self._ws_end
        if col_stop <= start:
            return
        if col_stop - self._ws_col > self._ws.shape[2]:
            raise AssertionError("working block too small")  # cannot happen with a valid grid
        keys, cols = self._carry_keys, self.grid.col_starts
        while self._carry_pos < len(keys) and cols[keys[self._carry_pos]] < col_stop:
            key = keys[self._carry_pos]
            seg_col, seg_end = cols[key], self._seg_end(key)
            a, b = max(start, seg_col), min(col_stop, seg_end)
            if a < b:
                segment = self._carry[key]
                rows = segment.shape[1]
                self._ws[:, :rows, a - self._ws_col : b - self._ws_col] = segment[
                    :, :, a - seg_col : b - seg_col
                ]
                self._live_end = max(self._live_end, b)
            if seg_end > col_stop:
                break
            consumed = self._carry.pop(key)
            if len(self._free) < 4:
                self._free.append(consumed)
            self._carry_pos += 1
        self._ws_end = col_stop


def argmax(scores: np.ndarray) -> np.ndarray:
    """Per-pixel argmax over the first axis of ``K x h x w`` scores, as uint8 (first max wins).

    Faster than ``np.argmax(axis=0)`` (contiguous passes instead of strided ones); ``putmask`` is
    faster than a boolean-index assignment.
    """
    best = scores[0].copy()
    index = np.zeros(best.shape, dtype=np.uint8)
    better = np.empty(best.shape, dtype=bool)
    for k in range(1, scores.shape[0]):
        np.greater(scores[k], best, out=better)
        np.putmask(index, better, k)
        np.maximum(best, scores[k], out=best)
    return index


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the first axis of ``K x h x w`` float32 scores."""
    e = np.exp(scores - scores.max(axis=0, keepdims=True))
    e /= e.sum(axis=0, keepdims=True)
    return e
