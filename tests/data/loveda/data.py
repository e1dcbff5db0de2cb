#!/usr/bin/env python3
"""Write a tiny fake LoveDA release: the extracted Train/Val/Test.zip of Zenodo 5706578.

<split>/<Scene>/images_png/<n>.png are RGB PNGs (1024 x 1024 in the release), masks_png/<n>.png are
8-bit single-channel PNGs with values 0..7 (0 = no-data). Test has no masks. File numbers follow the
release's numbering (Train Rural 0.., Train Urban 1366.., Val Rural 2522.., Val Urban 3514.., Test
Rural 4191.., Test Urban 5167..). Seeded and reproducible; files are written next to this script.
"""

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SIZE = 32
FILES = {
    ("Train", "Rural"): [0, 1],
    ("Train", "Urban"): [1366],
    ("Val", "Rural"): [2522],
    ("Val", "Urban"): [3514],
    ("Test", "Rural"): [4191],
    ("Test", "Urban"): [5167],
}


def main() -> None:
    rng = np.random.default_rng(2)
    for (split, scene), numbers in FILES.items():
        for number in numbers:
            images = HERE / split / scene / "images_png"
            images.mkdir(parents=True, exist_ok=True)
            coarse = rng.integers(0, 256, size=(SIZE // 4, SIZE // 4, 3), dtype=np.uint8)
            Image.fromarray(coarse.repeat(4, 0).repeat(4, 1)).save(images / f"{number}.png")
            if split == "Test":
                continue
            masks = HERE / split / scene / "masks_png"
            masks.mkdir(parents=True, exist_ok=True)
            mask = rng.integers(0, 8, size=(SIZE // 4, SIZE // 4), dtype=np.uint8)
            mask = mask.repeat(4, 0).repeat(4, 1)
            mask[0, 0], mask[0, 1] = 0, 1  # no-data and background at known places
            Image.fromarray(mask, mode="L").save(masks / f"{number}.png")


if __name__ == "__main__":
    main()
