"""The runtime installer: pip --target into the profile, sys.path at load, the dialog, a real install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import build
import numpy as np
import pytest
from plugin_helpers import MODEL, band_values, expected_classes, read_band, write_raster
from qgis.PyQt.QtCore import QEventLoop, QTimer
from s5geo_qgis import installer

DEBIAN_PYTHON = "/usr/bin/python3"  # externally managed (PEP 668): --user installs are refused


def test_install_command_targets_the_plugin_folder(tmp_path) -> None:
    command = installer.install_command("onnxruntime", tmp_path / "py", python="/x/python3")
    assert command[:6] == ["/x/python3", "-m", "pip", "install", "--target", str(tmp_path / "py")]
    assert command[-1] == "onnxruntime"
    assert "--user" not in command and "--break-system-packages" not in command
    assert "--upgrade" in command  # switching CPU <-> GPU build replaces the earlier one
    assert installer.command_line(["/a b/python", "-m", "pip"]) == '"/a b/python" -m pip'


def test_target_is_in_the_profile_one_per_python_version(tmp_path) -> None:
    target = installer.target_dir(tmp_path)
    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    assert target == tmp_path / "s5geo_qgis" / "python" / version


@pytest.mark.parametrize(
    ("smi", "package"), [(None, "onnxruntime"), ("/usr/bin/nvidia-smi", "onnxruntime-gpu")]
)
def test_gpu_build_chosen_where_an_nvidia_driver_is(monkeypatch, smi, package) -> None:
    monkeypatch.setattr(installer.sys, "platform", "linux")
    monkeypatch.setattr(installer.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(installer.shutil, "which", lambda name: smi if name == "nvidia-smi" else None)
    assert installer.default_package() == package
    monkeypatch.setattr(installer.sys, "platform", "darwin")
    assert installer.default_package() == "onnxruntime"


def test_activate_appends_the_folder_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = tmp_path / "py"
    assert not installer.activate(folder)  # missing: nothing added
    assert str(folder) not in sys.path
    folder.mkdir()
    (folder / "s5geo_probe_module.py").write_text("VALUE = 42\n")
    assert installer.activate(folder)
    assert sys.path[-1] == str(folder)  # appended: QGIS's own numpy/GDAL keep precedence
    assert not installer.activate(folder)
    assert sys.path.count(str(folder)) == 1
    import s5geo_probe_module

    assert s5geo_probe_module.VALUE == 42
    sys.modules.pop("s5geo_probe_module")


def test_plugin_load_activates_the_install_folder(tmp_path, monkeypatch) -> None:
    import s5geo_qgis

    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = tmp_path / "python"
    folder.mkdir()
    monkeypatch.setattr(installer, "target_dir", lambda settings_dir=None: folder)
    plugin = s5geo_qgis.classFactory(None)
    assert str(folder) in sys.path
    assert plugin.provider is None


def test_missing_runtime_message_names_the_installer_and_a_command() -> None:
    message = installer.missing_runtime_message()
    assert installer.MENU_PATH in message
    assert "-m pip install --target" in message and "onnxruntime" in message
    assert "--user" not in message


def _wait(dialog, seconds: float = 240) -> None:
    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(lambda: loop.quit() if dialog.process is None else None)
    timer.start(100)
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    timer.stop()


def test_dialog_installs_a_package_with_debian_python(qgis_app, tmp_path, monkeypatch) -> None:
    """A real pip install from the reachable index into a temp folder, as the button does it."""
    from s5geo_qgis.gui.installer_dialog import InstallerDialog

    monkeypatch.setattr(sys, "path", list(sys.path))
    target = tmp_path / "py"
    dialog = InstallerDialog(target=target, python=DEBIAN_PYTHON)
    assert dialog.package() == installer.default_package()
    assert dialog.command()[:6] == [DEBIAN_PYTHON, "-m", "pip", "install", "--target", str(target)]
    dialog.install("six")
    assert not dialog.install_button.isEnabled()
    _wait(dialog)
    assert dialog.exit_code == 0, dialog.log.toPlainText()
    assert (target / "six.py").is_file()
    assert str(target) in sys.path
    assert dialog.result.text().startswith("Installed.")
    assert dialog.install_button.isEnabled()


def test_dialog_reports_a_python_that_cannot_start(qgis_app, tmp_path) -> None:
    from s5geo_qgis.gui.installer_dialog import InstallerDialog

    dialog = InstallerDialog(target=tmp_path / "py", python=str(tmp_path / "no-python"))
    dialog.install("six")
    _wait(dialog, 30)
    assert dialog.exit_code not in (0, None)
    assert "could not be started" in dialog.result.text() or "failed" in dialog.result.text()


@pytest.mark.skipif(not Path(DEBIAN_PYTHON).is_file(), reason="needs Debian's QGIS Python")
def test_fresh_profile_runtime_install_then_segment_without_a_terminal_setup(tmp_path) -> None:
    """Fresh profile, plugin from the zip, onnxruntime installed by the installer's own command
    into the profile (no PYTHONPATH, no venv), then qgis_process segments with band order 3,2,1."""
    home = tmp_path / "home"
    profile = home / ".local/share/QGIS/QGIS3/profiles/default"
    plugins = profile / "python/plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(build.build_zip(tmp_path / "dist")) as archive:
        archive.extractall(plugins)
    target = installer.target_dir(profile)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QGIS", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(home))
    env["QGIS_PLUGINPATH"] = str(plugins)
    command = installer.install_command("onnxruntime", target, python=DEBIAN_PYTHON)
    pip_env = {**env, "PYTHONNOUSERSITE": "1", "PIP_NO_INPUT": "1"}  # as install_environment()
    installed = subprocess.run(command, env=pip_env, capture_output=True, text=True, timeout=600, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    data = band_values(seed=5)
    raster = write_raster(tmp_path / "bgr.tif", data[::-1].copy())
    output = tmp_path / "classes.tif"
    qgis_process = "/usr/bin/qgis_process.bin"
    enabled = subprocess.run(
        [qgis_process, "plugins", "enable", "s5geo_qgis"], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    run = subprocess.run(
        [qgis_process, "--json", "run", "s5geo:segment", "--", f"INPUT={raster}", f"MODEL={MODEL}",
         "BANDS=3,2,1", f"OUTPUT={output}"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout[run.stdout.index("{") :])
    assert "CPUExecutionProvider" in report["results"]["DEVICE_USED"]
    np.testing.assert_array_equal(read_band(output), expected_classes(data))
