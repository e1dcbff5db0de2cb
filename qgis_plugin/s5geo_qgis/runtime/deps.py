"""Optional dependencies of the plugin and the exact command that installs each one."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType


class MissingDependencyError(RuntimeError):
    """A Python package the plugin needs is not installed in QGIS's Python."""


def qgis_python() -> str:
    """Return the Python interpreter QGIS runs (``sys.executable`` may be QGIS itself)."""
    prefix = Path(sys.exec_prefix)
    candidates = (
        [prefix / "python.exe", prefix / "python3.exe"]
        if os.name == "nt"
        else [prefix / "bin" / "python3", prefix / "bin" / "python"]
    )
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    return "python3"


def install_command(package: str) -> str:
    """Return the command that installs ``package`` into QGIS's Python."""
    user = "" if os.name == "nt" or sys.prefix != sys.base_prefix else " --user"
    return f'"{qgis_python()}" -m pip install{user} {package}'


def install_hint(package: str) -> str:
    """Return a one-paragraph message telling the user how to install ``package``."""
    hint = (
        f"The s5geo plugin needs the Python package '{package}', which QGIS's Python "
        "cannot import. "
        f"Install it with:  {install_command(package)}  and restart QGIS."
    )
    if os.name == "nt":
        hint += " On Windows run the command in the OSGeo4W Shell as administrator."
    return hint


def require(module: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` with the install command.

    Args:
        module: module to import (e.g. ``onnxruntime``).
        package: pip package that provides it, when its name differs from ``module``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(install_hint(package or module)) from error


def onnxruntime() -> ModuleType:
    """Return the ``onnxruntime`` module or raise :class:`MissingDependencyError`."""
    return require("onnxruntime")


def torch_available() -> bool:
    """Whether s5geo and torch are importable (needed only for s5geo checkpoints)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "s5geo"))
