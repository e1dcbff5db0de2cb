import itertools
import tracemalloc

import numpy as np
import pytest

from s5geo.inference.tiling import StreamingStitcher, WindowGrid, window_starts


@pytest.mark.parametrize(
    ("length", "window", "stride"), [(100, 32, 24), (32, 32, 8), (20, 32, 24), (97, 10, 10)]
)
def test_window_starts_cover_every_pixel(length: int, window: int, stride: int) -> None:
    starts = window_starts(length, window, stride)
    size = min(window, length)
    covered = np.zeros(length, dtype=int)
    for s in starts:
        assert s >= 0 and s + size <= length
        covered[s : s + size] += 1
    assert covered.min() >= 1
    assert starts[-1] + size == length  # last window aligned to the end
    assert all(b - a <= stride for a, b in itertools.pairwise(starts))


def _stitch(grid: WindowGrid, field: np.ndarray, blend: str, values=None) -> np.ndarray:
    stitcher = StreamingStitcher(grid, field.shape[0], blend)
    out = np.full(field.shape, np.nan, dtype=np.float32)
    written = np.zeros(field.shape[1:], dtype=int)
    for w in grid:
        window_values = values(w) if values else field[:, w.row : w.row + w.height, w.col : w.col + w.width]
        for block in stitcher.add(w, window_values):
            _, h, bw = block.data.shape
            out[:, block.row : block.row + h, block.col : block.col + bw] = block.data
            written[block.row : block.row + h, block.col : block.col + bw] += 1
    assert stitcher.finished()
    assert (written == 1).all()  # every pixel flushed exactly once
    return out


@pytest.mark.parametrize("blend", ["none", "linear", "cosine"])
@pytest.mark.parametrize(
    ("shape", "window", "overlap"),
    [((37, 53), 16, 0.25), ((10, 7), 16, 0.5), ((65, 66), 32, 0.9), ((40, 64), 16, 0.0)],
)
def test_stitching_a_consistent_field_is_exact(blend, shape, window, overlap) -> None:
    field = np.random.default_rng(1).random((3, *shape)).astype(np.float32)
    out = _stitch(WindowGrid(*shape, window, overlap), field, blend)
    np.testing.assert_allclose(out, field, atol=1e-5)


def test_none_blend_takes_the_window_with_the_nearest_centre() -> None:
    grid = WindowGrid(50, 70, 20, 0.5)
    ids = {(w.i, w.j): float(k) for k, w in enumerate(grid)}
    out = _stitch(
        grid,
        np.zeros((1, 50, 70), np.float32),
        "none",
        values=lambda w: np.full((1, w.height, w.width), ids[(w.i, w.j)], np.float32),
    )
    rows, cols = np.mgrid[0:50, 0:70] + 0.5
    best = np.full((50, 70), np.inf)
    expected = np.zeros((50, 70))
    for w in grid:  # brute force: Chebyshev-separable distance per axis, row then column
        inside = (rows >= w.row) & (rows < w.row + w.height) & (cols >= w.col) & (cols < w.col + w.width)
        d = np.abs(rows - (w.row + w.height / 2)) * 1000 + np.abs(cols - (w.col + w.width / 2))
        better = inside & (d < best - 1e-9)
        best[better], expected[better] = d[better], ids[(w.i, w.j)]
    # Window 20, stride 10: no pixel centre lies exactly between two window centres (no ties).
    np.testing.assert_array_equal(out[0], expected)


def test_blended_weights_are_smooth_and_differ_from_none() -> None:
    grid = WindowGrid(64, 64, 32, 0.5)
    ids = {(w.i, w.j): float(k) for k, w in enumerate(grid)}

    def values(w):
        return np.full((1, w.height, w.width), ids[(w.i, w.j)], np.float32)

    hard = _stitch(grid, np.zeros((1, 64, 64), np.float32), "none", values=values)
    soft = _stitch(grid, np.zeros((1, 64, 64), np.float32), "cosine", values=values)
    assert len(np.unique(hard)) == len(grid)
    assert len(np.unique(soft)) > 3 * len(grid)  # overlaps are mixtures


def _peak_bytes(height: int, width: int) -> int:
    grid = WindowGrid(height, width, 32, 0.25)
    tile = np.ones((4, 32, 32), np.float32)
    tracemalloc.start()
    stitcher = StreamingStitcher(grid, 4, "cosine")
    for w in grid:
        stitcher.add(w, tile)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_stitcher_memory_does_not_grow_with_height() -> None:
    short, tall = _peak_bytes(64, 256), _peak_bytes(1024, 256)
    assert tall < 1.3 * short
    assert _peak_bytes(64, 1024) > 2 * short  # sanity: the measure sees width-proportional buffers
