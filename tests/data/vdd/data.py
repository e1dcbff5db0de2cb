#!/usr/bin/env python3
"""Write a tiny fake VDD release: <split>/src/<name>.JPG and <split>/gt/<name>.png.

Images are RGB JPEGs (4000 x 3000 in the release); labels are 8-bit single-channel PNGs holding the
class id 0..6 (other, wall, road, vegetation, vehicle, roof, water). Seeded and reproducible; files
are written next to this script.
"""

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
HEIGHT, WIDTH = 45, 60  # 3:4 like the 3000 x 4000 originals, not a multiple of the test tile
FILES = {"train": ["DJI_0010", "DJI_0011"], "val": ["DJI_0020"], "test": ["DJI_0030"]}


def main() -> None:
    rng = np.random.default_rng(5)
    for split, names in FILES.items():
        (HERE / split / "src").mkdir(parents=True, exist_ok=True)
        (HERE / split / "gt").mkdir(parents=True, exist_ok=True)
        for name in names:
            coarse = rng.integers(0, 256, size=(HEIGHT // 5, WIDTH // 5, 3), dtype=np.uint8)
            image = Image.fromarray(coarse.repeat(5, 0).repeat(5, 1))
            # 4:4:4 chroma: GDAL and PIL then decode identical pixels (tests compare them).
            image.save(HERE / split / "src" / f"{name}.JPG", quality=95, subsampling=0)
            label = rng.integers(0, 7, size=(HEIGHT // 5, WIDTH // 5), dtype=np.uint8)
            label = label.repeat(5, 0).repeat(5, 1)
            label[0, 0], label[0, 1] = 0, 6  # other and water at known places
            Image.fromarray(label, mode="L").save(HERE / split / "gt" / f"{name}.png")


if __name__ == "__main__":
    main()
