"""kill -9 during ``s5geo segment`` and ``pseudo-label``, then a rerun: same outputs, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

SCRIPT = """
import sys, time, torch
from torch import nn
from s5geo.inference import loading
from s5geo.cli.main import main

class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 1)
    def forward(self, x):
        time.sleep(float(sys.argv[1]))
        return self.conv(x)

loading._build_model = lambda name, num_classes, in_channels: Slow()
sys.exit(main(sys.argv[2:]))
"""


def _checkpoint(path: Path) -> Path:
    import torch
    from torch import nn

    from s5geo.metadata import ModelMetadata

    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 1)
    meta = ModelMetadata(
        classes=["a", "b", "c", "d"],
        colors=[(0, 0, 0)] * 4,
        bands=[1],
        mean=[0.0],
        std=[1.0],
        window_size=32,
        overlap=0.25,
    )
    state = {f"model.conv.{k}": v for k, v in conv.state_dict().items()}
    torch.save(
        {
            "state_dict": state,
            "hyper_parameters": {"model": "slow", "num_classes": 4, "in_channels": 1},
            "s5geo_metadata": meta.to_dict(),
        },
        path,
    )
    return path


def _write_geotiff(path: Path, data: np.ndarray, pixel: float) -> Path:
    """Write a ``C x H x W`` array as a GeoTIFF in EPSG:32119 with ``pixel`` metre pixels."""
    count, height, width = data.shape
    transform = rasterio.transform.from_origin(600_000.0, 250_000.0, pixel, pixel)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": count}
    with rasterio.open(
        path, "w", **profile, dtype=data.dtype.name, crs="EPSG:32119", transform=transform
    ) as dst:
        dst.write(data)
    return path


def _run(tmp_path: Path, delay: float, args: list[str]) -> subprocess.Popen:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    return subprocess.Popen([sys.executable, str(script), str(delay), *args], stderr=subprocess.PIPE)


def _wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail("the run never reached the point to kill it")


def test_kill9_during_segment_then_rerun(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "m.ckpt")
    src = tmp_path / "in.tif"
    data = np.random.default_rng(0).normal(size=(1, 300, 300)).astype(np.float32)
    _write_geotiff(src, data, 1.0)
    out = tmp_path / "out" / "map.tif"
    out.parent.mkdir()
    args = [
        "segment",
        str(src),
        "--model",
        str(ckpt),
        "--output",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
        "--confidence",
    ]
    proc = _run(tmp_path, 0.05, args)
    _wait_for(lambda: any(p.name.endswith(".part") for p in out.parent.iterdir()))
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    rerun = _run(tmp_path, 0.0, args)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()  # type: ignore[union-attr]
    assert sorted(p.name for p in out.parent.iterdir()) == ["map.tif", "map_confidence.tif"]
    reference = tmp_path / "ref" / "map.tif"
    reference.parent.mkdir()
    args[5] = str(reference)
    assert _run(tmp_path, 0.0, args).wait(timeout=300) == 0
    with rasterio.open(out) as a, rasterio.open(reference) as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_kill9_during_pseudo_label_then_rerun(tmp_path: Path) -> None:
    from PIL import Image

    ckpt = _checkpoint(tmp_path / "m.ckpt")
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (24, 24), np.uint8)).save(images / f"i{i:02d}.png")
    out = tmp_path / "masks"
    args = [
        "pseudo-label",
        "--model",
        str(ckpt),
        "--images",
        str(images),
        "--output",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
        "--batch-size",
        "1",
    ]
    proc = _run(tmp_path, 0.2, args)
    _wait_for(lambda: out.is_dir() and len(list(out.glob("*.png"))) >= 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (out / f".i11.png.{proc.pid}.part").write_bytes(b"half")  # as if killed mid-write
    assert _run(tmp_path, 0.0, args).wait(timeout=300) == 0
    ref = tmp_path / "ref"
    args[6] = str(ref)
    assert _run(tmp_path, 0.0, args).wait(timeout=300) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())
    for mask in ref.iterdir():
        assert np.array_equal(np.asarray(Image.open(mask)), np.asarray(Image.open(out / mask.name)))


VECTORIZE_SCRIPT = """
import sys, time
from s5geo.vector import io
from s5geo.cli.main import main

write = io._write_ogr

def slow_write(*args, **kwargs):
    write(*args, **kwargs)
    time.sleep(float(sys.argv[1]))  # the temporary file is complete, not yet renamed

io._write_ogr = slow_write
sys.exit(main(sys.argv[2:]))
"""


def _class_map(path: Path) -> Path:
    rng = np.random.default_rng(3)
    classes = rng.integers(0, 4, (30, 40), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    return _write_geotiff(path, classes[None], 10.0)


@pytest.mark.parametrize("moment", ["early", "writing"])
def test_kill9_during_vectorize_then_rerun(tmp_path: Path, moment: str) -> None:
    import geopandas as gpd

    classmap = _class_map(tmp_path / "map.tif")
    out = tmp_path / "out" / "polygons.gpkg"
    out.parent.mkdir()
    script = tmp_path / "vectorize.py"
    script.write_text(VECTORIZE_SCRIPT)
    args = ["vectorize", str(classmap), "--output", str(out), "--block-size", "16", "--quiet"]

    def run(delay: float, *extra: str) -> subprocess.Popen:
        command = [sys.executable, str(script), str(delay), *args, *extra]
        return subprocess.Popen(command, stderr=subprocess.PIPE)

    proc = run(60.0)
    if moment == "writing":
        _wait_for(lambda: any(".tmp" in p.name for p in out.parent.iterdir()))
    else:
        time.sleep(0.5)  # start-up or polygonising, before any file is written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    if moment == "writing":
        assert any(".tmp" in p.name for p in out.parent.iterdir())  # what the rerun must remove
    rerun = run(0.0)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()  # type: ignore[union-attr]
    assert [p.name for p in out.parent.iterdir()] == ["polygons.gpkg"]
    reference = tmp_path / "ref" / "polygons.gpkg"
    reference.parent.mkdir()
    args[3] = str(reference)
    assert run(0.0).wait(timeout=300) == 0
    got, want = gpd.read_file(out), gpd.read_file(reference)
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    assert got.drop(columns="geometry").equals(want.drop(columns="geometry"))
    assert got.geometry.geom_equals_exact(want.geometry, tolerance=0).all()
