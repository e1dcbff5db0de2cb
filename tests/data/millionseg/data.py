#!/usr/bin/env python3
"""Write a tiny fake MillionSeg (RS4P-1M) release.

labeled/iSAID/{images,masks}/<name>.png (masks: 1-band PNG class indices 0..15, some 255) and
unlabeled/RS4P-1M/images/<name>.{jpg,png} with masks/<name>.png for some images only
(pseudo-labels).
Image pixel = 10 * class + 5 where a mask exists. Seeded; files are written next to this script.
"""

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
LABELED = {"P0000_0_0": 32, "P0007_0_1024": 32}
UNLABELED = {
    "dota_0001.png": True, "fast_0002.jpg": False, "star_0003.jpg": True, "sior_0004.png": False
}


def main() -> None:
    rng = np.random.default_rng(0)
    base = HERE / "labeled" / "iSAID"
    for sub in ("images", "masks"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for name, size in LABELED.items():
        mask = rng.integers(0, 16, size=(size, size)).astype(np.uint8)
        mask[:2, :2] = 255
        Image.fromarray(mask, "L").save(base / "masks" / f"{name}.png")
        value = np.where(mask == 255, 0, 10 * mask + 5).astype(np.uint8)
        Image.fromarray(np.stack([value] * 3, -1), "RGB").save(base / "images" / f"{name}.png")
    base = HERE / "unlabeled" / "RS4P-1M"
    for sub in ("images", "masks"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for name, has_mask in UNLABELED.items():
        image = rng.integers(0, 256, size=(24, 24, 3)).astype(np.uint8)
        Image.fromarray(image, "RGB").save(base / "images" / name)
        if has_mask:
            mask = rng.integers(0, 16, size=(24, 24)).astype(np.uint8)
            Image.fromarray(mask, "L").save(base / "masks" / (Path(name).stem + ".png"))


if __name__ == "__main__":
    main()
