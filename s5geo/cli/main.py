"""Entry point of the ``s5geo`` command.

Lightning subcommands (fit, validate, test, predict) go to LightningCLI, as in ``torchgeo``. The other
subcommands are small argparse programs in their own modules, imported only when called so that
``s5geo --help`` and ``s5geo --version`` start without importing torch.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from s5geo._version import __version__
from s5geo.errors import S5GeoError
from s5geo.inference.allocator import keep_large_buffers

#: Subcommands handled by LightningCLI.
LIGHTNING_COMMANDS: dict[str, str] = {
    "fit": "Train a model (S5 pre-training or fine-tuning) from a config",
    "validate": "Evaluate a model on the validation split",
    "test": "Evaluate a model on the test split",
    "predict": "Predict over a dataset and write georeferenced outputs",
}

#: Other subcommands: name -> (module under s5geo.cli, one-line help).
TOOL_COMMANDS: dict[str, tuple[str, str]] = {
    "segment": ("segment", "Segment a raster of any size into a georeferenced land-cover map"),
    "vectorize": ("vectorize", "Turn a land-cover map into clean polygons (GPKG, GeoJSON, Parquet)"),
    "pseudo-label": ("pseudo_label", "Label a folder or list of images with a trained model"),
    "export": ("export", "Export a trained model to ONNX with its metadata"),
    "demo": ("demo", "Run the S5 demo on the sample data shipped with s5geo"),
    "weights": ("weights", "List, fetch (resumable, verified) and convert pre-trained weights"),
    "corpus": ("corpus", "Build MillionSeg from source datasets (crop, filter, count) and write shards"),
}


def _usage() -> str:
    lines = [
        "usage: s5geo [--help] [--version] <command> [<args>]",
        "",
        "Semi-supervised land-cover segmentation of remote-sensing imagery (S5), built on TorchGeo.",
        "",
        "training and evaluation (LightningCLI; see `s5geo fit --help`):",
    ]
    lines += [f"  {name:<14}{text}" for name, text in LIGHTNING_COMMANDS.items()]
    lines += ["", "tools:"]
    available = {name: v for name, v in TOOL_COMMANDS.items() if _module_exists(v[0])}
    lines += [f"  {name:<14}{text}" for name, (_, text) in available.items()]
    lines += [
        "",
        "Run `s5geo <command> --help` for the options of a command; `s5geo --debug <command> ...`",
        "shows the traceback of an error.",
    ]
    return "\n".join(lines)


def _one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (nested messages keep their first lines, joined)."""
    text = str(error).strip() or type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines[:4]) + (" ..." if len(lines) > 4 else "")


def _module_exists(module: str) -> bool:
    return importlib.util.find_spec(f"s5geo.cli.{module}") is not None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``s5geo`` command.

    Args:
        argv: arguments without the program name (defaults to ``sys.argv[1:]``).

    Returns:
        The process exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("S5GEO_DEBUG"))
    if args[:1] == ["--debug"]:
        debug, args = True, args[1:]
        if argv is None:
            sys.argv = [sys.argv[0], *args]  # LightningCLI and DDP's launcher read sys.argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0 if args else 2
    if args[0] in {"-V", "--version"}:
        print(f"s5geo {__version__}")
        return 0

    command, rest = args[0], args[1:]
    keep_large_buffers()  # this process is ours: CPU forwards and backwards without page faults
    try:
        if command in LIGHTNING_COMMANDS:
            from s5geo.cli.lightning import run_lightning_cli

            # From the real command line LightningCLI reads sys.argv itself (DDP re-launches it).
            run_lightning_cli(None if argv is None else [command, *rest])
            return 0
        if command in TOOL_COMMANDS and "--debug" in rest:
            debug, rest = True, [a for a in rest if a != "--debug"]
        if command in TOOL_COMMANDS and _module_exists(TOOL_COMMANDS[command][0]):
            module = importlib.import_module(f"s5geo.cli.{TOOL_COMMANDS[command][0]}")
            return int(module.main(rest) or 0)
    except S5GeoError as error:
        if debug:
            raise
        print(f"s5geo {command}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except OSError as error:  # disk full, permissions... raised where no file name was known
        if debug:
            raise
        print(f"s5geo {command}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"s5geo {command}: interrupted", file=sys.stderr)
        return 130

    print(f"s5geo: error: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
