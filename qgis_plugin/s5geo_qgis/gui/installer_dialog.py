"""The "Install runtime" dialog: pip-installs onnxruntime into the plugin's folder, with progress."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from qgis.PyQt.QtCore import QProcess, QProcessEnvironment
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from .. import installer


def runtime_status() -> str:
    """Describe the onnxruntime QGIS can import now, in one sentence."""
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        return "onnxruntime is not installed."
    providers = ort.get_available_providers()
    device = "NVIDIA GPU and CPU" if "CUDAExecutionProvider" in providers else "CPU"
    return f"onnxruntime {ort.__version__} is installed and runs models on the {device}."


class InstallerDialog(QDialog):
    """Choose the CPU or GPU build and install it with one button.

    Args:
        parent: parent widget.
        target: folder pip installs into (default: the plugin's folder in the QGIS profile).
        python: the Python to run pip with (default: QGIS's).
    """

    def __init__(self, parent=None, target: str | Path | None = None, python: str | None = None):
        super().__init__(parent)
        self.target = Path(target) if target is not None else installer.target_dir()
        self.python = python
        self.process: QProcess | None = None
        self.exit_code: int | None = None
        self.loaded_before = False
        self.setWindowTitle("s5geo Land Cover: install runtime")
        self.setMinimumWidth(560)

        layout = QVBoxLayout(self)
        intro = QLabel(
            "The land-cover tools run models with onnxruntime. This installs it for QGIS only, "
            f"into {self.target}, without administrator rights."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.status = QLabel(runtime_status())
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.build = QComboBox()
        self.build.addItem("CPU (works on every computer)", installer.CPU_PACKAGE)
        self.build.addItem("NVIDIA GPU (CUDA; needs an NVIDIA driver)", installer.GPU_PACKAGE)
        self.build.setCurrentIndex(self.build.findData(installer.default_package()))
        layout.addWidget(QLabel("Build:"))
        layout.addWidget(self.build)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMinimumHeight(160)
        layout.addWidget(self.log)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        layout.addWidget(self.result)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.install_button = QPushButton("Install")
        buttons.addButton(self.install_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.install_button.clicked.connect(self.install)
        layout.addWidget(buttons)

    def package(self) -> str:
        """The pip package of the chosen build."""
        return str(self.build.currentData())

    def command(self) -> list[str]:
        """The pip command the Install button runs."""
        return installer.install_command(self.package(), self.target, self.python)

    def install(self, package: str | None = None) -> None:
        """Start pip (``package`` overrides the chosen build; used by tests)."""
        if self.process is not None:
            return
        command = installer.install_command(package or self.package(), self.target, self.python)
        self.target.mkdir(parents=True, exist_ok=True)
        self.exit_code = None
        self.loaded_before = "onnxruntime" in sys.modules
        self.log.setPlainText(installer.command_line(command) + "\n")
        self.result.setText("Installing... (this can take a few minutes)")
        self.progress.setRange(0, 0)  # busy
        self.install_button.setEnabled(False)
        self.build.setEnabled(False)

        process = QProcess(self)
        environment = QProcessEnvironment()
        for key, value in installer.install_environment().items():
            environment.insert(key, value)
        process.setProcessEnvironment(environment)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._read_output)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._failed_to_start)
        self.process = process
        process.start(command[0], command[1:])

    def _read_output(self) -> None:
        if self.process is not None:
            text = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
            self.log.appendPlainText(text.rstrip("\n"))

    def _failed_to_start(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._done(-1, f"Python could not be started ({self.command()[0]}).")

    def _finished(self, exit_code: int, _status=None) -> None:
        self._read_output()
        if exit_code == 0:
            installer.activate(self.target)
            importlib.invalidate_caches()
            after = "Restart QGIS to use it." if self.loaded_before else "You can run the tools now."
            self._done(0, f"Installed. {runtime_status()} {after}")
            return
        log = self.log.toPlainText()
        if "No module named pip" in log:
            reason = (
                "pip is missing from QGIS's Python. On Debian or Ubuntu install it with "
                "'sudo apt install python3-pip', then try again."
            )
        elif "Could not find a version" in log or "No matching distribution" in log:
            reason = f"no {self.package()} build exists for this Python and system; try the CPU build."
        elif "Could not fetch" in log or "NewConnectionError" in log or "ProxyError" in log:
            reason = "the package index could not be reached; check the internet connection."
        else:
            reason = "see the messages above."
        self._done(exit_code, f"The installation failed: {reason}")

    def _done(self, exit_code: int, message: str) -> None:
        self.exit_code = exit_code
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if exit_code == 0 else 0)
        self.result.setText(message)
        self.status.setText(runtime_status())
        self.install_button.setEnabled(True)
        self.build.setEnabled(True)
        self.process = None
