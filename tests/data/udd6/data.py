#!/usr/bin/env python3
"""Write a tiny fake UDD6 release: {train,val}/src/<name>.JPG and {train,val}/gt/<name>.png.

Images are RGB JPEGs (DJI drone frames, 4096 x 2160 or 4000 x 3000 in the release); labels are RGB
PNGs in the UDD6 colours (other, facade, road, vegetation, vehicle, roof). Seeded and reproducible;
files are written next to this script.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _fake_release import write_drone_release  # noqa: E402

HEIGHT, WIDTH = 36, 64
FILES = {"train": ["DJI_0001", "DJI_0002"], "val": ["DJI_0101"]}
COLORS = np.array(
    [(0, 0, 0), (102, 102, 156), (128, 64, 128), (107, 142, 35), (0, 0, 142), (70, 70, 70)],
    np.uint8,
)


def draw_label(rng: np.random.Generator) -> Image.Image:
    """An RGB-coded label in 4 px blocks, with other and roof at known places."""
    classes = rng.integers(0, len(COLORS), size=(HEIGHT // 4, WIDTH // 4))
    classes = classes.repeat(4, 0).repeat(4, 1)
    classes[0, 0], classes[0, 1] = 0, 5
    return Image.fromarray(COLORS[classes])


def main() -> None:
    write_drone_release(HERE, FILES, np.random.default_rng(4), (HEIGHT, WIDTH, 4), draw_label)


if __name__ == "__main__":
    main()
