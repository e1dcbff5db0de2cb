#!/usr/bin/env python3
"""Write a tiny fake UDD6 release: {train,val}/src/<name>.JPG and {train,val}/gt/<name>.png.

Images are RGB JPEGs (DJI drone frames, 4096 x 2160 or 4000 x 3000 in the release); labels are RGB
PNGs in the UDD6 colours (other, facade, road, vegetation, vehicle, roof). Seeded and reproducible;
files are written next to this script.
"""

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
HEIGHT, WIDTH = 36, 64
FILES = {"train": ["DJI_0001", "DJI_0002"], "val": ["DJI_0101"]}
COLORS = np.array(
    [(0, 0, 0), (102, 102, 156), (128, 64, 128), (107, 142, 35), (0, 0, 142), (70, 70, 70)],
    np.uint8,
)


def main() -> None:
    rng = np.random.default_rng(4)
    for split, names in FILES.items():
        (HERE / split / "src").mkdir(parents=True, exist_ok=True)
        (HERE / split / "gt").mkdir(parents=True, exist_ok=True)
        for name in names:
            coarse = rng.integers(0, 256, size=(HEIGHT // 4, WIDTH // 4, 3), dtype=np.uint8)
            image = Image.fromarray(coarse.repeat(4, 0).repeat(4, 1))
            # 4:4:4 chroma: GDAL and PIL then decode identical pixels (tests compare them).
            image.save(HERE / split / "src" / f"{name}.JPG", quality=95, subsampling=0)
            classes = rng.integers(0, len(COLORS), size=(HEIGHT // 4, WIDTH // 4))
            classes = classes.repeat(4, 0).repeat(4, 1)
            classes[0, 0], classes[0, 1] = 0, 5  # other and roof at known places
            Image.fromarray(COLORS[classes]).save(HERE / split / "gt" / f"{name}.png")


if __name__ == "__main__":
    main()
