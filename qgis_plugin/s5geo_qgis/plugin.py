"""Plugin entry: registers the s5geo Processing provider (in the GUI and in qgis_process)."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import S5GeoProvider


class S5GeoPlugin:
    """Registers :class:`S5GeoProvider`; the plugin has no GUI of its own besides the toolbox.

    Args:
        iface: the ``QgisInterface`` (None when loaded by ``qgis_process``).
    """

    def __init__(self, iface: object) -> None:
        self.iface = iface
        self.provider: S5GeoProvider | None = None

    def initProcessing(self) -> None:  # noqa: N802 - QGIS API name
        """Create and register the provider (called by QGIS and by qgis_process)."""
        if self.provider is None:
            self.provider = S5GeoProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS API name
        """Register the provider when the QGIS desktop loads the plugin."""
        self.initProcessing()

    def unload(self) -> None:
        """Remove the provider."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
