"""ONNX Runtime predictor: moved to :mod:`s5geo.runtime.onnx` (torch-free, shared with QGIS)."""

from s5geo.runtime.onnx import INSTALL_HINT, OnnxPredictor, load_onnx, providers_for, read_onnx_metadata

__all__ = ["INSTALL_HINT", "OnnxPredictor", "load_onnx", "providers_for", "read_onnx_metadata"]
