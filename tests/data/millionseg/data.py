#!/usr/bin/env python3
"""Write a tiny fake MillionSeg (RS4P-1M) release, in two layouts.

Here: labeled/iSAID/{images,masks}/<name>.png (masks: 1-band PNG class indices 0..15, some 255)
and unlabeled/RS4P-1M/images/<name>.{jpg,png} with masks/<name>.png for some images only
(pseudo-labels).

published/: the layout of the authors' RS4P-1M release and split files:
labeled/iSAID/{train,val}/{images,masks}/<name>.png, unlabeled/RS4P-1M/{images,masks} (a
pseudo-label for every image), splits/labeled/labeled.txt and splits/val.txt ("<image> <mask>"
per line) and splits/unlabeled/RS4P-1M.txt ("<image>" per line), paths relative to published/.

Image pixel = 10 * class + 5 where a mask exists. Seeded; files are written next to this script.
"""

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
LABELED = {"P0000_0_0": 32, "P0007_0_1024": 32}
UNLABELED = {"dota_0001.png": True, "fast_0002.jpg": False, "star_0003.jpg": True, "sior_0004.png": False}


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

    published()


# published layout: split -> names of the labeled crops
PUBLISHED_LABELED = {
    "train": ("P0000_0000_crop_0", "P0000_0000_crop_1", "P0002_0001_crop_0"),
    "val": ("P0003_0000_crop_0",),
}
PUBLISHED_UNLABELED = ("dota_000001.png", "millionaid_000002.jpg", "star_000003.jpg")


def published() -> None:
    """Write published/ (its own seed, so the files above stay the same)."""
    rng = np.random.default_rng(1)
    out = HERE / "published"
    lines: dict[str, list[str]] = {"labeled/labeled.txt": [], "val.txt": [], "unlabeled/RS4P-1M.txt": []}
    for split, names in PUBLISHED_LABELED.items():
        base = Path("labeled", "iSAID", split)
        for sub in ("images", "masks"):
            (out / base / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            mask = rng.integers(0, 16, size=(32, 32)).astype(np.uint8)
            mask[:2, :2] = 255
            Image.fromarray(mask, "L").save(out / base / "masks" / f"{name}.png")
            value = np.where(mask == 255, 0, 10 * mask + 5).astype(np.uint8)
            Image.fromarray(np.stack([value] * 3, -1), "RGB").save(out / base / "images" / f"{name}.png")
            listing = "labeled/labeled.txt" if split == "train" else "val.txt"
            lines[listing].append(f"{base}/images/{name}.png {base}/masks/{name}.png")
    base = Path("unlabeled", "RS4P-1M")
    for sub in ("images", "masks"):
        (out / base / sub).mkdir(parents=True, exist_ok=True)
    for name in PUBLISHED_UNLABELED:
        mask = rng.integers(0, 16, size=(24, 24)).astype(np.uint8)
        Image.fromarray(mask, "L").save(out / base / "masks" / (Path(name).stem + ".png"))
        value = (10 * mask + 5).astype(np.uint8)
        Image.fromarray(np.stack([value] * 3, -1), "RGB").save(out / base / "images" / name)
        lines["unlabeled/RS4P-1M.txt"].append(f"{base}/images/{name}")
    for listing, rows in lines.items():
        path = out / "splits" / listing
        path.parent.mkdir(parents=True, exist_ok=True)
        # the authors' files have no newline after the last line
        path.write_text("\n".join(rows))


if __name__ == "__main__":
    main()
