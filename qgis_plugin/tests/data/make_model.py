"""Write ``tiny_model.onnx``, the torch-free ONNX fixture of the plugin tests.

The network is one 1x1 convolution on the normalised bands: class ``k < 3`` scores normalised
band ``k`` and class 3 ("bare") scores a constant, so the class map follows from the input bands in
a way the tests recompute with numpy (:data:`WEIGHTS`, :data:`BIAS`). Run with a Python that has
``onnx`` (the main ``.venv``); the ``.onnx`` file is committed so the QGIS venv needs no ``onnx``::

    .venv/bin/python qgis_plugin/tests/data/make_model.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: 1x1 convolution weights (classes x bands) and bias of the fixture model.
WEIGHTS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=np.float32)
BIAS = np.array([0.0, 0.0, 0.0, 0.5], dtype=np.float32)

#: ModelMetadata of the fixture, as stored under ``metadata_props["s5geo"]``.
METADATA = {
    "classes": ["water", "vegetation", "built-up", "bare"],
    "colors": [[31, 120, 180], [51, 160, 44], [227, 26, 28], [253, 191, 111]],
    "bands": [1, 2, 3],
    "mean": [10.0, 20.0, 30.0],
    "std": [100.0, 120.0, 140.0],
    "window_size": 32,
    "overlap": 0.25,
    "gsd": 30.0,
    "ignore_index": 255,
    "model": "tiny-1x1",
    "version": "0.1.0",
}


def build(path: Path) -> Path:
    """Write the fixture model to ``path`` and return it."""
    from onnx import TensorProto, checker, helper, numpy_helper, save

    num_classes, num_bands = WEIGHTS.shape
    weight = numpy_helper.from_array(WEIGHTS.reshape(num_classes, num_bands, 1, 1), "weight")
    bias = numpy_helper.from_array(BIAS, "bias")
    conv = helper.make_node("Conv", ["image", "weight", "bias"], ["logits"], kernel_shape=[1, 1])
    graph = helper.make_graph(
        [conv],
        "s5geo_tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", num_bands, "height", "width"])],
        [
            helper.make_tensor_value_info(
                "logits", TensorProto.FLOAT, ["batch", num_classes, "height", "width"]
            )
        ],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="s5geo-tests")
    model.ir_version = 8  # readable by every onnxruntime since 1.10
    helper.set_model_props(model, {"s5geo": json.dumps(METADATA, sort_keys=True)})
    checker.check_model(model)
    save(model, str(path))
    return path


if __name__ == "__main__":
    print(build(Path(__file__).with_name("tiny_model.onnx")))
