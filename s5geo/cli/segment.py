"""``s5geo segment INPUT --model MODEL --output OUT.tif``: georeferenced land-cover map."""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``s5geo segment``."""
    parser = argparse.ArgumentParser(
        prog="s5geo segment",
        description="Segment a raster of any size (GeoTIFF, COG, VRT, JPEG2000...) into a "
        "georeferenced uint8 class map with a colour table.",
    )
    parser.add_argument("input", help="input raster (anything GDAL opens)")
    parser.add_argument("--model", "-m", required=True, help="checkpoint (.ckpt) or ONNX model (.onnx)")
    parser.add_argument("--output", "-o", required=True, help="output GeoTIFF")
    parser.add_argument("--bands", type=int, nargs="+", help="1-based input bands (model order)")
    parser.add_argument("--window", type=int, help="window size in pixels (default: model's)")
    parser.add_argument("--overlap", type=float, help="window overlap fraction (default: model's)")
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward (4)")
    parser.add_argument(
        "--blend",
        choices=["none", "linear", "cosine"],
        default="cosine",
        help="how overlapping windows are merged (cosine)",
    )
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda:0...")
    parser.add_argument(
        "--probabilities",
        choices=["uint8", "float16"],
        help="also write per-class probabilities (<output>_probabilities.tif)",
    )
    parser.add_argument(
        "--confidence",
        action="store_true",
        help="also write the top-class probability (<output>_confidence.tif)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        nargs="+",
        metavar="VALUE",
        help="the raster's value for full brightness / reflectance 1, one or one per band "
        "(e.g. 10000 for Sentinel-2 L2A, 65535 for full-range 16-bit): values are mapped to the "
        "range the model was trained on",
    )
    parser.add_argument("--cog", action="store_true", help="write Cloud Optimized GeoTIFFs")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str]) -> int:
    """Run ``s5geo segment``; returns the exit status."""
    args = build_parser().parse_args(argv)
    from s5geo.inference.segment import segment_raster

    logger = logging.getLogger("s5geo.inference")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("s5geo segment: %(message)s"))
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        output = segment_raster(
            args.input,
            args.model,
            args.output,
            bands=args.bands,
            window_size=args.window,
            overlap=args.overlap,
            batch_size=args.batch_size,
            blend=args.blend,
            device=args.device,
            probabilities=args.probabilities,
            confidence=args.confidence,
            overwrite=args.overwrite,
            cog=args.cog,
            progress=not args.no_progress,
            scale=args.scale,
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    print(output)
    return 0
