#!/usr/bin/env python3
"""Write a tiny fake VDD release: <split>/src/<name>.JPG and <split>/gt/<name>.png.

Images are RGB JPEGs (4000 x 3000 in the release); labels are 8-bit single-channel PNGs holding the
class id 0..6 (other, wall, road, vegetation, vehicle, roof, water). Seeded and reproducible; files
are written next to this script.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _fake_release import write_drone_release  # noqa: E402

HEIGHT, WIDTH = 45, 60  # 3:4 like the 3000 x 4000 originals, not a multiple of the test tile
FILES = {"train": ["DJI_0010", "DJI_0011"], "val": ["DJI_0020"], "test": ["DJI_0030"]}


def draw_label(rng: np.random.Generator) -> Image.Image:
    """A class-index label in 5 px blocks, with other and water at known places."""
    label = rng.integers(0, 7, size=(HEIGHT // 5, WIDTH // 5), dtype=np.uint8)
    label = label.repeat(5, 0).repeat(5, 1)
    label[0, 0], label[0, 1] = 0, 6
    return Image.fromarray(label, mode="L")


def main() -> None:
    write_drone_release(HERE, FILES, np.random.default_rng(5), (HEIGHT, WIDTH, 5), draw_label)


if __name__ == "__main__":
    main()
