"""``s5geo segment``, ``pseudo-label``, ``vectorize`` and ``export`` on bad inputs and outputs.

Each case ends in one line naming the file and the problem (exit 1) or in a correct result; an input
is never an output, and temporary files of killed runs are removed by the next run.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from rasterio.transform import from_origin
from torch import nn

from s5geo.cli.main import main
from s5geo.errors import S5GeoError
from s5geo.inference import files, loading
from s5geo.metadata import ModelMetadata

NUM_CLASSES = 4
DEAD_PID = 2**22 + 12345  # above Linux's default pid_max: no such process


class TinyNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _metadata() -> ModelMetadata:
    return ModelMetadata(
        classes=[f"c{i}" for i in range(NUM_CLASSES)],
        colors=[(40 * i, 20 * i, 10 * i) for i in range(NUM_CLASSES)],
        bands=[1],
        mean=[0.0],
        std=[1.0],
        window_size=16,
        overlap=0.25,
    )


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An s5geo-style checkpoint of a 1-band, 4-class per-pixel network."""
    monkeypatch.setattr(loading, "_build_model", lambda name, num_classes, in_channels: TinyNet(4, 1))
    torch.manual_seed(0)
    net = TinyNet(NUM_CLASSES, 1)
    path = tmp_path / "model.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
            "hyper_parameters": {"model": "tiny", "num_classes": NUM_CLASSES, "in_channels": 1},
            "s5geo_metadata": _metadata().to_dict(),
        },
        path,
    )
    return path


def _raster(path: Path, *, crs: str | None = "EPSG:32119", size: tuple[int, int] = (40, 50), **kw) -> Path:
    data = np.random.default_rng(0).integers(0, 4, size=size).astype(np.uint8)
    transform = from_origin(600_000.0, 250_000.0, 10.0, 10.0) if crs else None
    profile = dict(driver="GTiff", width=size[1], height=size[0], count=1, dtype="uint8", crs=crs, **kw)
    if transform is not None:
        profile["transform"] = transform
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)
    return path


def _truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _segment(src: Path, model: Path, out: Path, *extra: str) -> int:
    return main(["segment", str(src), "--model", str(model), "--output", str(out), "--no-progress", *extra])


# segment ------------------------------------------------------------------------------------------


def test_segment_refuses_input_as_output(tmp_path, model, capsys) -> None:
    # Case 1.
    src = _raster(tmp_path / "in.tif")
    before = src.read_bytes()
    assert _segment(src, model, src, "--overwrite") == 1
    assert src.read_bytes() == before
    _one_line_error(capsys, "is the input", "in.tif")


def test_segment_refuses_a_link_to_the_input_as_output(tmp_path, model, capsys) -> None:
    src = _raster(tmp_path / "in.tif")
    before = src.read_bytes()
    link = tmp_path / "link.tif"
    link.symlink_to(src)
    assert _segment(src, model, link, "--overwrite") == 1
    assert src.read_bytes() == before


def test_segment_refuses_a_confidence_output_that_is_the_input(tmp_path, model, capsys) -> None:
    src = _raster(tmp_path / "map_confidence.tif")
    before = src.read_bytes()
    assert _segment(src, model, tmp_path / "map.tif", "--confidence", "--overwrite") == 1
    assert src.read_bytes() == before
    _one_line_error(capsys, "is the input")


@pytest.mark.parametrize("kind", ["tif", "png", "jpg"])
def test_segment_truncated_input(tmp_path, model, kind, capsys) -> None:
    # Case 5: a truncated GeoTIFF fails to read; GDAL would read a truncated PNG/JPEG as zeros.
    if kind == "tif":
        src = _truncate(_raster(tmp_path / "in.tif", tiled=True, blockxsize=16, blockysize=16), 0.6)
    else:
        src = tmp_path / f"in.{kind}"
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)).save(src)
        _truncate(src)
    out = tmp_path / "map.tif"
    assert _segment(src, model, out) == 1
    _one_line_error(capsys, f"in.{kind}")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _vrt_with_missing_source(tmp_path: Path) -> Path:
    from s5geo.inference.writer import build_vrt

    part = _raster(tmp_path / "part.tif")
    vrt = build_vrt([part], tmp_path / "mosaic.vrt")
    part.unlink()
    return vrt


def test_segment_vrt_with_missing_source(tmp_path, model, capsys) -> None:
    # Case 5.
    assert _segment(_vrt_with_missing_source(tmp_path), model, tmp_path / "map.tif") == 1
    _one_line_error(capsys, "mosaic.vrt", "part.tif")


def test_segment_read_only_folder(tmp_path, model, capsys, monkeypatch) -> None:
    # Case 6 (as root, permissions do not apply: the access check is what is tested).
    src = _raster(tmp_path / "in.tif")
    folder = tmp_path / "ro"
    folder.mkdir()
    monkeypatch.setattr(files.os, "access", lambda path, mode: Path(path) != folder)
    assert _segment(src, model, folder / "map.tif") == 1
    _one_line_error(capsys, "'" + str(folder) + "' is not writable")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_segment_read_only_folder_for_real(tmp_path, model, capsys) -> None:
    src = _raster(tmp_path / "in.tif")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert _segment(src, model, folder / "map.tif") == 1
    finally:
        folder.chmod(0o755)
    _one_line_error(capsys, "is not writable")


def test_segment_window_zero_is_an_error(tmp_path, model, capsys) -> None:
    # Case 10: 0 is not "unset".
    assert _segment(_raster(tmp_path / "in.tif"), model, tmp_path / "map.tif", "--window", "0") == 1
    _one_line_error(capsys, "window size must be positive, got 0")


@pytest.mark.parametrize(
    ("content", "expected"),
    [(np.random.default_rng(4).bytes(4000), "not a PyTorch checkpoint"), (b"", "truncated or damaged")],
)
def test_segment_unreadable_checkpoint(tmp_path, model, content, expected, capsys) -> None:
    # Case 11: no advice to load with weights_only=False.
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    assert _segment(_raster(tmp_path / "in.tif"), bad, tmp_path / "map.tif") == 1
    line = _one_line_error(capsys, "bad.ckpt", expected)
    assert "weights_only" not in line


def test_segment_malicious_checkpoint_is_not_run(tmp_path, evil_checkpoint, capsys) -> None:
    # Case 17 for the inference loader.
    path, marker = evil_checkpoint
    assert _segment(_raster(tmp_path / "in.tif"), path, tmp_path / "map.tif") == 1
    assert not marker.exists()
    _one_line_error(capsys, "evil.ckpt", "posix.system")


def test_segment_not_georeferenced_warns_once_in_words(tmp_path, model, capsys) -> None:
    # Case 14.
    src = _raster(tmp_path / "plain.tif", crs=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", rasterio.errors.NotGeoreferencedWarning)
        assert _segment(src, model, tmp_path / "map.tif") == 0
    err = capsys.readouterr().err
    assert "NotGeoreferencedWarning" not in err
    assert sum("no CRS and no geotransform" in line for line in err.splitlines()) == 1


def test_segment_removes_temp_files_of_a_killed_run(tmp_path, model) -> None:
    # Case 15: a dead writer's temp files go; a live one's stay.
    src = _raster(tmp_path / "in.tif")
    out = tmp_path / "map.tif"
    stale = tmp_path / f".map.tif.{DEAD_PID}-0123abcd.part"
    stale_aux = tmp_path / f".map.tif.{DEAD_PID}-0123abcd.part.aux.xml"
    live = tmp_path / f".map.tif.{os.getppid()}-0123abcd.part"
    for path in (stale, stale_aux, live):
        path.write_bytes(b"x" * 100)
    assert _segment(src, model, out) == 0
    assert out.exists() and not stale.exists() and not stale_aux.exists() and live.exists()


def test_segment_refuses_a_raster_too_big_for_memory(tmp_path, model, capsys, monkeypatch) -> None:
    # Case 16: refused before any window is read.
    monkeypatch.setattr("s5geo.inference.segment.available_memory", lambda: 1000)
    assert _segment(_raster(tmp_path / "in.tif"), model, tmp_path / "map.tif") == 1
    _one_line_error(capsys, "in.tif", "of memory")
    assert not (tmp_path / "map.tif").exists()


def test_segment_refuses_outputs_larger_than_the_free_disk(tmp_path, model, capsys, monkeypatch) -> None:
    monkeypatch.setattr("s5geo.inference.segment.free_disk", lambda folder: 10)
    assert _segment(_raster(tmp_path / "in.tif"), model, tmp_path / "map.tif") == 1
    _one_line_error(capsys, "free")


def test_segment_huge_vrt_refused_early(tmp_path, model, capsys) -> None:
    # Case 16: a 2,000,000 x 2,000,000 VRT over a small tile.
    tile = _raster(tmp_path / "tile.tif")
    vrt = tmp_path / "huge.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="2000000" rasterYSize="2000000">'
        "<GeoTransform>0, 1, 0, 0, 0, -1</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        f'<SourceFilename relativeToVRT="0">{tile}</SourceFilename><SourceBand>1</SourceBand>'
        '<SrcRect xOff="0" yOff="0" xSize="50" ySize="40"/><DstRect xOff="0" yOff="0" xSize="50" ySize="40"/>'
        "</SimpleSource></VRTRasterBand></VRTDataset>"
    )
    assert _segment(vrt, model, tmp_path / "map.tif") == 1
    _one_line_error(capsys, "huge.vrt", "2000000 x 2000000")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--bands", "3"], "cannot read band(s) [3]"),
        (["--bands", "1", "1"], "model expects 1 bands but 2 were selected"),
        (["--overlap", "1.5"], "overlap must be in [0, 1)"),
        (["--batch-size", "0"], "batch size must be positive"),
        (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "nonsense"], "device"),
    ],
)
def test_segment_bad_options(tmp_path, model, extra, expected, capsys) -> None:
    assert _segment(_raster(tmp_path / "in.tif"), model, tmp_path / "map.tif", *extra) == 1
    _one_line_error(capsys, expected)


def test_segment_output_is_a_folder(tmp_path, model, capsys) -> None:
    (tmp_path / "out.tif").mkdir()
    assert _segment(_raster(tmp_path / "in.tif"), model, tmp_path / "out.tif", "--overwrite") == 1
    _one_line_error(capsys, "is a folder")


def test_segment_input_not_a_raster(tmp_path, model, capsys) -> None:
    src = tmp_path / "notes.tif"
    src.write_text("hello")
    assert _segment(src, model, tmp_path / "map.tif") == 1
    _one_line_error(capsys, "notes.tif")


def test_segment_missing_model(tmp_path, capsys) -> None:
    assert _segment(_raster(tmp_path / "in.tif"), tmp_path / "none.ckpt", tmp_path / "map.tif") == 1
    _one_line_error(capsys, "none.ckpt", "not found")


# pseudo-label -------------------------------------------------------------------------------------


def _images(folder: Path, n: int = 3, suffix: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    paths = []
    for i in range(n):
        path = folder / f"img{i}{suffix}"
        Image.fromarray(rng.integers(0, 4, (20, 24), np.uint8)).save(path)
        paths.append(path)
    return paths


def _pseudo(model: Path, images: Path, out: Path, *extra: str) -> int:
    argv = ["pseudo-label", "--model", str(model), "--images", str(images), "--output", str(out)]
    return main([*argv, "--no-progress", *extra])


def test_pseudo_label_truncated_png_among_good_ones(tmp_path, model, capsys) -> None:
    # Case 3: no mask for the damaged image, masks for the others, exit 1 naming the file.
    paths = _images(tmp_path / "imgs", 3)
    _truncate(paths[1])
    out = tmp_path / "masks"
    assert _pseudo(model, tmp_path / "imgs", out) == 1
    assert sorted(p.name for p in out.glob("*.png")) == ["img0.png", "img2.png"]
    _one_line_error(capsys, "1 of 3 images", "img1.png", "truncated")


def test_pseudo_label_truncated_jpeg(tmp_path, model, capsys) -> None:
    paths = _images(tmp_path / "imgs", 2, ".jpg")
    _truncate(paths[0], 0.7)
    assert _pseudo(model, tmp_path / "imgs", tmp_path / "masks") == 1
    _one_line_error(capsys, "img0.jpg")
    assert [p.name for p in (tmp_path / "masks").glob("*.png")] == ["img1.png"]


def test_pseudo_label_empty_folder(tmp_path, model, capsys) -> None:
    # Case 4.
    (tmp_path / "empty").mkdir()
    assert _pseudo(model, tmp_path / "empty", tmp_path / "masks") == 1
    _one_line_error(capsys, "no images found", "empty")


def test_pseudo_label_empty_manifest(tmp_path, model, capsys) -> None:
    manifest = tmp_path / "list.txt"
    manifest.write_text("# nothing\n\n")
    assert _pseudo(model, manifest, tmp_path / "masks") == 1
    _one_line_error(capsys, "lists no images")


def test_pseudo_label_output_is_an_existing_file_checked_first(tmp_path, capsys) -> None:
    # Case 7: refused before the model is even read (the model here is not a checkpoint).
    _images(tmp_path / "imgs", 1)
    (tmp_path / "out").write_text("a file")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"junk")
    assert _pseudo(junk, tmp_path / "imgs", tmp_path / "out") == 1
    _one_line_error(capsys, "exists and is not a folder")


def test_pseudo_label_into_the_image_folder_is_refused(tmp_path, model, capsys) -> None:
    paths = _images(tmp_path / "imgs", 2)
    before = [p.read_bytes() for p in paths]
    assert _pseudo(model, tmp_path / "imgs", tmp_path / "imgs") == 1
    assert [p.read_bytes() for p in paths] == before
    _one_line_error(capsys, "would replace the input image")


def test_pseudo_label_window_zero(tmp_path, model, capsys) -> None:
    # Case 10.
    _images(tmp_path / "imgs", 1)
    assert _pseudo(model, tmp_path / "imgs", tmp_path / "m", "--window", "0") == 1
    _one_line_error(capsys, "window size must be positive, got 0")


def test_pseudo_label_wrong_bands_is_reported(tmp_path, model, capsys, monkeypatch) -> None:
    meta = _metadata()
    meta.bands = [1, 2, 3]
    meta.mean, meta.std = [0.0] * 3, [1.0] * 3
    monkeypatch.setattr(
        loading, "_build_model", lambda name, num_classes, in_channels: TinyNet(NUM_CLASSES, 3)
    )
    net = TinyNet(NUM_CLASSES, 3)
    ckpt = tmp_path / "rgb.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
            "hyper_parameters": {"model": "tiny", "num_classes": NUM_CLASSES, "in_channels": 3},
            "s5geo_metadata": meta.to_dict(),
        },
        ckpt,
    )
    _images(tmp_path / "imgs", 2)  # grey images: one band
    assert _pseudo(ckpt, tmp_path / "imgs", tmp_path / "m") == 1
    _one_line_error(capsys, "2 of 2 images", "has 1 band(s), cannot read bands [1, 2, 3]")


def test_pseudo_label_removes_stale_parts(tmp_path, model) -> None:
    # Case 15.
    _images(tmp_path / "imgs", 2)
    out = tmp_path / "masks" / "sub"
    out.mkdir(parents=True)
    stale = out / f".img0.png.{DEAD_PID}.part"
    stale.write_bytes(b"half a png")
    assert _pseudo(model, tmp_path / "imgs", tmp_path / "masks") == 0
    assert not stale.exists()


# vectorize ----------------------------------------------------------------------------------------


def _vectorize(src: Path, out: Path, *extra: str) -> int:
    return main(["vectorize", str(src), "--output", str(out), "--quiet", *extra])


def test_vectorize_truncated_class_map(tmp_path, capsys) -> None:
    # Case 5.
    src = _truncate(_raster(tmp_path / "map.tif", size=(300, 300), tiled=True, blockxsize=64, blockysize=64))
    assert _vectorize(src, tmp_path / "p.gpkg") == 1
    _one_line_error(capsys, "map.tif")
    assert not list(tmp_path.glob("*.gpkg")) and not list(tmp_path.glob(".*"))


def test_vectorize_truncated_png(tmp_path, capsys) -> None:
    src = tmp_path / "map.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 3, (64, 64), np.uint8)).save(src)
    _truncate(src)
    assert _vectorize(src, tmp_path / "p.gpkg") == 1
    _one_line_error(capsys, "map.png", "truncated")


def test_vectorize_vrt_with_missing_source(tmp_path, capsys) -> None:
    assert _vectorize(_vrt_with_missing_source(tmp_path), tmp_path / "p.gpkg") == 1
    _one_line_error(capsys, "mosaic.vrt")


def test_vectorize_refuses_input_as_output(tmp_path, capsys) -> None:
    src = _raster(tmp_path / "map.geojson")  # a GeoTIFF under a vector name
    before = src.read_bytes()
    assert _vectorize(src, src, "--overwrite") == 1
    assert src.read_bytes() == before
    _one_line_error(capsys, "is the input")


def test_vectorize_without_crs_warns_once_in_words(tmp_path, capsys) -> None:
    # Case 14.
    src = _raster(tmp_path / "plain.tif", crs=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _vectorize(src, tmp_path / "p.gpkg") == 0
    err = capsys.readouterr().err
    assert sum("has no CRS" in line for line in err.splitlines()) == 1
    assert "crs' was not provided" not in err


def test_vectorize_read_only_folder(tmp_path, capsys, monkeypatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    monkeypatch.setattr(files.os, "access", lambda path, mode: Path(path) != folder)
    assert _vectorize(_raster(tmp_path / "map.tif"), folder / "p.gpkg") == 1
    _one_line_error(capsys, "is not writable")


def test_vectorize_removes_temp_files_of_a_killed_run(tmp_path) -> None:
    # Case 15.
    stale = [tmp_path / f".p.gpkg.{DEAD_PID}-00ff00ff.tmp.gpkg{s}" for s in ("", "-wal", "-journal")]
    for path in stale:
        path.write_bytes(b"x")
    assert _vectorize(_raster(tmp_path / "map.tif"), tmp_path / "p.gpkg") == 0
    assert not any(p.exists() for p in stale)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [(["--band", "2"], "band 2 requested"), (["--block-size", "0"], "--block-size must be >= 1")],
)
def test_vectorize_bad_options(tmp_path, extra, expected, capsys) -> None:
    assert _vectorize(_raster(tmp_path / "map.tif"), tmp_path / "p.gpkg", *extra) == 1
    _one_line_error(capsys, expected)


def test_vectorize_float_map_and_unknown_format(tmp_path, capsys) -> None:
    src = tmp_path / "f.tif"
    with rasterio.open(src, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32") as dst:
        dst.write(np.zeros((1, 4, 4), np.float32))
    assert _vectorize(src, tmp_path / "p.gpkg") == 1
    _one_line_error(capsys, "must hold integers")
    assert _vectorize(_raster(tmp_path / "map.tif"), tmp_path / "p.shp") == 1
    _one_line_error(capsys, "unknown vector format")


# export and checkpoint loading --------------------------------------------------------------------


def test_export_random_bytes_checkpoint(tmp_path, capsys) -> None:
    # Case 11 for export.
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(np.random.default_rng(3).bytes(3000))
    assert main(["export", str(bad), "-o", str(tmp_path / "m.onnx")]) == 1
    line = _one_line_error(capsys, "bad.ckpt", "not a PyTorch checkpoint")
    assert "weights_only" not in line


def test_export_malicious_checkpoint(tmp_path, evil_checkpoint, capsys) -> None:
    path, marker = evil_checkpoint
    assert main(["export", str(path), "-o", str(tmp_path / "m.onnx")]) == 1
    assert not marker.exists()


def test_export_existing_output_checked_before_loading(tmp_path, capsys) -> None:
    (tmp_path / "m.onnx").write_bytes(b"keep")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"junk")
    assert main(["export", str(bad), "-o", str(tmp_path / "m.onnx")]) == 1
    _one_line_error(capsys, "exists")
    assert (tmp_path / "m.onnx").read_bytes() == b"keep"


def test_export_refuses_checkpoint_as_output(tmp_path, capsys) -> None:
    ckpt = tmp_path / "model.onnx"
    ckpt.write_bytes(b"weights")
    assert main(["export", str(ckpt), "-o", str(ckpt), "--overwrite"]) == 1
    assert ckpt.read_bytes() == b"weights"
    _one_line_error(capsys, "is the input")


def test_load_from_checkpoint_is_weights_only(tmp_path, evil_checkpoint) -> None:
    # The helper for code that calls LightningModule.load_from_checkpoint (the demo).
    from lightning_tiny import TinyTask

    path, marker = evil_checkpoint
    with pytest.raises(S5GeoError, match=r"posix\.system"):
        loading.load_from_checkpoint(TinyTask, path, map_location="cpu")
    assert not marker.exists()
    with pytest.raises(S5GeoError, match="not found"):
        loading.load_from_checkpoint(TinyTask, tmp_path / "none.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(np.random.default_rng(1).bytes(100))
    with pytest.raises(S5GeoError, match="not a PyTorch checkpoint"):
        loading.load_from_checkpoint(TinyTask, junk)


def test_load_from_checkpoint_reads_a_lightning_checkpoint(tmp_path) -> None:
    from lightning.pytorch import Trainer
    from lightning_tiny import TinyTask
    from torch.utils.data import DataLoader

    data = [{"image": torch.randint(0, 255, (3, 8, 8)), "mask": torch.randint(0, 3, (8, 8))}] * 4
    trainer = Trainer(
        max_steps=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
        enable_checkpointing=False,
    )
    task = TinyTask(num_classes=3)
    trainer.fit(task, DataLoader(data, batch_size=2))
    trainer.save_checkpoint(tmp_path / "t.ckpt")
    loaded = loading.load_from_checkpoint(TinyTask, tmp_path / "t.ckpt", map_location="cpu")
    torch.testing.assert_close(loaded.net.weight, task.net.weight)
