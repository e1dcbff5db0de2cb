"""``s5geo vectorize``: turn a land-cover class map into polygons (GPKG, GeoJSON, GeoParquet)."""

from __future__ import annotations

import argparse
import time

from s5geo.cli._common import command_parser, keyword_arguments, log_to_stderr
from s5geo.errors import S5GeoError


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``s5geo vectorize``."""
    parser = command_parser(
        "vectorize",
        "Polygonise a class-map raster block by block into one polygon per connected region "
        "(4-connectivity), with class_id, class_name and area_m2 attributes. Regions cut by blocks "
        "are dissolved, so the result equals whole-raster polygonising.",
    )
    parser.add_argument("classmap", help="class-map raster (integer classes), e.g. from s5geo segment")
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        help="output file: .gpkg (one transaction), .geojson or .parquet (GeoParquet)",
    )
    parser.add_argument("--band", type=int, default=1, help="1-based band holding the classes")
    parser.add_argument(
        "--min-area",
        type=float,
        default=0.0,
        metavar="M2",
        help="regions smaller than this many square metres are merged or dropped (default 0)",
    )
    parser.add_argument(
        "--min-area-mode",
        choices=("merge", "drop"),
        default="merge",
        help="merge: sieve small regions into their largest neighbour before polygonising "
        "(default); drop: remove small polygons",
    )
    parser.add_argument(
        "--simplify",
        type=float,
        default=0.0,
        metavar="M",
        help="topology-preserving simplification tolerance in metres, converted for geographic "
        "CRSs (default 0 = none)",
    )
    parser.add_argument("--block-size", type=int, default=None, metavar="N", help="block side in pixels")
    parser.add_argument(
        "--nodata", type=int, default=None, help="class value meaning no data (default: raster's)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    return parser


def main(argv: list[str]) -> int:
    """Run ``s5geo vectorize``.

    Returns:
        The exit status (0 on success). User errors are raised as ``S5GeoError``.
    """
    args = build_parser().parse_args(argv)
    from s5geo.vector.vectorize import summary, vectorize

    if args.block_size is not None and args.block_size < 1:
        raise S5GeoError(f"--block-size must be >= 1, got {args.block_size}")
    start = time.perf_counter()
    with log_to_stderr("s5geo.vector", "vectorize", level=None):
        gdf = vectorize(**keyword_arguments(args))
    elapsed = time.perf_counter() - start
    if not args.quiet:
        rows = summary(gdf)
        width = max([len(name) for _, name, _, _ in rows] + [5])
        print(f"{'id':>4}  {'class':<{width}}  {'polygons':>9}  {'area_m2':>14}")
        for class_id, name, count, area in rows:
            print(f"{class_id:>4}  {name:<{width}}  {count:>9}  {area:>14.1f}")
        print(f"wrote {len(gdf)} polygons to {args.output} in {elapsed:.1f} s")
    return 0
