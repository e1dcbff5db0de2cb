#!/usr/bin/env python3
"""Write a tiny fake ISPRS Vaihingen release (the two zips TorchGeo's Vaihingen2D extracts).

ISPRS_semantic_labeling_Vaihingen.zip holds top/top_mosaic_09cm_area<N>.tif (3-band uint8 IRRG
GeoTIFF); ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip holds
top_mosaic_09cm_area<N>.tif (3-band uint8 RGB-coded labels) at its root. Two training areas and one
test area, with odd sizes so that 32 px tiling has a border-aligned last window. Seeded and
byte-for-byte reproducible; files are written next to this script.
"""

import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _fake_release import write_isprs_release  # noqa: E402

SIZES = {"area1": (70, 90), "area3": (40, 50), "area2": (50, 60)}  # area2 is a test area


def main() -> None:
    members = [
        (f"top/top_mosaic_09cm_{area}.tif", f"top_mosaic_09cm_{area}.tif", height, width)
        for area, (height, width) in SIZES.items()
    ]
    images = zipfile.ZipFile(HERE / "ISPRS_semantic_labeling_Vaihingen.zip", "w")
    labels = zipfile.ZipFile(HERE / "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip", "w")
    write_isprs_release(np.random.default_rng(0), images, labels, members, bands=3, label_block=10)


if __name__ == "__main__":
    main()
