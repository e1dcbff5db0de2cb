"""Benchmark ``s5geo vectorize`` (block-wise) against whole-array ``rasterio.features.shapes``.

Usage:
    .venv/bin/python benchmarks/vectorize.py [--size 8192] [--seed 0] [--workdir DIR]

Writes a seeded synthetic land-cover map (blobby multi-scale regions, 7 classes, 10 m pixels,
EPSG:32119, tiled and compressed GeoTIFF), then runs each method in its own subprocess and reports
wall time and peak RSS (``ru_maxrss`` of that process), checks that both give the same polygons
(count and total area per class) and prints the ratios s5geo / baseline. Targets: time ratio <= 1,
memory ratio <= 0.5.

The baseline is the usual recipe: read the whole band, ``rasterio.features.shapes`` over it, and
``GeoDataFrame.from_features``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_CLASSES = 7
# (cells across the map, weight): large fields, medium patches, small patches, pixel-level noise
OCTAVES = ((12, 1.0), (48, 0.55), (192, 0.3), (768, 0.14))
NOISE = 0.04
CHUNK = 512


def _upsample_rows(coarse: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of a (n, n) grid to rows ``rows`` of a (size, size) map."""
    n = coarse.shape[0]
    pos = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    f = (pos - i0).astype(np.float32)
    r0, r1, fr = i0[rows], i1[rows], f[rows][:, None]
    by_row = coarse[r0] * (1 - fr) + coarse[r1] * fr  # (len(rows), n)
    return by_row[:, i0] * (1 - f) + by_row[:, i1] * f


def make_map(path: Path, size: int, seed: int) -> None:
    """Write the synthetic class map, generated in row chunks to keep memory low."""
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(seed)
    grids = [
        [rng.standard_normal((cells + 1, cells + 1)).astype(np.float32) * w for cells, w in OCTAVES]
        for _ in range(N_CLASSES)
    ]
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32119",
        "transform": Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 250_000.0),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, CHUNK):
            rows = np.arange(r0, min(r0 + CHUNK, size))
            best = np.full((len(rows), size), -np.inf, dtype=np.float32)
            out = np.zeros((len(rows), size), dtype=np.uint8)
            for k in range(N_CLASSES):
                field = sum(_upsample_rows(g, rows, size) for g in grids[k])
                field += NOISE * rng.standard_normal(field.shape, dtype=np.float32)
                better = field > best
                best[better] = field[better]
                out[better] = k
            dst.write(out, 1, window=((r0, r0 + len(rows)), (0, size)))
        dst.update_tags(classes=json.dumps([f"landcover_{k}" for k in range(N_CLASSES)]))


def run_s5geo(path: str) -> dict:
    from s5geo.vector import vectorize

    start = time.perf_counter()
    gdf = vectorize(path, progress=False)
    elapsed = time.perf_counter() - start
    return _result(elapsed, gdf.class_id.to_numpy(), gdf.geometry.area.to_numpy())


def run_baseline(path: str) -> dict:
    import geopandas as gpd
    import rasterio
    from rasterio.features import shapes

    start = time.perf_counter()
    with rasterio.open(path) as src:
        array = src.read(1)
        features = [
            {"geometry": geom, "properties": {"class_id": int(value)}}
            for geom, value in shapes(array, connectivity=4, transform=src.transform)
        ]
        gdf = gpd.GeoDataFrame.from_features(features, crs=src.crs)
    elapsed = time.perf_counter() - start
    return _result(elapsed, gdf.class_id.to_numpy(), gdf.geometry.area.to_numpy())


def _result(elapsed: float, class_ids: np.ndarray, areas: np.ndarray) -> dict:
    counts = {int(c): int((class_ids == c).sum()) for c in np.unique(class_ids)}
    totals = {int(c): float(areas[class_ids == c].sum()) for c in np.unique(class_ids)}
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"time_s": elapsed, "peak_rss_mib": peak_mib, "counts": counts, "areas": totals}


def _child(method: str, path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", method, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        method, path = args.child
        result = (run_s5geo if method == "s5geo" else run_baseline)(path)
        print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = Path(tmp) / f"landcover_{args.size}.tif"
        start = time.perf_counter()
        make_map(path, args.size, args.seed)
        print(f"map: {args.size} x {args.size}, seed {args.seed}, {N_CLASSES} classes "
              f"({time.perf_counter() - start:.1f} s to generate)")  # fmt: skip
        base = _child("baseline", path)
        ours = _child("s5geo", path)

    same_counts = base["counts"] == ours["counts"]
    same_areas = base["areas"].keys() == ours["areas"].keys() and all(
        abs(base["areas"][k] - ours["areas"][k]) <= 1e-6 * max(1.0, base["areas"][k]) for k in base["areas"]
    )
    n_polygons = sum(base["counts"].values())
    print(f"polygons: {n_polygons}; same count per class: {same_counts}; "
          f"same area per class: {same_areas}")  # fmt: skip
    print(f"{'method':<10}{'time s':>9}{'peak RSS MiB':>15}")
    for name, res in (("baseline", base), ("s5geo", ours)):
        print(f"{name:<10}{res['time_s']:>9.1f}{res['peak_rss_mib']:>15.0f}")
    time_ratio = ours["time_s"] / base["time_s"]
    mem_ratio = ours["peak_rss_mib"] / base["peak_rss_mib"]
    print(f"ratio s5geo/baseline: time {time_ratio:.2f} (target <= 1), "
          f"peak RSS {mem_ratio:.2f} (target <= 0.5)")  # fmt: skip
    return 0 if same_counts and same_areas else 1


if __name__ == "__main__":
    sys.exit(main())
