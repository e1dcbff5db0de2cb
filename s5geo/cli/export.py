"""``s5geo export CHECKPOINT --output model.onnx``: export a trained model to ONNX.

``--head DATASET`` exports one dataset's head of the S5 authors' multi-dataset models instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from s5geo.cli._common import command_parser, keyword_arguments
from s5geo.errors import S5GeoError


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``s5geo export``."""
    parser = command_parser(
        "export",
        "Export an s5geo checkpoint to ONNX (dynamic batch and window size) with its metadata "
        "(classes, colours, bands, mean/std, window, overlap, gsd) under metadata_props 's5geo'. "
        "The network takes normalised input; runtimes normalise with the metadata. "
        "With --head, CHECKPOINT is one of the S5 authors' multi-dataset models (file or weights "
        "name) and one dataset's head is exported with that dataset's classes and colours.",
    )
    parser.add_argument(
        "checkpoint",
        help="s5geo task checkpoint (.ckpt); with --head, the authors' multi-dataset model file "
        "(s5_vit_b_moe_mdf.pth) or its weights name (s5_moe_mdf_vit_b, see s5geo weights list)",
    )
    parser.add_argument("--output", "-o", type=Path, required=True, help="ONNX file to write")
    parser.add_argument(
        "--head",
        metavar="DATASET",
        help="export this dataset's head of an S5 multi-dataset model: "
        "vaihingen, potsdam, openearthmap or loveda",
    )
    parser.add_argument(
        "--model",
        help="with --head: the architecture (upernet_vit_b_moe, upernet_vit_l_moe); "
        "default inferred from the tensor shapes",
    )
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset version (default 18)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the ONNX Runtime vs PyTorch comparison on random inputs",
    )
    return parser


def main(argv: list[str]) -> int:
    """Run ``s5geo export``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.output.suffix.lower() != ".onnx":
        raise S5GeoError(f"output {str(args.output)!r} must end with .onnx")
    from s5geo.inference.onnx_export import export_checkpoint

    path, metadata = export_checkpoint(**keyword_arguments(args))
    head = f"{args.head} head ({metadata.model}), " if args.head else ""
    print(
        f"wrote {path}: {head}{metadata.in_channels} bands -> {metadata.num_classes} classes "
        f"({', '.join(metadata.classes)}), window {metadata.window_size}, "
        f"overlap {metadata.overlap}"
    )
    return 0
