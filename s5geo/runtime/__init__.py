"""The torch-free inference core shared by ``s5geo segment``, the Python API and the QGIS plugin.

- :mod:`~s5geo.runtime.tiling`: window grids, the lazy window generator, blend weights, stitcher.
- :mod:`~s5geo.runtime.arrays`: normalise and pad windows; predict in-memory images.
- :mod:`~s5geo.runtime.bands`: which raster bands feed the model.
- :mod:`~s5geo.runtime.predictor` and :mod:`~s5geo.runtime.onnx`: the predictor interface and
  ONNX Runtime.
- :mod:`~s5geo.runtime.pipeline`: read -> predict -> blend -> write, threaded and cancellable.
- :mod:`~s5geo.runtime.outputs`: class map, confidence and probability rasters.

Only numpy (and onnxruntime for ONNX models) is imported, and no raster library: the callers bring
their own reader and writer (rasterio in s5geo, GDAL in the plugin). ``qgis_plugin/build.py``
copies this package whole into the plugin.
"""
