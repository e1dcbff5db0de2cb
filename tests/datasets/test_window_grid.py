import numpy as np
import pytest

from s5geo.datasets._tiling import grid_starts, tile_grid


@pytest.mark.parametrize(
    ("length", "tile", "stride", "expected"),
    [
        (100, 32, 32, [0, 32, 64, 68]),
        (96, 32, 32, [0, 32, 64]),
        (70, 32, 16, [0, 16, 32, 38]),
        (32, 32, 32, [0]),
        (20, 32, 32, [0]),
        (6000, 512, 512, [*range(0, 5120 + 1, 512), 5488]),
    ],
)
def test_grid_starts(length: int, tile: int, stride: int, expected: list[int]) -> None:
    assert grid_starts(length, tile, stride) == expected


@pytest.mark.parametrize(("height", "width", "tile", "stride"), [(70, 90, 32, 32), (45, 60, 16, 10)])
def test_tile_grid_covers_every_pixel_inside_the_image(
    height: int, width: int, tile: int, stride: int
) -> None:
    count = np.zeros((height, width), dtype=int)
    for t in tile_grid(height, width, tile, stride):
        assert (t.height, t.width) == (tile, tile)
        assert t.row + t.height <= height and t.col + t.width <= width
        count[t.row : t.row + t.height, t.col : t.col + t.width] += 1
    assert (count >= 1).all()
    # The last window of each axis is aligned to the border.
    assert max(t.row for t in tile_grid(height, width, tile, stride)) == height - tile
    assert max(t.col for t in tile_grid(height, width, tile, stride)) == width - tile


def test_stride_larger_than_tile_is_refused() -> None:
    with pytest.raises(ValueError, match="skip"):
        grid_starts(100, 32, 40)
