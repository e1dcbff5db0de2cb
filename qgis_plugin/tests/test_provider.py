from __future__ import annotations

import sys

import numpy as np
import processing
import pytest
from plugin_helpers import MODEL, band_values, expected_classes, write_raster
from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingFeedback


def test_provider_lists_both_algorithms(provider) -> None:
    registry = QgsApplication.processingRegistry()
    assert registry.providerById("s5geo") is provider
    ids = sorted(alg.id() for alg in provider.algorithms())
    assert ids == ["s5geo:segment", "s5geo:vectorize"]
    assert registry.algorithmById("s5geo:segment").displayName() == "Segment raster (land cover)"
    assert registry.algorithmById("s5geo:vectorize").displayName() == "Vectorize land-cover map"


def test_vendored_modules_are_the_library_sources() -> None:
    """_vendor holds s5geo's files, only their s5geo imports made relative."""
    import build

    for module, name in build.VENDORED.items():
        original = build._module_path(module).read_text().splitlines()
        vendored = (build.VENDOR_DIR / name).read_text().splitlines()[1:]  # minus the header
        assert len(vendored) == len(original)
        for ours, theirs in zip(vendored, original, strict=True):
            if ours != theirs:
                assert theirs.startswith("from s5geo") and ours.startswith("from .")
        assert not any(line.startswith(("from s5geo", "import torch")) for line in vendored)


def test_plugin_imports_no_torch(provider, raster, tmp_path) -> None:
    processing.run(
        "s5geo:segment",
        {"INPUT": str(raster), "MODEL": str(MODEL), "OUTPUT": str(tmp_path / "o.tif")},
    )
    assert "torch" not in sys.modules


def test_missing_onnxruntime_gives_the_install_command(provider, raster, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    output = tmp_path / "classes.tif"
    params = {"INPUT": str(raster), "MODEL": str(MODEL), "OUTPUT": str(output)}
    alg = QgsApplication.processingRegistry().createAlgorithmById("s5geo:segment")
    from qgis.core import QgsProcessingContext

    ok, message = alg.checkParameterValues(params, QgsProcessingContext())
    assert not ok
    assert "-m pip install" in message and "onnxruntime" in message
    assert "Traceback" not in message
    with pytest.raises(QgsProcessingException, match="pip install"):
        processing.run("s5geo:segment", params, feedback=QgsProcessingFeedback())
    assert not output.exists()


def test_band_mapping_reorders_bands(provider, tmp_path) -> None:
    data = band_values(seed=3)
    reversed_raster = write_raster(tmp_path / "bgr.tif", data[::-1].copy())
    output = tmp_path / "classes.tif"
    processing.run(
        "s5geo:segment",
        {
            "INPUT": str(reversed_raster),
            "MODEL": str(MODEL),
            "BANDS": [3, 2, 1],
            "OUTPUT": str(output),
        },
    )
    from plugin_helpers import read_band

    np.testing.assert_array_equal(read_band(output), expected_classes(data))
    # Without the mapping the model reads the bands in the wrong order and the map differs.
    wrong = tmp_path / "wrong.tif"
    processing.run(
        "s5geo:segment", {"INPUT": str(reversed_raster), "MODEL": str(MODEL), "OUTPUT": str(wrong)}
    )
    assert (read_band(wrong) != expected_classes(data)).any()
