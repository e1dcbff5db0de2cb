#!/usr/bin/env python3
"""Write a tiny fake ISPRS Potsdam release (the two zips TorchGeo's Potsdam2D extracts).

4_Ortho_RGBIR.zip holds 4_Ortho_RGBIR/top_potsdam_<X>_<Y>_RGBIR.tif (4-band uint8 GeoTIFF, R, G, B,
IR); 5_Labels_all.zip holds top_potsdam_<X>_<Y>_label.tif (3-band uint8 RGB-coded labels) at its
root. Two training tiles and one test tile (the real ones are 6000 x 6000). Seeded and reproducible;
files are written next to this script.
"""

import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _fake_release import write_isprs_release  # noqa: E402

SIZES = {"top_potsdam_2_10": (64, 64), "top_potsdam_2_11": (48, 80), "top_potsdam_2_13": (40, 40)}


def main() -> None:
    members = [
        (f"4_Ortho_RGBIR/{tile}_RGBIR.tif", f"{tile}_label.tif", height, width)
        for tile, (height, width) in SIZES.items()
    ]
    images = zipfile.ZipFile(HERE / "4_Ortho_RGBIR.zip", "w")
    labels = zipfile.ZipFile(HERE / "5_Labels_all.zip", "w")
    write_isprs_release(np.random.default_rng(1), images, labels, members, bands=4, label_block=8)


if __name__ == "__main__":
    main()
