"""``s5geo pseudo-label --model MODEL --images DIR_OR_LIST --output DIR``."""

from __future__ import annotations

import argparse

from s5geo.cli._common import add_window_options, command_parser, keyword_arguments, log_to_stderr
from s5geo.errors import S5GeoError


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected I/N (e.g. 0/4), got {text!r}") from error
    return i, n


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``s5geo pseudo-label``."""
    parser = command_parser(
        "pseudo-label",
        "Label a folder or manifest of images with a trained model: palette PNG masks with the "
        "same relative names; resumable and shardable.",
    )
    parser.add_argument("--model", "-m", required=True, help="checkpoint (.ckpt) or ONNX model (.onnx)")
    parser.add_argument("--images", "-i", required=True, help="image folder or manifest file")
    parser.add_argument("--output", "-o", required=True, help="output folder for the masks")
    parser.add_argument("--confidence", action="store_true", help="also write confidence PNGs")
    parser.add_argument(
        "--shard", type=_shard, default=(0, 1), help="I/N: label images whose index is I mod N (default 0/1)"
    )
    parser.add_argument(
        "--min-foreground",
        type=int,
        help="write the list of images with at least this many foreground pixels",
    )
    parser.add_argument("--foreground-list", help="where to write that list")
    parser.add_argument("--background", type=int, default=0, help="background class id (0)")
    add_window_options(parser, batch_size=8, unit="images")
    return parser


def main(argv: list[str]) -> int:
    """Run ``s5geo pseudo-label``; returns the exit status."""
    args = build_parser().parse_args(argv)
    from s5geo.inference.pseudo_label import pseudo_label

    options = keyword_arguments(args)
    options["output_dir"] = options.pop("output")
    with log_to_stderr("s5geo.inference", "pseudo-label"):
        stats = pseudo_label(**options)
    if stats.failed:
        reason = stats.failed[0][1]
        raise S5GeoError(
            f"{len(stats.failed)} of {stats.total} images could not be read and have no mask "
            f"(first: {reason}); fix or remove them and run again to label the rest"
        )
    return 0
