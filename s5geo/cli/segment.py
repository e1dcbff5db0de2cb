"""``s5geo segment INPUT --model MODEL --output OUT.tif``: georeferenced land-cover map."""

from __future__ import annotations

import argparse

from s5geo.cli._common import add_window_options, command_parser, keyword_arguments, log_to_stderr


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``s5geo segment``."""
    parser = command_parser(
        "segment",
        "Segment a raster of any size (GeoTIFF, COG, VRT, JPEG2000...) into a georeferenced uint8 "
        "class map with a colour table.",
    )
    parser.add_argument("input", help="input raster (anything GDAL opens)")
    parser.add_argument("--model", "-m", required=True, help="checkpoint (.ckpt) or ONNX model (.onnx)")
    parser.add_argument("--output", "-o", required=True, help="output GeoTIFF")
    parser.add_argument(
        "--bands",
        type=int,
        nargs="+",
        help="1-based input bands in the model's order (default: the bands whose descriptions match "
        "the model's band names, else the model's own band numbers)",
    )
    add_window_options(parser, batch_size=4, unit="windows")
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
    return parser


def main(argv: list[str]) -> int:
    """Run ``s5geo segment``; returns the exit status."""
    args = build_parser().parse_args(argv)
    from s5geo.inference.segment import segment_raster

    with log_to_stderr("s5geo.inference", "segment"):
        output = segment_raster(**keyword_arguments(args))
    print(output)
    return 0
