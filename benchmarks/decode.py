"""Benchmark image decoding: s5geo's one decoder per format against the single decoders used before.

Usage: ``.venv/bin/python benchmarks/decode.py [--n 200] [--size 512] [--rounds 5]``

Writes ``n`` seeded photo-like RGB images as JPEG (quality 90) and as PNG, then reads them all,
alternating the methods for ``rounds`` rounds; the table shows the median time per image and the
ratio to the baseline of the same round:

* files: ``rasterio.open(path).read()`` (datasets and pseudo-labels before) against
  :func:`s5geo.imagefile.read_image_file`;
* bytes (shards): Pillow for PNG and JPEG (shards before) against
  :func:`s5geo.imagefile.decode_image_bytes`.

Results go to ``benchmarks/RESULTS.md`` (``## decode``) unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from _results import replace_section
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning

from s5geo.imagefile import decode_image_bytes, read_image_file


def make_images(folder: Path, n: int, size: int) -> dict[str, list[Path]]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    paths: dict[str, list[Path]] = {"jpg": [], "png": []}
    for k in range(n):
        smooth = (np.sin(yy / (9.0 + k % 7)) + np.cos(xx / (13.0 + k % 5))) * 60 + 120
        rgb = (smooth[..., None] + rng.integers(0, 24, size=(size, size, 3))).clip(0, 255).astype(np.uint8)
        for ext, options in (("jpg", {"quality": 90}), ("png", {})):
            path = folder / f"img{k:04d}.{ext}"
            Image.fromarray(rgb).save(path, **options)
            paths[ext].append(path)
    return paths


def gdal_file(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def pillow_bytes(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(image)
    return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)


def timed(fn: Callable, items: list) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore", NotGeoreferencedWarning)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), args.n, args.size)
        for ext in ("jpg", "png"):
            blobs = [p.read_bytes() for p in paths[ext]]
            cases = {
                "files": (gdal_file, read_image_file, paths[ext]),
                "bytes (shards)": (pillow_bytes, decode_image_bytes, blobs),
            }
            for kind, (old, new, items) in cases.items():
                olds, news = [], []
                for r in range(args.rounds):
                    pair = [(olds, old), (news, new)]
                    for times, fn in pair if r % 2 == 0 else pair[::-1]:
                        times.append(timed(fn, items))
                ratio = float(np.median([n / o for n, o in zip(news, olds, strict=True)]))
                rows.append(
                    f"| {ext.upper()} | {kind} | {1000 * np.median(olds):.2f} | "
                    f"{1000 * np.median(news):.2f} | **{ratio:.2f}** |"
                )
    text = "\n".join(
        [
            "## decode",
            "",
            f"Command: `.venv/bin/python benchmarks/decode.py --n {args.n} --size {args.size} "
            f"--rounds {args.rounds}`",
            "",
            f"{args.n} seeded photo-like RGB images of {args.size} px (JPEG quality 90, PNG); each "
            f"method reads all of them, alternating, {args.rounds} rounds; ratio = s5geo / before, "
            "median of the rounds.",
            "",
            "| format | read from | before ms/image | s5geo ms/image | ratio |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "Before: datasets and pseudo-labels read files with GDAL, shards decoded bytes with "
            "Pillow. s5geo: JPEG with Pillow, everything else with GDAL, for files and bytes alike.",
            "",
        ]
    )
    print(text)
    if not args.no_write:
        replace_section(text)


if __name__ == "__main__":
    main()
