"""What every s5geo Processing algorithm shares: translation, group and a fresh instance per run."""

from __future__ import annotations

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication


class S5GeoAlgorithm(QgsProcessingAlgorithm):
    """Base of the s5geo algorithms (all in the "Land cover" group)."""

    def tr(self, text: str) -> str:
        """Translate ``text`` in the context of the concrete algorithm class."""
        return QCoreApplication.translate(type(self).__name__, text)

    def createInstance(self) -> S5GeoAlgorithm:  # noqa: N802, D102
        return type(self)()

    def group(self) -> str:  # noqa: D102
        return self.tr("Land cover")

    def groupId(self) -> str:  # noqa: N802, D102
        return "landcover"
