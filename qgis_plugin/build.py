"""Build the installable QGIS plugin zip ``dist/s5geo_qgis-<version>.zip``.

The plugin must run in a QGIS Python without torch (and usually without s5geo), so it carries
copies of the torch-free modules it shares with s5geo. They are not kept twice in the source tree:
this script copies them into ``s5geo_qgis/_vendor/`` (rewriting ``s5geo`` imports to relative ones
and refusing any module that imports torch or a non-vendored s5geo module), then zips the plugin
folder. The plugin tests run :func:`vendor` first, so they test exactly what goes into the zip.

Usage::

    python qgis_plugin/build.py            # vendor + zip into dist/
    python qgis_plugin/build.py --vendor   # only refresh s5geo_qgis/_vendor/
"""

from __future__ import annotations

import argparse
import ast
import configparser
import re
import sys
import zipfile
from pathlib import Path

PLUGIN_ROOT = Path(__file__).resolve().parent
PLUGIN_DIR = PLUGIN_ROOT / "s5geo_qgis"
REPO_ROOT = PLUGIN_ROOT.parent
VENDOR_DIR = PLUGIN_DIR / "_vendor"

#: s5geo module -> file name in ``_vendor``. Only these may be imported by a vendored module.
VENDORED: dict[str, str] = {
    "s5geo._version": "_version.py",
    "s5geo.errors": "errors.py",
    "s5geo.metadata": "metadata.py",
    "s5geo.inference.tiling": "tiling.py",
}

#: Packages a vendored module must not import (the plugin runtime is torch-free and GDAL-based).
FORBIDDEN_IMPORTS = {"torch", "torchgeo", "lightning", "rasterio", "geopandas", "shapely"}

#: Files and folders never shipped in the zip.
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".git", "__MACOSX"}

#: Files from the repository root copied into the plugin folder of the zip.
EXTRA_FILES = {"LICENSE": REPO_ROOT / "LICENSE"}

#: metadata.txt keys the QGIS plugin repository (plugins.qgis.org) refuses an upload without.
REPOSITORY_REQUIRED_METADATA = (
    "name",
    "qgisMinimumVersion",
    "description",
    "about",
    "version",
    "author",
    "email",
    "repository",
    "tracker",
)

#: Largest zip the plugin repository accepts, in bytes.
REPOSITORY_MAX_SIZE = 25_000_000


class BuildError(RuntimeError):
    """The plugin cannot be built (missing or non-vendorable source module)."""


def _module_path(module: str) -> Path:
    return REPO_ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _rewrite_imports(source: str, module: str) -> str:
    """Return ``source`` with imports of vendored s5geo modules made relative; check the rest."""
    tree = ast.parse(source, filename=module)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in FORBIDDEN_IMPORTS:
                raise BuildError(f"{module} imports {name}: the QGIS plugin cannot vendor it")
            if top == "s5geo" and name not in VENDORED:
                raise BuildError(f"{module} imports {name}, which is not vendored into the plugin")
            if isinstance(node, ast.Import) and top == "s5geo":
                raise BuildError(f"{module}: use 'from {name} import ...' so it can be vendored")

    def relative(match: re.Match[str]) -> str:
        target = VENDORED[match.group(1)]
        return f"from .{target[:-3]} import"

    pattern = re.compile(r"^from\s+(s5geo(?:\.\w+)*)\s+import", flags=re.MULTILINE)
    return pattern.sub(relative, source)


def vendor() -> list[Path]:
    """Copy the shared torch-free s5geo modules into ``s5geo_qgis/_vendor/``.

    Returns:
        The files written.

    Raises:
        BuildError: a module is missing or imports something the plugin cannot carry.
    """
    VENDOR_DIR.mkdir(exist_ok=True)
    written = []
    header = "# Copied from s5geo by qgis_plugin/build.py; edit the original, not this file.\n"
    init = VENDOR_DIR / "__init__.py"
    init.write_text('"""Torch-free s5geo modules copied here by qgis_plugin/build.py."""\n')
    written.append(init)
    for module, name in VENDORED.items():
        path = _module_path(module)
        if not path.is_file():
            raise BuildError(f"cannot vendor {module}: {path} does not exist")
        target = VENDOR_DIR / name
        target.write_text(header + _rewrite_imports(path.read_text(encoding="utf-8"), module))
        written.append(target)
    return written


def plugin_version() -> str:
    """Return the version declared in ``metadata.txt``."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(PLUGIN_DIR / "metadata.txt", encoding="utf-8")
    return parser["general"]["version"]


def build_zip(dist: Path) -> Path:
    """Vendor the shared modules and write ``<dist>/s5geo_qgis-<version>.zip``.

    Args:
        dist: output folder (created when missing).

    Returns:
        The path of the zip.
    """
    vendor()
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / f"s5geo_qgis-{plugin_version()}.zip"
    partial = target.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PLUGIN_DIR.rglob("*")):
            relative = path.relative_to(PLUGIN_ROOT)
            if path.is_dir() or EXCLUDED_PARTS.intersection(relative.parts):
                continue
            if path.suffix in {".pyc", ".pyo"}:
                continue
            archive.write(path, relative.as_posix())
        for name, source in EXTRA_FILES.items():
            if not source.is_file():
                raise BuildError(f"cannot package {name}: {source} does not exist")
            archive.write(source, f"{PLUGIN_DIR.name}/{name}")
    problems = repository_problems(partial)
    if problems:
        partial.unlink()
        raise BuildError("the zip breaks the QGIS plugin repository's rules: " + "; ".join(problems))
    partial.replace(target)
    return target


def repository_problems(path: Path) -> list[str]:
    """Check a plugin zip against the QGIS plugin repository's upload rules, offline.

    The rules are those plugins.qgis.org applies to an upload: one top-level folder named with
    ASCII letters, digits, ``-`` and ``_``; ``__init__.py``, ``metadata.txt`` with a
    ``[general]`` section holding every key of :data:`REPOSITORY_REQUIRED_METADATA` and ``LICENSE``
    in that folder; no compiled Python, ``__pycache__``, ``.git`` or ``__MACOSX``; no absolute
    or ``..`` paths; at most :data:`REPOSITORY_MAX_SIZE` bytes; URLs with a scheme and a host;
    no slash in the author; boolean flags spelt True/False; and the icon it names present.

    Returns:
        One sentence per broken rule (empty when the zip would be accepted).
    """
    problems: list[str] = []
    if path.stat().st_size > REPOSITORY_MAX_SIZE:
        problems.append(f"the zip is larger than {REPOSITORY_MAX_SIZE // 1_000_000} MB")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return [*problems, "the file is not a zip"]
    with archive:
        names = archive.namelist()
        for name in names:
            parts = name.split("/")
            if name.startswith("/") or ".." in parts:
                problems.append(f"{name}: absolute or parent-folder path")
            if ".pyc" in name or name.endswith(".pyo"):
                problems.append(f"{name}: compiled Python file")
            forbidden = {"__pycache__", ".git", "__MACOSX"}.intersection(parts)
            if forbidden:
                problems.append(f"{name}: {sorted(forbidden)[0]} folder")
        if archive.testzip() is not None:
            problems.append("the zip is corrupt")
        folders = sorted({name.split("/")[0] for name in names if "/" in name})
        if len(folders) != 1 or any("/" not in name for name in names):
            problems.append(f"the zip must hold exactly one top-level folder, found {folders}")
            return problems
        folder = folders[0]
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]+", folder):
            problems.append(f"{folder}: the folder name must be ASCII letters, digits, - and _")
        for required in ("__init__.py", "metadata.txt", "LICENSE"):
            if f"{folder}/{required}" not in names:
                problems.append(f"{folder}/{required} is missing")
        if f"{folder}/metadata.txt" not in names:
            return problems
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign] # keys are case-sensitive
        try:
            parser.read_string(archive.read(f"{folder}/metadata.txt").decode("utf-8"))
        except (configparser.Error, UnicodeDecodeError) as error:
            return [*problems, f"metadata.txt cannot be parsed: {error}"]
        if not parser.has_section("general"):
            return [*problems, "metadata.txt has no [general] section"]
        general = parser["general"]
        missing = [key for key in REPOSITORY_REQUIRED_METADATA if not general.get(key, "").strip()]
        if missing:
            problems.append(f"metadata.txt lacks {', '.join(missing)}")
        for key in ("repository", "tracker", "homepage"):
            url = general.get(key, "").strip()
            if url and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url):
                problems.append(f"metadata.txt {key}={url} is not a web address")
        if "/" in general.get("author", ""):
            problems.append("metadata.txt author must not contain '/'")
        for key in ("experimental", "deprecated", "server"):
            value = general.get(key)
            if value is not None and value.strip() not in ("True", "False"):
                problems.append(f"metadata.txt {key}={value} must be True or False")
        icon = general.get("icon", "").strip().removeprefix("./")
        if not icon:
            problems.append("metadata.txt names no icon")
        elif f"{folder}/{icon}" not in names:
            problems.append(f"the icon {icon} named in metadata.txt is not in the zip")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=REPO_ROOT / "dist", help="output folder")
    parser.add_argument("--vendor", action="store_true", help="only refresh s5geo_qgis/_vendor/")
    args = parser.parse_args(argv)
    try:
        if args.vendor:
            for path in vendor():
                print(path)
        else:
            print(build_zip(args.dist))
    except BuildError as error:
        print(f"build.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
