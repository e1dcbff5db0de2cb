"""Sparse stitching: skipped windows cost nothing, the carried overlap only exists where data is."""

from __future__ import annotations

import numpy as np
import pytest

from s5geo.runtime.tiling import Block, StreamingStitcher, Window, WindowGrid, iter_windows

CASES = [
    ((70, 90), 16, 0.25),
    ((37, 53), 16, 0.0),
    ((65, 66), 16, 0.75),  # overlap rows reach two rows of windows down
    ((40, 130), 32, 0.5),
    ((10, 7), 16, 0.5),  # one window, smaller than the raster window
]


def _scene(shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random scores and a validity mask with empty stretches, holes and a small island."""
    rng = np.random.default_rng(seed)
    height, width = shape
    scores = rng.normal(size=(3, height, width)).astype(np.float32)
    valid = np.zeros(shape, bool)
    valid[: height // 2, width // 3 :] = True
    valid[height // 3 : height // 2 + 3, : width // 5] = True
    valid[-3:, -4:] = True
    valid &= rng.random(shape) > 0.1
    return scores, valid


def _feed(
    grid: WindowGrid, scores: np.ndarray, valid: np.ndarray, stitcher: StreamingStitcher, skip: bool
) -> list[Block]:
    def has_data(w: Window) -> bool:
        return bool(valid[w.row : w.row + w.height, w.col : w.col + w.width].any())

    blocks: list[Block] = []
    for w in iter_windows(grid, has_data if skip else None):
        sl = (slice(w.row, w.row + w.height), slice(w.col, w.col + w.width))
        blocks += stitcher.add(w, scores[(slice(None), *sl)], valid[sl])
    blocks += stitcher.finish()
    assert stitcher.finished()
    return blocks


def _reference(grid: WindowGrid, scores: np.ndarray, valid: np.ndarray, blend: str) -> tuple:
    """The weighted mean computed the plain way, on whole-raster arrays."""
    total = np.zeros(scores.shape, np.float32)
    weight = np.zeros(valid.shape, np.float32)
    for w in grid:
        sl = (slice(w.row, w.row + w.height), slice(w.col, w.col + w.width))
        ww = grid.weights(w.i, w.j, blend) * valid[sl]  # type: ignore[arg-type]
        total[(slice(None), *sl)] += scores[(slice(None), *sl)] * ww
        weight[sl] += ww
    return total / np.maximum(weight, np.float32(1e-12)), weight


@pytest.mark.parametrize("blend", ["none", "linear", "cosine"])
@pytest.mark.parametrize(("shape", "window", "overlap"), CASES)
def test_sparse_blocks_are_the_dense_blocks_with_weight(blend, shape, window, overlap) -> None:
    scores, valid = _scene(shape, seed=window)
    grid = WindowGrid(*shape, window, overlap)
    dense = _feed(grid, scores, valid, StreamingStitcher(grid, 3, blend), skip=False)
    sparse = _feed(grid, scores, valid, StreamingStitcher(grid, 3, blend, empty_blocks=False), skip=True)

    assert [(b.row, b.col) for b in dense] == sorted((b.row, b.col) for b in dense)
    with_weight = [b for b in dense if b.weight.any()]
    assert len(with_weight) < len(dense) or len(grid) == 1  # the scene has empty blocks
    assert [(b.row, b.col) for b in sparse] == [(b.row, b.col) for b in with_weight]
    for a, b in zip(sparse, with_weight, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.weight, b.weight)

    data = np.zeros(scores.shape, np.float32)
    weight = np.zeros(shape, np.float32)
    for b in sparse:
        _, h, w = b.data.shape
        data[:, b.row : b.row + h, b.col : b.col + w] = b.data
        weight[b.row : b.row + h, b.col : b.col + w] = b.weight
    expected, expected_weight = _reference(grid, scores, valid, blend)
    np.testing.assert_allclose(weight, expected_weight, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(data, expected, rtol=1e-5, atol=1e-5)
    assert (weight[~valid] == 0).all()


def test_final_rows_follow_the_rows_of_windows() -> None:
    grid = WindowGrid(50, 40, 16, 0.25)
    stitcher = StreamingStitcher(grid, 1, empty_blocks=False)
    assert stitcher.final_rows == 0
    window = grid.window_at(2, 0)
    stitcher.add(window, np.ones((1, 16, 16), np.float32))
    assert stitcher.final_rows == grid.row_starts[2]
    stitcher.finish()
    assert stitcher.final_rows == 50


def _carry_peak(width: int) -> tuple[int, int]:
    """Largest carried overlap while stitching a few windows of data on a very wide raster."""
    grid = WindowGrid(4_000, width, 512, 0.25)

    def region_has_data(row: int, col: int, height: int, width: int) -> bool:
        return row < 2_900 and row + height > 900 and col < 6_500 and col + width > 5_000

    stitcher = StreamingStitcher(grid, 4, "cosine", empty_blocks=False)
    values = np.ones((4, 512, 512), np.float32)
    peak = added = 0
    for w in iter_windows(grid, region_has_data=region_has_data):
        stitcher.add(w, values)
        added += 1
        peak = max(peak, stitcher.carry_nbytes)
    stitcher.finish()
    assert stitcher.finished() and stitcher.carry_nbytes == 0
    return peak, added


def test_carried_overlap_does_not_grow_with_the_width() -> None:
    narrow, added = _carry_peak(20_000)
    wide, added_wide = _carry_peak(2_000_000)
    assert added == added_wide == 6 * 5  # 6 rows of 5 windows touch the data
    assert wide == narrow
    # At most this row's and the next row's overlap (128 rows) over the data's window columns.
    segment = (4 + 1) * (512 - 384) * 384 * 4
    assert 0 < wide <= 2 * (5 + 1) * segment
    full_width = (4 + 1) * (512 - 384) * 2_000_000 * 4
    assert wide < full_width / 100


def test_iter_windows_skips_regions_in_bulk() -> None:
    grid = WindowGrid(2_000_000, 2_000_000, 512, 0.25)
    calls = []

    def region_has_data(row: int, col: int, height: int, width: int) -> bool:
        calls.append((row, col, height, width))
        return row < 1_004_096 and row + height > 1_000_000 and col < 1_004_096 and col + width > 1_000_000

    windows = list(iter_windows(grid, region_has_data=region_has_data))
    assert len(windows) == 12 * 12
    assert all(region_has_data(w.row, w.col, w.height, w.width) for w in windows)
    assert [(w.i, w.j) for w in windows] == sorted((w.i, w.j) for w in windows)
    assert len(calls) < 2_000  # not one test per window (2.7e7 windows)

    stitcher = StreamingStitcher(grid, 1, "cosine", empty_blocks=False)
    ones = np.ones((1, 512, 512), np.float32)
    blocks = [b for w in windows for b in stitcher.add(w, ones)] + stitcher.finish()
    assert stitcher.finished()
    covered = sum(b.weight.size for b in blocks)
    assert 4096**2 <= covered < (4096 + 2 * 512) ** 2


def test_region_test_agrees_with_a_window_test() -> None:
    rng = np.random.default_rng(3)
    grid = WindowGrid(300, 410, 32, 0.4)
    rects = [(int(r), int(c), int(h), int(w)) for r, c, h, w in rng.integers(0, 200, size=(4, 4))]

    def region_has_data(row: int, col: int, height: int, width: int) -> bool:
        return any(
            row < r + h and r < row + height and col < c + w and c < col + width for r, c, h, w in rects
        )

    def has_data(w: Window) -> bool:
        return region_has_data(w.row, w.col, w.height, w.width)

    fast = list(iter_windows(grid, region_has_data=region_has_data))
    assert fast == list(iter_windows(grid, has_data))
    odd = list(iter_windows(grid, lambda w: w.j % 2 == 1, region_has_data=region_has_data))
    assert odd == [w for w in fast if w.j % 2 == 1]


class _OneHot:
    """Predictor whose logits are the one-hot of band 1 (raw value = class id, mean 0, std 1)."""

    device_name = "cpu"
    returns_logits = True

    def __init__(self) -> None:
        from s5geo.metadata import ModelMetadata

        self.metadata = ModelMetadata(
            classes=["a", "b", "c"],
            colors=[(1, 2, 3), (4, 5, 6), (7, 8, 9)],
            bands=[1],
            mean=[0.0],
            std=[1.0],
            window_size=16,
            overlap=0.25,
        )

    def predict(self, batch: np.ndarray) -> np.ndarray:
        classes = np.clip(np.rint(batch[:, 0]), 0, 2).astype(int)
        return np.eye(3, dtype=np.float32)[classes].transpose(0, 3, 1, 2) * 10


@pytest.mark.parametrize("regions", [False, True])
def test_tile_writer_writes_only_tiles_with_data_and_matches_a_dense_run(regions: bool) -> None:
    from s5geo.runtime.arrays import predict_array
    from s5geo.runtime.outputs import encode, output_specs
    from s5geo.runtime.pipeline import segment_windows

    height, width = 90, 130
    image = np.random.default_rng(4).integers(0, 3, size=(height, width)).astype(np.float32)
    valid = np.zeros((height, width), bool)
    valid[10:30, 70:100] = True
    valid[60:62, 5:9] = True
    grid = WindowGrid(height, width, 16, 0.25)
    predictor = _OneHot()
    specs = output_specs(predictor.metadata, ["classes", "confidence", "probabilities"], "float16")

    def read(w: Window, out: np.ndarray) -> np.ndarray:
        out[0] = image[w.row : w.row + w.height, w.col : w.col + w.width]
        return valid[w.row : w.row + w.height, w.col : w.col + w.width]

    def region_has_data(row: int, col: int, h: int, w: int) -> bool:
        return bool(valid[row : row + h, col : col + w].any())

    tiled = {
        "classes": np.full((1, height, width), 255, np.uint8),
        "confidence": np.zeros((1, height, width), np.uint8),
        "probabilities": np.full((3, height, width), np.nan, np.float32),
    }
    tiles = []

    def write_tile(row: int, col: int, arrays: dict[str, np.ndarray]) -> None:
        tiles.append((row, col))
        h, w = arrays["classes"].shape[1:]
        assert (h, w) == (min(32, height - row), min(32, width - col))
        assert valid[row : row + h, col : col + w].any()
        for key, data in arrays.items():
            tiled[key][:, row : row + h, col : col + w] = data

    predicted = segment_windows(
        grid,
        read,
        predictor,
        specs,
        write_tile,
        tile_size=(32, 32),
        region_has_data=region_has_data if regions else None,
    )
    assert 0 < predicted < len(grid)
    assert tiles == [(0, 64), (0, 96), (32, 0)]  # the tiles the box and the dot touch
    # The same windows predicted densely over the whole array, encoded at once.
    scores = predict_array(image[None], predictor.predict, predictor.metadata, valid=valid)
    dense = encode(scores, valid, specs)
    for key, expected in dense.items():
        np.testing.assert_array_equal(tiled[key], expected)
    np.testing.assert_array_equal(tiled["classes"][0][valid], image[valid])
    assert (tiled["classes"][0][~valid] == 255).all()
