"""``s5geo demo``: S5 and georeferenced segmentation on the sample data shipped with s5geo."""

from __future__ import annotations

from pathlib import Path

from s5geo.cli._common import command_parser


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def main(argv: list[str]) -> int:
    """Run the demo and print its summary."""
    parser = command_parser(
        "demo",
        "Run S5 (FixMatch on labeled + unlabeled images, continuing from the supervised network) "
        "against supervised-only training from ImageNet weights, on the Dubai aerial sample, and "
        "segment + vectorize the NC Landsat scene. About 10 minutes on 2 CPU cores.",
    )
    parser.add_argument(
        "--output", type=Path, default=Path("s5geo-demo"), help="output folder (default: %(default)s)"
    )
    parser.add_argument("--force", action="store_true", help="redo the steps an earlier run finished")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run with a few steps (numbers mean nothing)"
    )
    parser.add_argument("--data", type=Path, default=None, help="sample data folder (default: shipped copy)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)

    from s5geo.demo import run_demo

    summary = run_demo(
        args.output, force=args.force, quick=args.quick, data=args.data, progress=not args.no_progress
    )
    dubai, landsat = summary["dubai"], summary["landsat"]
    print()
    print(f"s5geo demo finished in {summary['seconds']:.0f} s; outputs in {args.output}/")
    print(
        f"Dubai held-out tiles ({dubai['split']['held_out']} images), "
        f"{dubai['split']['labeled']} labeled + {dubai['split']['unlabeled']} unlabeled training images:"
    )
    print(f"  mIoU supervised only: {_pct(dubai['metrics']['supervised']['mIoU'])}")
    print(f"  mIoU S5 (FixMatch, labeled + unlabeled): {_pct(dubai['metrics']['s5']['mIoU'])}")
    print("  (one seed; over paired seeds see benchmarks/RESULTS.md, semi_supervised_real)")
    print(
        f"NC Landsat scene vs strata.tif: mIoU {_pct(landsat['metrics']['mIoU'])}, "
        f"OA {_pct(landsat['metrics']['OA'])}; {landsat['polygons']} polygons"
    )
    print(f"Report: {args.output / 'report.md'}")
    return 0
