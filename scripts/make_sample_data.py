"""Build the sample data shipped in ``s5geo/sample_data`` from the full data sets.

Dubai aerial: every image and mask, reduced so that the long side is at most ``--max-side`` pixels
(images bilinear as JPEG, masks nearest-neighbour as PNG so colours stay exact). NC Landsat: the six
bands, the land-cover map, the sparse labels and the training polygons, re-written with DEFLATE.

Usage: python scripts/make_sample_data.py --source ../shared/data --max-side 384
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import rasterio
from PIL import Image

DEST = Path(__file__).resolve().parents[1] / "s5geo" / "sample_data"

DUBAI_LICENSE = """Semantic segmentation of aerial imagery (Dubai), Humans in the Loop.
Satellite imagery of Dubai obtained by MBRSC satellites and annotated with pixel-wise semantic
segmentation in 6 classes. Released under CC0 1.0 (public domain dedication):
https://creativecommons.org/publicdomain/zero/1.0/

The copy shipped here is reduced in size (long side at most {max_side} px, images bilinear,
masks nearest-neighbour) by scripts/make_sample_data.py. Real mask colours (the classes.json of the
original release is wrong): building (60,16,152), land (132,41,246), road (110,193,228),
vegetation (254,221,58), water (226,169,41), unlabeled (155,155,155); other colours are unlabeled.
"""

NC_LICENSE = """North Carolina sample data set of GRASS GIS (OSGeo), Landsat-7 ETM+ scene of 2000
(bands 1, 2, 3, 4, 5, 7) over Raleigh, NC, with a 1996 land-cover map (strata.tif), sparse labelled
pixels and training polygons. Licence: Creative Commons Attribution-ShareAlike 3.0 (CC BY-SA 3.0),
https://creativecommons.org/licenses/by-sa/3.0/ . Attribution: GRASS Development Team / OSGeo,
North Carolina sample data set, https://grass.osgeo.org/download/data/ .

The files are unchanged in content; rasters are re-written with DEFLATE compression by
scripts/make_sample_data.py.
"""


def reduce_dubai(source: Path, dest: Path, max_side: int) -> None:
    """Copy the Dubai tiles, reducing each image and mask to ``max_side``."""
    for image_path in sorted(source.glob("Tile */images/*.jpg")):
        mask_path = image_path.parent.parent / "masks" / f"{image_path.stem}.png"
        rel = image_path.parent.parent.relative_to(source)
        with Image.open(image_path) as image, Image.open(mask_path) as mask:
            scale = min(1.0, max_side / max(image.size))
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            out_image = dest / rel / "images" / image_path.name
            out_mask = dest / rel / "masks" / mask_path.name
            out_image.parent.mkdir(parents=True, exist_ok=True)
            out_mask.parent.mkdir(parents=True, exist_ok=True)
            image.convert("RGB").resize(size, Image.Resampling.BILINEAR).save(out_image, quality=90)
            # Nearest keeps colours exact; paletted masks (Tiles 2 and 4) stay paletted, as released.
            keep = mask if mask.mode in ("P", "RGB") else mask.convert("RGB")
            keep.resize(size, Image.Resampling.NEAREST).save(out_mask, optimize=True)


def copy_landsat(source: Path, dest: Path) -> None:
    """Re-write the NC Landsat rasters compressed and copy the polygons."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.tif")):
        with rasterio.open(path) as src:
            profile = src.profile | {"compress": "deflate", "tiled": False, "predictor": 1}
            profile.pop("blockxsize", None)
            profile.pop("blockysize", None)
            with rasterio.open(dest / path.name, "w", **profile) as dst:
                dst.write(src.read())
    for path in sorted(source.glob("landsat96_polygons.*")):
        shutil.copyfile(path, dest / path.name)


def main() -> None:
    """Build the sample data."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data"))
    parser.add_argument("--max-side", type=int, default=384)
    args = parser.parse_args()
    dubai = DEST / "dubai_aerial"
    shutil.rmtree(dubai, ignore_errors=True)
    reduce_dubai(args.source / "dubai-aerial", dubai, args.max_side)
    (dubai / "LICENSE.txt").write_text(DUBAI_LICENSE.format(max_side=args.max_side))
    landsat = DEST / "nc_landsat"
    shutil.rmtree(landsat, ignore_errors=True)
    copy_landsat(args.source / "nc-landsat", landsat)
    (landsat / "LICENSE.txt").write_text(NC_LICENSE)


if __name__ == "__main__":
    main()
