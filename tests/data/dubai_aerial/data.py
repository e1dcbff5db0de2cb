#!/usr/bin/env python3
"""Write a tiny fake of the Dubai aerial imagery release (Humans in the Loop).

Layout: "Tile N/images/image_part_00K.jpg" + "Tile N/masks/image_part_00K.png". Masks use the real
colours (building, land, road, vegetation, water, unlabeled grey) plus an "other" colour (black), as
paletted PNGs in Tile 1 (like most real masks) and 3-band RGB PNGs in Tile 2. Seeded.
"""

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
COLORS = np.array(
    [
        (60, 16, 152),
        (132, 41, 246),
        (110, 193, 228),
        (254, 221, 58),
        (226, 169, 41),
        (155, 155, 155),
        (0, 0, 0),
    ],
    np.uint8,
)
SIZES = {("Tile 1", 1): (40, 48), ("Tile 1", 2): (36, 44), ("Tile 2", 1): (32, 40)}


def main() -> None:
    rng = np.random.default_rng(0)
    for (tile, part), (height, width) in SIZES.items():
        for sub in ("images", "masks"):
            (HERE / tile / sub).mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, len(COLORS), size=(height // 4 + 1, width // 4 + 1))
        index = coarse.repeat(4, 0).repeat(4, 1)[:height, :width].astype(np.uint8)
        image = rng.integers(0, 256, size=(height, width, 3)).astype(np.uint8)
        Image.fromarray(image, "RGB").save(HERE / tile / "images" / f"image_part_{part:03d}.jpg")
        mask_path = HERE / tile / "masks" / f"image_part_{part:03d}.png"
        if tile == "Tile 1":
            mask = Image.fromarray(index, "P")
            mask.putpalette(COLORS.flatten().tolist())
            mask.save(mask_path)
        else:
            Image.fromarray(COLORS[index], "RGB").save(mask_path)


if __name__ == "__main__":
    main()
