"""Plugin entry: registers the s5geo Processing provider and, on the desktop, the runtime installer."""

from __future__ import annotations

import importlib.util

from qgis.core import QgsApplication

from .provider import S5GeoProvider

MENU = "&s5geo Land Cover"


class S5GeoPlugin:
    """Registers :class:`S5GeoProvider`; on the desktop adds Plugins > s5geo Land Cover > Install runtime.

    Args:
        iface: the ``QgisInterface`` (None when loaded by ``qgis_process``).
    """

    def __init__(self, iface: object) -> None:
        self.iface = iface
        self.provider: S5GeoProvider | None = None
        self.install_action = None

    def initProcessing(self) -> None:  # noqa: N802 - QGIS API name
        """Create and register the provider (called by QGIS and by qgis_process)."""
        if self.provider is None:
            self.provider = S5GeoProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS API name
        """Register the provider, add the installer to the Plugins menu, offer it when needed."""
        self.initProcessing()
        if self.iface is None:
            return
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        from .provider import PLUGIN_DIR

        self.install_action = QAction(
            QIcon(str(PLUGIN_DIR / "icon.svg")),
            "Install runtime (onnxruntime)...",
            self.iface.mainWindow(),
        )
        self.install_action.triggered.connect(self.show_installer)
        self.iface.addPluginToMenu(MENU, self.install_action)
        if importlib.util.find_spec("onnxruntime") is None:
            self._offer_installer()

    def _offer_installer(self) -> None:
        """Show a message bar with an Install button when onnxruntime is missing."""
        from qgis.core import Qgis
        from qgis.PyQt.QtWidgets import QPushButton

        bar = self.iface.messageBar()
        item = bar.createMessage(
            "s5geo Land Cover", "needs onnxruntime to run models; it is not installed yet."
        )
        button = QPushButton("Install runtime...")
        button.clicked.connect(self.show_installer)
        button.clicked.connect(lambda: bar.popWidget(item))
        item.layout().addWidget(button)
        bar.pushWidget(item, Qgis.MessageLevel.Warning)

    def show_installer(self) -> None:
        """Open the runtime installer dialog."""
        from .gui.installer_dialog import InstallerDialog

        InstallerDialog(self.iface.mainWindow()).exec()

    def unload(self) -> None:
        """Remove the provider and the menu entry."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.install_action is not None and self.iface is not None:
            self.iface.removePluginMenu(MENU, self.install_action)
            self.install_action = None
