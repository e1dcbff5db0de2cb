"""s5geo QGIS plugin: land-cover segmentation and vectorisation as Processing algorithms."""

from __future__ import annotations


def classFactory(iface):  # noqa: N802 - name and signature fixed by QGIS
    """Return the plugin instance QGIS loads (desktop and qgis_process).

    The folder the runtime installer fills is put on ``sys.path`` first, so onnxruntime
    installed from the plugin's dialog is found in both.
    """
    from . import installer

    installer.activate()

    from .plugin import S5GeoPlugin

    return S5GeoPlugin(iface)
