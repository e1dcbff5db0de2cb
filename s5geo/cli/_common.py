"""What the tool commands share: their parser, the sliding-window options, the call and the log."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from s5geo.runtime.predictor import PRECISIONS


def command_parser(command: str, description: str) -> argparse.ArgumentParser:
    """Return an empty argument parser for ``s5geo <command>``."""
    return argparse.ArgumentParser(prog=f"s5geo {command}", description=description)


def add_window_options(parser: argparse.ArgumentParser, batch_size: int, unit: str) -> None:
    """Add the sliding-window, device and progress options (``--window`` ... ``--no-progress``).

    Args:
        parser: the command's parser.
        batch_size: default of ``--batch-size``.
        unit: what one batch item is (``"windows"``, ``"images"``), for the help text.
    """
    parser.add_argument("--window", type=int, help="window size in pixels (default: model's)")
    parser.add_argument("--overlap", type=float, help="window overlap fraction (default: model's)")
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"{unit} per forward ({batch_size})"
    )
    parser.add_argument(
        "--blend",
        choices=["none", "linear", "cosine"],
        default="cosine",
        help="how overlapping windows are merged (cosine)",
    )
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda:0...")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="PyTorch models: fp32, or bf16/fp16 autocast (faster on recent GPUs) (fp32)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def keyword_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options as keyword arguments of the function a command runs.

    An option's name is the keyword's, but for ``--window`` (``window_size``) and ``--no-progress``
    or ``--quiet`` (``progress``, inverted).
    """
    options = dict(vars(args))
    if "window" in options:
        options["window_size"] = options.pop("window")
    for hide in ("no_progress", "quiet"):
        if hide in options:
            options["progress"] = not options.pop(hide)
    return options


@contextmanager
def log_to_stderr(logger_name: str, command: str, level: int | None = logging.INFO) -> Iterator[None]:
    """Print the records of ``logger_name`` on stderr as ``s5geo <command>: <message>`` in the block.

    Args:
        logger_name: the logger to show.
        command: the command name, as the prefix of each line.
        level: the logger's level inside the block (None: left as it is).
    """
    logger = logging.getLogger(logger_name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"s5geo {command}: %(message)s"))
    logger.addHandler(handler)
    previous = logger.level
    if level is not None:
        logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
