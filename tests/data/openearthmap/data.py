#!/usr/bin/env python3
"""Write a tiny fake OpenEarthMap release (Zenodo 7223446 layout).

<region>/images/<region>_<n>.tif are 3-band uint8 GeoTIFFs, <region>/labels/<region>_<n>.tif 1-band
uint8 GeoTIFFs with values 0..8; train.txt, val.txt and test.txt list file names. "houston" is one
of the xBD regions; the test image has no label, as in the release. Seeded and reproducible; files
are written next to this script.
"""

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent
# name -> (height, width, has label)
FILES = {
    "aachen_1.tif": (40, 48, True),
    "aachen_2.tif": (40, 40, True),
    "aachen_3.tif": (32, 32, True),
    "houston_1.tif": (32, 32, True),
    "houston_2.tif": (32, 32, True),
    "tokyo_1.tif": (36, 40, True),
    "tokyo_2.tif": (32, 32, False),
}
SPLITS = {
    "train": ["aachen_1.tif", "aachen_2.tif", "houston_1.tif", "tokyo_1.tif"],
    "val": ["aachen_3.tif", "houston_2.tif"],
    "test": ["tokyo_2.tif"],
}


def write_tif(path: Path, array: np.ndarray) -> None:
    """Write a C x H x W uint8 array as a small georeferenced GeoTIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count, height, width = array.shape
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": count,
        "dtype": "uint8",
        "crs": "EPSG:32632",
        "transform": from_origin(290000.0, 5630000.0, 0.5, 0.5),
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


def main() -> None:
    rng = np.random.default_rng(3)
    for name, (height, width, has_label) in FILES.items():
        region = name.rsplit("_", 1)[0]
        coarse = rng.integers(0, 256, size=(3, height // 4, width // 4), dtype=np.uint8)
        write_tif(HERE / region / "images" / name, coarse.repeat(4, 1).repeat(4, 2))
        if has_label:
            label = rng.integers(0, 9, size=(height // 4, width // 4), dtype=np.uint8)
            label = label.repeat(4, 0).repeat(4, 1)
            label[0, 0], label[0, 1] = 0, 8  # "other" and building at known places
            write_tif(HERE / region / "labels" / name, label[None])
    for split, names in SPLITS.items():
        (HERE / f"{split}.txt").write_text("".join(f"{name}\n" for name in names))


if __name__ == "__main__":
    main()
