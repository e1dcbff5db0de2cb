"""``s5geo predict --config configs/predict/landsat.yaml`` on small georeferenced rasters.

What is exactly comparable:
- ``s5geo segment --blend none`` on the same grid (window 32, overlap 8 px = 0.25) reads the same
  windows, feeds the network the same float32 values (scale 1, mean 0, std 1) in the same batches and
  keeps, per pixel, the window with the nearest centre; the Lightning writer keeps the same pixels
  (``keep``). So for any network (here an untrained UperNet-ResNet18, whose output depends on the
  whole window) the two maps must be identical, pixel for pixel.
- A 5x5 convolution (receptive-field radius 2) with integer weights on integer pixels: every kept
  pixel lies >= 4 px (half the overlap) from an inner window border, and zero padding at the raster
  edge is the same for a window and for the whole raster, and integer sums are exact in float32. So
  the mosaic must equal one forward pass of the task over the whole raster.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from raster_helpers import write_raster
from rasterio.transform import from_origin
from torch import nn
from trainer_helpers import quiet_trainer

from s5geo import segment_raster
from s5geo.cli.main import main
from s5geo.tasks import SupervisedSegmentation

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "predict" / "landsat.yaml"
HEIGHT, WIDTH = 75, 101  # not multiples of the 32 px window
TRANSFORM = from_origin(630_000.0, 230_000.0, 10.0, 10.0)
CRS = "EPSG:32119"
NUM_CLASSES = 4
# Raw pixel values (scale 1), on the CPU, without a progress bar.
RAW_ON_CPU = ["--data.init_args.scale", "1.0", "--trainer.accelerator", "cpu"]
RAW_ON_CPU += ["--trainer.enable_progress_bar", "false"]


def _save_checkpoint(task: SupervisedSegmentation, path: Path) -> Path:
    # A checkpoint saved from Python, not by `s5geo fit`: the task itself records its class
    # (`_class_path`) so that LightningCLI's predict can rebuild it.
    trainer = quiet_trainer(devices=1)
    trainer.strategy.connect(task)
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-band uint8 raster, an UperNet checkpoint and a 5x5-convolution checkpoint."""
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(3, HEIGHT, WIDTH)).astype(np.uint8)
    # Smooth structure on top of noise, so even an untrained network predicts several classes.
    image[0, :, : WIDTH // 2] //= 4
    image[1, HEIGHT // 2 :] //= 4
    write_raster(root / "scene.tif", image, transform=TRANSFORM)

    torch.manual_seed(0)
    upernet = SupervisedSegmentation(
        model="upernet_resnet18", num_classes=NUM_CLASSES, in_channels=3, mean=[0.0] * 3, std=[1.0] * 3
    )
    _save_checkpoint(upernet, root / "upernet.ckpt")

    conv = nn.Conv2d(3, NUM_CLASSES, kernel_size=5, padding=2)
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-3, 4, conv.weight.shape).float())
        conv.bias.copy_(torch.randint(-50, 51, conv.bias.shape).float())
    task = SupervisedSegmentation(
        model=conv, num_classes=NUM_CLASSES, in_channels=3, mean=[0.0] * 3, std=[1.0] * 3
    )
    _save_checkpoint(task, root / "conv.ckpt")
    torch.save(conv.state_dict(), root / "conv_weights.pt")
    return root


CONV_MODEL = (
    '{"class_path": "torch.nn.Conv2d", "init_args": {"in_channels": 3, "out_channels": 4, '
    '"kernel_size": 5, "padding": 2}}'
)


def _predict(workdir: Path, out: Path, ckpt: str, *extra: str) -> Path:
    """Run ``s5geo predict`` with the shipped config, pointed at the test raster and ``out``."""
    config = yaml.safe_load(CONFIG.read_text())
    config["trainer"]["callbacks"][0]["init_args"]["output_dir"] = str(out)
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = [
        "predict",
        "--config",
        str(path),
        "--ckpt_path",
        str(workdir / ckpt),
        "--data.init_args.dataset",
        "null",
        "--data.init_args.paths",
        str(workdir / "scene.tif"),
        "--data.init_args.window_size",
        "32",
        "--data.init_args.overlap",
        "8",
        "--data.init_args.batch_size",
        "3",
        *RAW_ON_CPU,
        "--trainer.default_root_dir",
        str(out),  # LightningCLI writes config.yaml there
        *extra,
    ]
    if ckpt == "conv.ckpt":
        argv += ["--model.init_args.model", CONV_MODEL]
    assert main(argv) == 0
    return out / "prediction.vrt"


def _read(vrt: Path) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    with rasterio.open(vrt) as src:
        return src.read(1), src.profile


def test_predict_matches_segment_blend_none(workdir: Path, tmp_path: Path) -> None:
    vrt = _predict(workdir, tmp_path / "out", "upernet.ckpt")
    mosaic, profile = _read(vrt)
    assert profile["crs"] == rasterio.crs.CRS.from_string(CRS)
    assert profile["transform"] == TRANSFORM
    assert (profile["height"], profile["width"]) == (HEIGHT, WIDTH)
    assert profile["nodata"] == 255
    assert (mosaic != 255).all()  # every pixel covered
    assert len(np.unique(mosaic)) >= 2  # otherwise the comparison below proves little

    reference = segment_raster(
        workdir / "scene.tif",
        workdir / "upernet.ckpt",
        tmp_path / "segment.tif",
        window_size=32,
        overlap=0.25,
        batch_size=3,
        blend="none",
        device="cpu",
        progress=False,
    )
    expected, _ = _read(reference)
    np.testing.assert_array_equal(mosaic, expected)

    # Tiles are georeferenced, do not overlap and together cover the raster exactly once.
    tiles = sorted((tmp_path / "out" / "tiles").glob("rank*/*.tif"))
    assert len(tiles) == 12  # 3 x 4 windows
    area = 0
    for tile in tiles:
        with rasterio.open(tile) as src:
            assert src.crs == rasterio.crs.CRS.from_string(CRS)
            assert src.res == (10.0, 10.0)
            area += src.width * src.height
    assert area == HEIGHT * WIDTH

    # Class names and colours come from the checkpoint's s5geo_metadata (before the config's).
    meta = torch.load(workdir / "upernet.ckpt", weights_only=True)["s5geo_metadata"]
    with rasterio.open(vrt) as src:
        assert src.colormap(1)[1][:3] == tuple(meta["colors"][1])
        assert src.tags(1)["CLASS_3"] == meta["classes"][3]


def _whole_raster_forward(workdir: Path) -> np.ndarray:
    with rasterio.open(workdir / "scene.tif") as src:
        image = torch.from_numpy(src.read().astype(np.float32))
    conv = nn.Conv2d(3, NUM_CLASSES, kernel_size=5, padding=2)
    conv.load_state_dict(torch.load(workdir / "conv_weights.pt", weights_only=True))
    task = SupervisedSegmentation(
        model=conv, num_classes=NUM_CLASSES, in_channels=3, mean=[0.0] * 3, std=[1.0] * 3
    ).eval()
    with torch.no_grad():
        return task(image[None]).argmax(1)[0].numpy().astype(np.uint8)


def test_predict_small_receptive_field_equals_whole_raster(workdir: Path, tmp_path: Path) -> None:
    expected = _whole_raster_forward(workdir)
    assert len(np.unique(expected)) >= 2
    mosaic, profile = _read(_predict(workdir, tmp_path / "out", "conv.ckpt"))
    assert profile["transform"] == TRANSFORM
    np.testing.assert_array_equal(mosaic, expected)


def test_predict_without_overlap_crop_shows_window_borders(workdir: Path, tmp_path: Path) -> None:
    # Control for the test above: with overlap 0 the window borders' zero padding changes pixels,
    # so the whole-raster equality really depends on the overlap handling.
    expected = _whole_raster_forward(workdir)
    mosaic, _ = _read(_predict(workdir, tmp_path / "out", "conv.ckpt", "--data.init_args.overlap", "0"))
    assert (mosaic != 255).all()
    assert (mosaic != expected).any()


def test_predict_nodata_stays_nodata(workdir: Path, tmp_path: Path) -> None:
    with rasterio.open(workdir / "scene.tif") as src:
        image = src.read().astype(np.int16)
    image[:, 10:20, 30:50] = -1
    scene = write_raster(tmp_path / "holes.tif", image, transform=TRANSFORM, nodata=-1)
    out = tmp_path / "out"
    config = yaml.safe_load(CONFIG.read_text())
    config["trainer"]["callbacks"][0]["init_args"]["output_dir"] = str(out)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert (
        main(
            [
                "predict",
                "--config",
                str(tmp_path / "c.yaml"),
                "--ckpt_path",
                str(workdir / "conv.ckpt"),
                "--model.init_args.model",
                CONV_MODEL,
                "--data.init_args.dataset",
                "null",
                "--data.init_args.paths",
                str(scene),
                "--data.init_args.window_size",
                "32",
                "--data.init_args.overlap",
                "8",
                *RAW_ON_CPU,
            ]
        )
        == 0
    )
    mosaic, _ = _read(out / "prediction.vrt")
    hole = np.zeros_like(mosaic, dtype=bool)
    hole[10:20, 30:50] = True
    assert (mosaic[hole] == 255).all()
    assert (mosaic[~hole] != 255).all()


@pytest.mark.ddp
def test_predict_ddp_two_processes_equals_one(workdir: Path, tmp_path: Path) -> None:
    single, _ = _read(_predict(workdir, tmp_path / "one", "upernet.ckpt"))
    vrt = _predict(
        workdir, tmp_path / "two", "upernet.ckpt", "--trainer.strategy", "ddp_spawn", "--trainer.devices", "2"
    )
    ranks = {p.parent.name for p in (tmp_path / "two" / "tiles").glob("rank*/*.tif")}
    assert ranks == {"rank0", "rank1"}  # both processes wrote their own windows
    mosaic, profile = _read(vrt)
    assert profile["transform"] == TRANSFORM and (profile["height"], profile["width"]) == (HEIGHT, WIDTH)
    assert (mosaic != 255).all()
    np.testing.assert_array_equal(mosaic, single)


def test_datamodule_covers_landsat_sample_once() -> None:
    # The shipped config's dataset (the Landsat sample) builds windows over the whole scene.
    from s5geo.datamodules import GeoPredictionDataModule

    config = yaml.safe_load(CONFIG.read_text())["data"]["init_args"]
    spec = dict(config["dataset"])
    spec["init_args"] = {**spec["init_args"], "paths": str(ROOT / spec["init_args"]["paths"])}
    dm = GeoPredictionDataModule(
        dataset=spec, window_size=config["window_size"], overlap=config["overlap"], batch_size=2
    )
    dm.setup("predict")
    windows = dm.predict_dataset
    assert (windows.height, windows.width) == (443, 489)
    keeps = [keep for _, keep in windows.windows]
    covered = sum((k[1] - k[0]) * (k[3] - k[2]) for k in keeps)
    assert covered == 443 * 489
    batch = dm.on_after_batch_transfer(next(iter(dm.predict_dataloader())), 0)
    assert batch["image"].shape == (2, 6, 256, 256)
    assert float(batch["image"].min()) >= 0.0 and 0.5 < float(batch["image"].max()) <= 1.0
    assert len(batch["bounds"]) == 2 and batch["crs"][0] == windows.crs
    # The first window is the top-left corner of the scene.
    x, y, _ = batch["bounds"][0]
    assert (x.start, y.stop) == (630534.0, 228114.0)
