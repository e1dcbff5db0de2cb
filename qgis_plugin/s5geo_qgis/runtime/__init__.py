"""Torch-free runtime of the s5geo QGIS plugin: ONNX Runtime, GDAL block I/O, vendored s5geo code.

Nothing here imports QGIS, so the runtime can be tested (and reused) outside QGIS.
"""
