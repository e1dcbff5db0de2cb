"""s5geo QGIS plugin: land-cover segmentation and vectorisation as Processing algorithms."""

from __future__ import annotations


def classFactory(iface):  # noqa: N802 - name and signature fixed by QGIS
    """Return the plugin instance QGIS loads."""
    from .plugin import S5GeoPlugin

    return S5GeoPlugin(iface)
