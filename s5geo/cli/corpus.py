"""``s5geo corpus build|shard``: build MillionSeg from source datasets, write it into shards."""

from __future__ import annotations

import argparse
import os

from s5geo.cli._common import command_parser, keyword_arguments, log_to_stderr
from s5geo.errors import S5GeoError


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``s5geo corpus``."""
    parser = command_parser("corpus", "Build the MillionSeg corpus and write it into streaming shards.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build",
        help="crop source datasets into the RS4P-1M layout, filter by pseudo-labels, count classes",
        description="Crop source datasets as the S5 paper does (512 px; iSAID 1024 px) into the RS4P-1M "
        "layout with a manifest, the authors' split files and per-class statistics. Resumable: run the "
        "same command again to finish an interrupted build.",
    )
    build.add_argument(
        "--source",
        "-s",
        action="append",
        required=True,
        metavar="NAME=PATH[,OPTION=VALUE...]",
        help="a source dataset (repeat): a folder of images, or NAME=isaid for an iSAID root; options "
        "crop=N|whole (default 512, isaid 1024), stride=N, masks=DIR (labeled), split=train|val",
    )
    build.add_argument("--output", "-o", required=True, help="new or empty folder (or an unfinished build)")
    build.add_argument("--workers", "-j", type=int, default=min(8, os.cpu_count() or 1), help="processes")
    build.add_argument(
        "--filter-model",
        help="checkpoint or ONNX model: keep unlabeled crops whose pseudo-label has foreground",
    )
    build.add_argument(
        "--min-foreground", type=int, default=1, help="foreground pixels a kept crop needs (1)"
    )
    build.add_argument("--background", type=int, default=0, help="background class id (0)")
    build.add_argument("--device", default="auto", help="device of the filter model (auto, cpu, cuda:0...)")
    build.add_argument("--batch-size", type=int, default=8, help="crops per forward of the filter model")
    build.add_argument("--no-progress", action="store_true", help="hide progress bars")

    shard = commands.add_parser(
        "shard",
        help="write a corpus part into LitData shards for streaming",
        description="Write the samples of one MillionSeg part (from a manifest or the folder layout) into "
        "LitData shards that ShardedSegmentation streams under DDP. Needs the 'corpus' extra (litdata).",
    )
    shard.add_argument("--root", "-r", required=True, help="the corpus folder")
    shard.add_argument("--output", "-o", required=True, help="new folder for the shards")
    shard.add_argument("--manifest", "-m", help="manifest.csv or a split file (default: walk the folders)")
    shard.add_argument(
        "--part",
        choices=["labeled", "unlabeled", "pseudo_labeled"],
        default="pseudo_labeled",
        help="which part (default pseudo_labeled, the SEP training set)",
    )
    shard.add_argument("--split", choices=["train", "val"], default="train", help="split of the labeled part")
    shard.add_argument("--chunk-bytes", default="128MB", help="size of one chunk file (128MB)")
    shard.add_argument("--workers", "-j", type=int, default=min(8, os.cpu_count() or 1), help="processes")
    shard.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _build(args: argparse.Namespace) -> int:
    from s5geo.corpus.build import build_corpus, parse_source

    options = keyword_arguments(args)
    del options["command"]
    stats = build_corpus([parse_source(text) for text in options.pop("source")], **options)
    print(
        f"{stats.crops} crops from {stats.source_images} source images ({stats.resumed} done before, "
        f"{stats.rejected} without foreground removed); manifest {stats.manifest}, "
        f"statistics {stats.statistics}"
    )
    if stats.failed:
        raise S5GeoError(
            f"{len(stats.failed)} source images could not be read (first: {stats.failed[0][1]}); "
            "fix or remove them and run the same command again"
        )
    return 0


def _shard(args: argparse.Namespace) -> int:
    from s5geo.corpus.shard import manifest_samples, write_shards

    samples = manifest_samples(args.root, args.manifest, args.part, args.split)
    count = write_shards(
        samples,
        args.output,
        chunk_bytes=args.chunk_bytes,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(f"{count} {args.part} samples written into shards in {args.output}")
    return 0


def main(argv: list[str]) -> int:
    """Run ``s5geo corpus``; returns the exit status."""
    args = build_parser().parse_args(argv)
    with log_to_stderr("s5geo", f"corpus {args.command}"):
        return _build(args) if args.command == "build" else _shard(args)
