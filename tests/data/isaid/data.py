#!/usr/bin/env python3
"""Write a tiny fake iSAID release in the official layout, the devkit's and unzipped into folders.

Here: <split>/images/P*.png + <split>/Semantic_masks/images/P*_instance_color_RGB.png.
devkit/: <split>/images/P*.png with P*_instance_color_RGB.png and P*_instance_id_RGB.png beside.
unzipped/: each release zip unpacked into a folder of its own name:
<split>/images/images/P*.png, <split>/Semantic_masks/images/images/P*_instance_color_RGB.png,
<split>/Instance_masks/images/images/P*_instance_id_RGB.png.

Masks are RGB PNGs in the iSAID devkit palette (background black). P0001 is a grey (1-band) image
smaller than the 32-px test patch. Seeded; files are written next to this script.
"""

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
PALETTE = np.array(
    [
        (0, 0, 0),
        (0, 0, 63),
        (0, 63, 63),
        (0, 63, 0),
        (0, 63, 127),
        (0, 63, 191),
        (0, 63, 255),
        (0, 127, 63),
        (0, 127, 127),
        (0, 0, 127),
        (0, 0, 191),
        (0, 0, 255),
        (0, 191, 127),
        (0, 127, 191),
        (0, 127, 255),
        (0, 100, 155),
    ],
    np.uint8,
)
# name: (split, height, width, grey)
IMAGES = {
    "P0000": ("train", 48, 70, False),
    "P0001": ("train", 20, 30, True),
    "P0002": ("val", 40, 40, False),
}


def blocks(rng: np.random.Generator, high: int, height: int, width: int, size: int = 4) -> np.ndarray:
    """Random integers in [0, high) constant over size x size blocks."""
    coarse = rng.integers(0, high, size=(height // size + 1, width // size + 1))
    return coarse.repeat(size, 0).repeat(size, 1)[:height, :width]


def main() -> None:
    rng = np.random.default_rng(0)
    for name, (split, height, width, grey) in IMAGES.items():
        images = HERE / split / "images"
        masks = HERE / split / "Semantic_masks" / "images"
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
        classes = blocks(rng, len(PALETTE), height, width)
        # image pixel = 10 * class + 5 in every band, so tests can check the mask against the image
        value = (10 * classes + 5).astype(np.uint8)
        if grey:
            Image.fromarray(value, "L").save(images / f"{name}.png")
        else:
            Image.fromarray(np.stack([value] * 3, -1), "RGB").save(images / f"{name}.png")
        Image.fromarray(PALETTE[classes], "RGB").save(masks / f"{name}_instance_color_RGB.png")

    other_layouts()


# name: (split, height, width) of the devkit and unzipped copies
OTHER_IMAGES = {"P0002": ("train", 36, 44), "P0010": ("train", 30, 30), "P0003": ("val", 40, 24)}


def other_layouts() -> None:
    """Write devkit/ and unzipped/ (their own seed, so the files above stay the same)."""
    rng = np.random.default_rng(1)
    for name, (split, height, width) in OTHER_IMAGES.items():
        classes = blocks(rng, len(PALETTE), height, width)
        value = (10 * classes + 5).astype(np.uint8)
        image = Image.fromarray(np.stack([value] * 3, -1), "RGB")
        semantic = Image.fromarray(PALETTE[classes], "RGB")
        # instance ids as RGB colours, one per block; background black
        ids = blocks(rng, 200, height, width) * (classes > 0)
        instance = Image.fromarray(np.stack([ids, ids // 2, 255 - ids], -1).astype(np.uint8), "RGB")
        devkit = HERE / "devkit" / split / "images"
        unzipped = HERE / "unzipped" / split
        folders = {
            "image": (devkit, unzipped / "images" / "images"),
            "semantic": (devkit, unzipped / "Semantic_masks" / "images" / "images"),
            "instance": (devkit, unzipped / "Instance_masks" / "images" / "images"),
        }
        for kind, picture, suffix in (
            ("image", image, ".png"),
            ("semantic", semantic, "_instance_color_RGB.png"),
            ("instance", instance, "_instance_id_RGB.png"),
        ):
            for folder in folders[kind]:
                folder.mkdir(parents=True, exist_ok=True)
                picture.save(folder / f"{name}{suffix}")


if __name__ == "__main__":
    main()
