"""Build the installable QGIS plugin zip ``dist/s5geo_qgis-<version>.zip``.

The plugin must run in a QGIS Python without torch (and usually without s5geo), so it carries
copies of the torch-free modules it shares with s5geo. They are not kept twice in the source tree:
this script copies them into ``s5geo_qgis/_vendor/`` (rewriting ``s5geo`` imports to relative ones
and refusing any module that imports torch or a non-vendored s5geo module), then zips the plugin
folder. The plugin tests run :func:`vendor` first, so they test exactly what goes into the zip.

Usage::

    python qgis_plugin/build.py            # vendor + zip into dist/
    python qgis_plugin/build.py --vendor   # only refresh s5geo_qgis/_vendor/
    python qgis_plugin/build.py --check    # fail if s5geo_qgis/_vendor/ differs from s5geo

What is vendored: ``s5geo/runtime/`` whole (the inference core) into ``_vendor/runtime/``, and the
modules it imports (``metadata``, ``errors``, ``_version``). A zip whose vendored copy differs from
the s5geo sources is refused.
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

#: Package copied whole into ``_vendor/runtime/`` (the inference core the plugin shares with s5geo).
RUNTIME_PACKAGE = REPO_ROOT / "s5geo" / "runtime"

#: Single s5geo modules the runtime needs -> file name in ``_vendor``.
SHARED_MODULES: dict[str, str] = {
    "s5geo._version": "_version.py",
    "s5geo.errors": "errors.py",
    "s5geo.metadata": "metadata.py",
}


def vendored_modules() -> dict[str, str]:
    """Return s5geo module -> path in ``_vendor``: :data:`SHARED_MODULES` and all of ``s5geo.runtime``.

    Only these may be imported by a vendored module.
    """
    modules = dict(SHARED_MODULES)
    for path in sorted(RUNTIME_PACKAGE.glob("*.py")):
        name = "s5geo.runtime" if path.stem == "__init__" else f"s5geo.runtime.{path.stem}"
        modules[name] = f"runtime/{path.name}"
    return modules


VENDORED: dict[str, str] = vendored_modules()

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
    target = VENDORED.get(module, "")
    if target.endswith("__init__.py"):
        return REPO_ROOT.joinpath(*module.split("."), "__init__.py")
    return REPO_ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _relative(source: str, target: str) -> str:
    """Relative module name of vendored file ``target`` seen from vendored file ``source``."""
    here = source.split("/")[:-1]
    parts = target[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    common = 0
    while common < min(len(here), len(parts)) and here[common] == parts[common]:
        common += 1
    return "." * (1 + len(here) - common) + ".".join(parts[common:])


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
        return f"{match.group(1)}from {_relative(VENDORED[module], VENDORED[match.group(2)])} import"

    pattern = re.compile(r"^(\s*)from\s+(s5geo(?:\.\w+)*)\s+import", flags=re.MULTILINE)
    return pattern.sub(relative, source)


VENDOR_HEADER = "# Copied from s5geo by qgis_plugin/build.py; edit the original, not this file.\n"


def vendored_files() -> dict[str, str]:
    """Return the content of every file of ``_vendor`` (path relative to it -> text).

    Raises:
        BuildError: a module is missing or imports something the plugin cannot carry.
    """
    files = {"__init__.py": '"""Torch-free s5geo modules copied here by qgis_plugin/build.py."""\n'}
    for module, name in VENDORED.items():
        path = _module_path(module)
        if not path.is_file():
            raise BuildError(f"cannot vendor {module}: {path} does not exist")
        files[name] = VENDOR_HEADER + _rewrite_imports(path.read_text(encoding="utf-8"), module)
    return files


def vendor() -> list[Path]:
    """Copy the shared torch-free s5geo modules into ``s5geo_qgis/_vendor/``, removing stale files.

    Returns:
        The files written.

    Raises:
        BuildError: a module is missing or imports something the plugin cannot carry.
    """
    files = vendored_files()
    if VENDOR_DIR.exists():
        for path in sorted(VENDOR_DIR.rglob("*.py"), reverse=True):
            if path.relative_to(VENDOR_DIR).as_posix() not in files:
                path.unlink()
    written = []
    for name, text in files.items():
        target = VENDOR_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def vendor_differences(files: dict[str, bytes]) -> list[str]:
    """Compare vendored files (path relative to ``_vendor`` -> bytes) with what s5geo holds now.

    Returns:
        One line per missing, extra or differing file (empty when the copy is exact).
    """
    expected = {name: text.encode("utf-8") for name, text in vendored_files().items()}
    problems = [f"_vendor/{name} is missing" for name in sorted(set(expected) - set(files))]
    problems += [f"_vendor/{name} is not an s5geo module" for name in sorted(set(files) - set(expected))]
    problems += [
        f"_vendor/{name} differs from s5geo (run build.py --vendor)"
        for name in sorted(set(files) & set(expected))
        if files[name] != expected[name]
    ]
    return problems


def check_vendored() -> None:
    """Raise :class:`BuildError` when ``s5geo_qgis/_vendor/`` differs from the s5geo sources."""
    files = {
        path.relative_to(VENDOR_DIR).as_posix(): path.read_bytes()
        for path in (VENDOR_DIR.rglob("*.py") if VENDOR_DIR.exists() else [])
        if "__pycache__" not in path.parts
    }
    problems = vendor_differences(files)
    if problems:
        raise BuildError("the vendored s5geo copy differs: " + "; ".join(problems))


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
    with zipfile.ZipFile(partial) as archive:
        prefix = f"{PLUGIN_DIR.name}/_vendor/"
        shipped = {
            name[len(prefix) :]: archive.read(name)
            for name in archive.namelist()
            if name.startswith(prefix) and name.endswith(".py")
        }
    problems = [f"the zip's {p}" for p in vendor_differences(shipped)] + repository_problems(partial)
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
    parser.add_argument(
        "--check", action="store_true", help="fail when s5geo_qgis/_vendor/ differs from s5geo"
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            check_vendored()
        elif args.vendor:
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
