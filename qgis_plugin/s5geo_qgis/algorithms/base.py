"""What every s5geo Processing algorithm shares: translation, group and a fresh instance per run."""

from __future__ import annotations

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication

#: The plugin's documentation page (the algorithms' Help button opens a section of it).
DOCS_URL = "https://github.com/s5geo/s5geo/blob/main/docs/qgis.md"

#: Words an analyst may type in the toolbox search to find the s5geo tools.
SEARCH_TAGS = [
    "land cover",
    "landcover",
    "land use",
    "classification",
    "classify",
    "classifier",
    "deep learning",
    "machine learning",
    "ai",
    "neural network",
    "onnx",
    "remote sensing",
    "satellite",
    "aerial",
    "orthophoto",
    "s5geo",
]


class S5GeoAlgorithm(QgsProcessingAlgorithm):
    """Base of the s5geo algorithms (all in the "Land cover" group)."""

    def tr(self, text: str) -> str:
        """Translate ``text`` in the context of the concrete algorithm class."""
        return QCoreApplication.translate(type(self).__name__, text)

    def createInstance(self) -> S5GeoAlgorithm:  # noqa: N802, D102
        return type(self)()

    def tags(self) -> list[str]:  # noqa: D102
        return list(SEARCH_TAGS)

    def group(self) -> str:  # noqa: D102
        return self.tr("Land cover")

    def groupId(self) -> str:  # noqa: N802, D102
        return "landcover"
