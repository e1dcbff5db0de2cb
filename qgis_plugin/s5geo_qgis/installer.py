"""Installs onnxruntime into a folder the plugin owns and puts that folder on ``sys.path``.

``pip install --target <folder>`` writes only into that folder, so it works where a system-wide or
``--user`` install is refused (Debian 12 / Ubuntu 23.04+ "externally-managed-environment", a
read-only Windows ``Program Files``, the macOS app bundle). The folder is in the QGIS profile,
``<profile>/s5geo_qgis/python/py<major>.<minor>``: it survives plugin updates, and a QGIS with
another Python version gets its own folder (compiled wheels are version-specific). It is
*appended* to ``sys.path``, so the packages QGIS ships (numpy, GDAL) always win over the copies
pip puts beside onnxruntime. No GUI code here; the dialog is in ``gui/installer_dialog.py``.
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import sys
from pathlib import Path

#: The packages the installer offers: CPU build, NVIDIA CUDA build.
CPU_PACKAGE = "onnxruntime"
GPU_PACKAGE = "onnxruntime-gpu"

#: Where to read about the installer, shown in messages.
MENU_PATH = "Plugins > s5geo Land Cover > Install runtime (onnxruntime)"


def data_dir(settings_dir: str | Path | None = None) -> Path:
    """Return the plugin's folder in the QGIS profile (``<profile>/s5geo_qgis``)."""
    if settings_dir is None:
        from qgis.core import QgsApplication

        settings_dir = QgsApplication.qgisSettingsDirPath()
    return Path(settings_dir) / "s5geo_qgis"


def target_dir(settings_dir: str | Path | None = None) -> Path:
    """Return the folder pip installs into, one per Python version."""
    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return data_dir(settings_dir) / "python" / version


def activate(target: str | Path | None = None) -> bool:
    """Append the install folder to ``sys.path`` when it exists.

    Returns:
        Whether the folder was added now (False: missing, or already on the path).
    """
    folder = Path(target) if target is not None else target_dir()
    if not folder.is_dir():
        return False
    entry = str(folder)
    if entry in sys.path:
        return False
    sys.path.append(entry)
    importlib.invalidate_caches()
    return True


def nvidia_gpu_present() -> bool:
    """Whether an NVIDIA driver is installed (its ``nvidia-smi`` tool is on the PATH)."""
    if sys.platform == "darwin" or platform.machine().lower() not in ("x86_64", "amd64"):
        return False  # onnxruntime-gpu has wheels for x86-64 Linux and Windows only
    return shutil.which("nvidia-smi") is not None


def default_package() -> str:
    """Return the build to offer first: the GPU build where an NVIDIA GPU is present."""
    return GPU_PACKAGE if nvidia_gpu_present() else CPU_PACKAGE


def python_executable() -> str:
    """Return the Python that QGIS runs (``sys.executable`` may be the QGIS program itself)."""
    from .runtime.deps import qgis_python

    return qgis_python()


def install_command(package: str, target: str | Path | None = None, python: str | None = None) -> list[str]:
    """Return the command (program first) that installs ``package`` into the plugin's folder.

    ``--upgrade`` replaces an earlier install in the folder (switching between the CPU and GPU
    build); ``--only-binary :all:`` never compiles anything on the user's machine.
    """
    folder = Path(target) if target is not None else target_dir()
    return [
        python or python_executable(),
        "-m",
        "pip",
        "install",
        "--target",
        str(folder),
        "--upgrade",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--no-input",
        package,
    ]


def command_line(command: list[str]) -> str:
    """Return ``command`` as one line a user can paste into a terminal."""
    quote = '"{}"'.format
    return " ".join(quote(part) if (" " in part or not part) else part for part in command)


def install_environment() -> dict[str, str]:
    """Environment of the pip process: no user site, nothing from the plugin's own folder."""
    env = dict(os.environ)
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env.pop("PIP_USER", None)
    env.pop("PIP_TARGET", None)
    return env


def missing_runtime_message() -> str:
    """Return what to do when onnxruntime cannot be imported, in plain words."""
    command = command_line(install_command(default_package()))
    return (
        "The s5geo plugin needs onnxruntime to run models, and it is not installed. Install it "
        f"with one click from {MENU_PATH} (then run the tool again), or in a terminal: "
        f"{command}"
    )
