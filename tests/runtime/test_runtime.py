"""The torch-free inference core: lazy windows, gaps in the stitcher, outputs, the ONNX CLI path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from s5geo.metadata import ModelMetadata
from s5geo.runtime.arrays import predict_array
from s5geo.runtime.outputs import encode, output_specs
from s5geo.runtime.tiling import StreamingStitcher, WindowGrid, argmax, iter_windows

REPO = Path(__file__).resolve().parents[2]
ONNX_MODEL = REPO / "qgis_plugin" / "tests" / "data" / "tiny_model.onnx"


def _metadata(window: int = 16, overlap: float = 0.25) -> ModelMetadata:
    return ModelMetadata(
        classes=["a", "b", "c"],
        colors=[(1, 2, 3), (4, 5, 6), (7, 8, 9)],
        bands=[1],
        mean=[0.0],
        std=[1.0],
        window_size=window,
        overlap=overlap,
    )


def test_windows_are_generated_lazily() -> None:
    # 2,000,000 x 2,000,000 pixels in 512 px windows: ~2.4e7 windows, never listed.
    grid = WindowGrid(2_000_000, 2_000_000, 512, 0.25)
    windows = iter_windows(grid)
    first = [next(windows) for _ in range(3)]
    assert [(w.i, w.j, w.row, w.col) for w in first] == [(0, 0, 0, 0), (0, 1, 0, 384), (0, 2, 0, 768)]
    assert len(grid) > 2e7


@pytest.mark.parametrize("blend", ["none", "linear", "cosine"])
def test_skipped_windows_equal_fully_masked_ones(blend: str) -> None:
    rng = np.random.default_rng(0)
    height, width, k = 70, 90, 3
    scores = rng.normal(size=(k, height, width)).astype(np.float32)
    valid = np.ones((height, width), bool)
    valid[:40, :50] = False  # whole windows without data
    grid = WindowGrid(height, width, 16, 0.25)

    def has_data_at(w) -> bool:
        return bool(valid[w.row : w.row + w.height, w.col : w.col + w.width].any())

    def stitch(skip: bool) -> tuple[np.ndarray, np.ndarray]:
        stitcher = StreamingStitcher(grid, k, blend)  # type: ignore[arg-type]
        data = np.zeros((k, height, width), np.float32)
        weight = np.zeros((height, width), np.float32)
        has_data = has_data_at if skip else None
        blocks = []
        for w in iter_windows(grid, has_data):
            sl = (slice(w.row, w.row + w.height), slice(w.col, w.col + w.width))
            blocks += stitcher.add(w, scores[(slice(None), *sl)], valid[sl])
        blocks += stitcher.finish()
        assert stitcher.finished()
        for b in blocks:
            data[:, b.row : b.row + b.data.shape[1], b.col : b.col + b.data.shape[2]] = b.data
            weight[b.row : b.row + b.data.shape[1], b.col : b.col + b.data.shape[2]] = b.weight
        return data, weight

    skipped = sum(1 for _ in iter_windows(grid)) - sum(1 for _ in iter_windows(grid, has_data_at))
    assert skipped > 0
    full, full_weight = stitch(skip=False)
    sparse, sparse_weight = stitch(skip=True)
    np.testing.assert_array_equal(sparse, full)
    np.testing.assert_array_equal(sparse_weight, full_weight)
    assert (full_weight[~valid] == 0).all()


def test_predict_array_with_a_partial_mask_and_batches() -> None:
    image = np.random.default_rng(1).integers(0, 3, size=(1, 50, 45)).astype(np.float32)
    valid = np.ones((50, 45), bool)
    valid[5:20, 3:30] = False

    def one_hot(x: np.ndarray) -> np.ndarray:
        classes = np.clip(np.rint(x[:, 0]), 0, 2).astype(int)
        return np.eye(3, dtype=np.float32)[classes].transpose(0, 3, 1, 2) * 10

    scores = predict_array(image, one_hot, _metadata(), valid=valid, batch_size=3)
    np.testing.assert_array_equal(scores.argmax(0)[valid], image[0][valid])


def test_outputs_encode_the_cli_contract() -> None:
    meta = _metadata()
    specs = output_specs(meta, ["classes", "confidence", "probabilities"], "uint8")
    assert (specs["classes"].dtype, specs["classes"].nodata) == ("uint8", 255)
    assert (specs["confidence"].dtype, specs["confidence"].nodata) == ("uint8", 0)
    assert specs["classes"].band_tags["CLASS_1"] == "b"
    assert json.loads(specs["classes"].tags["CLASS_NAMES"]) == ["a", "b", "c"]
    assert specs["classes"].colormap[255] == (0, 0, 0, 0)
    scores = np.zeros((3, 2, 2), np.float32)
    scores[1] = 5.0
    valid = np.array([[True, False], [True, True]])
    out = encode(scores, valid, specs)
    assert out["classes"][0].tolist() == [[1, 255], [1, 1]]
    assert out["confidence"][0, 0, 1] == 0 and out["confidence"][0, 0, 0] > 200


def test_onnx_segment_does_not_import_torch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    data = np.random.default_rng(2).integers(1, 250, size=(3, 40, 50)).astype(np.uint8)
    raster = _write(tmp_path / "in.tif", data)
    script = (
        "import sys\n"
        "from s5geo.cli.main import main\n"
        f"code = main(['segment', {str(raster)!r}, '--model', {str(ONNX_MODEL)!r}, "
        f"'--output', {str(tmp_path / 'out.tif')!r}, '--no-progress', '--device', 'cpu'])\n"
        "print('EXIT', code, 'TORCH', 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert "EXIT 0 TORCH False" in result.stdout, result.stdout + result.stderr
    assert (tmp_path / "out.tif").is_file()


def _write(path: Path, data: np.ndarray) -> Path:
    from raster_helpers import write_raster
    from rasterio.transform import from_origin

    return write_raster(path, data, transform=from_origin(600_000, 250_000, 30, 30))


def test_uint16_into_an_8_bit_model_warns_once_and_scale_fixes_it(tmp_path: Path, capfd) -> None:
    pytest.importorskip("onnxruntime")
    import rasterio

    from s5geo.cli.main import main

    eight = np.random.default_rng(5).integers(1, 250, size=(3, 40, 50)).astype(np.uint8)
    sixteen = eight.astype(np.uint16) * 40  # full brightness 255 * 40 = 10200
    r8, r16 = _write(tmp_path / "r8.tif", eight), _write(tmp_path / "r16.tif", sixteen)
    common = ["--model", str(ONNX_MODEL), "--no-progress", "--device", "cpu"]

    assert main(["segment", str(r16), "--output", str(tmp_path / "plain.tif"), *common]) == 0
    lines = [line for line in capfd.readouterr().err.splitlines() if "8-bit" in line]
    assert len(lines) == 1 and "uint16" in lines[0] and "--scale" in lines[0]

    assert (
        main(["segment", str(r16), "--output", str(tmp_path / "scaled.tif"), "--scale", "10200", *common])
        == 0
    )
    assert "8-bit" not in capfd.readouterr().err
    assert main(["segment", str(r8), "--output", str(tmp_path / "eight.tif"), *common]) == 0
    assert "8-bit" not in capfd.readouterr().err
    with rasterio.open(tmp_path / "scaled.tif") as a, rasterio.open(tmp_path / "eight.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_metadata_records_dtype_and_scale() -> None:
    from s5geo.runtime.bands import data_warning, rescale

    meta = ModelMetadata(
        classes=["a"],
        colors=[(0, 0, 0)],
        bands=[1, 2],
        mean=[100.0, 100.0],
        std=[50.0, 50.0],
        dtype="uint16",
        scale=10000,
    )
    assert ModelMetadata.from_json(meta.to_json()).scale == 10000.0
    assert data_warning(meta, ["uint16", "uint16"], "x") is None
    eight = ModelMetadata(
        classes=["a"], colors=[(0, 0, 0)], bands=[1], mean=[100.0], std=[50.0], dtype="uint8", scale=255
    )
    assert "uint16" in data_warning(eight, ["uint16"], "x")
    scaled = rescale(eight, 10200)
    assert scaled.mean == [4000.0] and scaled.std == [2000.0]
    assert data_warning(scaled, ["uint16"], "x") is None


def test_bands_from_names_matches_descriptions_in_model_order() -> None:
    from s5geo.runtime.bands import bands_from_names

    assert bands_from_names(["red", "green", "blue"], ["Blue", " GREEN ", "Red"]) == [3, 2, 1]
    assert bands_from_names(["nir", "red"], ["red", "green", "nir"]) == [3, 1]
    assert bands_from_names(None, ["Blue", "Green", "Red"]) is None
    assert bands_from_names(["red", "green", "blue"], ["Blue", "Green", None]) is None
    assert bands_from_names(["red", "green"], ["red", "red", "green"]) is None  # ambiguous
    assert bands_from_names(["red", "red"], ["red", "green"]) is None


def _named_model(path: Path, band_names: list[str]) -> Path:
    import onnx

    from s5geo.metadata import METADATA_KEY

    model = onnx.load(str(ONNX_MODEL))
    props = {p.key: p.value for p in model.metadata_props}
    meta = ModelMetadata.from_json(props[METADATA_KEY])
    meta.band_names = band_names
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {**props, METADATA_KEY: meta.to_json()})
    onnx.save(model, str(path))
    return path


def test_segment_picks_bands_by_their_descriptions(tmp_path: Path, capfd) -> None:
    """A raster stored B, G, R with band descriptions feeds an R, G, B model as bands 3, 2, 1."""
    pytest.importorskip("onnxruntime")
    import rasterio

    from s5geo.cli.main import main

    rgb = np.random.default_rng(7).integers(1, 250, size=(3, 40, 50)).astype(np.uint8)
    raster = _write(tmp_path / "bgr.tif", rgb[::-1].copy())
    with rasterio.open(raster, "r+") as dst:
        dst.descriptions = ("Blue", "Green", "Red")
    named = _named_model(tmp_path / "named.onnx", ["red", "green", "blue"])
    common = ["--no-progress", "--device", "cpu"]

    assert (
        main(["segment", str(raster), "--model", str(named), "--output", str(tmp_path / "auto.tif"), *common])
        == 0
    )
    lines = [line for line in capfd.readouterr().err.splitlines() if "descriptions" in line]
    assert len(lines) == 1 and "bands 3, 2, 1" in lines[0], lines
    assert (
        main(
            [
                "segment",
                str(raster),
                "--model",
                str(named),
                "--output",
                str(tmp_path / "set.tif"),
                "--bands",
                "3",
                "2",
                "1",
                *common,
            ]
        )
        == 0
    )
    assert "descriptions" not in capfd.readouterr().err
    assert (
        main(
            [
                "segment",
                str(raster),
                "--model",
                str(ONNX_MODEL),
                "--output",
                str(tmp_path / "unnamed.tif"),
                *common,
            ]
        )
        == 0
    )
    with (
        rasterio.open(tmp_path / "auto.tif") as auto,
        rasterio.open(tmp_path / "set.tif") as chosen,
        rasterio.open(tmp_path / "unnamed.tif") as unnamed,
    ):
        np.testing.assert_array_equal(auto.read(1), chosen.read(1))
        assert (auto.read(1) != unnamed.read(1)).any()  # bands 1, 2, 3 give another map


@pytest.mark.parametrize("k", [1, 2, 6, 17])
def test_argmax_matches_numpy_with_ties(k) -> None:
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 3, size=(k, 37, 53)).astype(np.float32)  # many ties: first max wins
    index = argmax(scores)
    assert index.dtype == np.uint8
    np.testing.assert_array_equal(index, np.argmax(scores, axis=0))
