"""The s5geo Processing provider."""

from __future__ import annotations

import configparser
from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

PLUGIN_DIR = Path(__file__).resolve().parent


def plugin_version() -> str:
    """Return the version in ``metadata.txt``."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(PLUGIN_DIR / "metadata.txt", encoding="utf-8")
    return parser.get("general", "version", fallback="0")


class S5GeoProvider(QgsProcessingProvider):
    """Provides "Segment raster (land cover)" and "Vectorize land-cover map" (id ``s5geo``)."""

    def loadAlgorithms(self) -> None:  # noqa: N802 - QGIS API name
        """Add the algorithms (imports are light: onnxruntime loads only when a model runs)."""
        from .algorithms.segment import SegmentAlgorithm
        from .algorithms.vectorize import VectorizeAlgorithm

        self.addAlgorithm(SegmentAlgorithm())
        self.addAlgorithm(VectorizeAlgorithm())

    def id(self) -> str:  # noqa: D102
        return "s5geo"

    def name(self) -> str:  # noqa: D102
        return "s5geo land cover"

    def longName(self) -> str:  # noqa: N802, D102
        return f"s5geo land cover {plugin_version()}"

    def icon(self) -> QIcon:  # noqa: D102
        return QIcon(str(PLUGIN_DIR / "icon.svg"))

    def versionInfo(self) -> str:  # noqa: N802, D102
        return plugin_version()
