"""Band names from the datamodules into the checkpoint metadata."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from _tiny import SplitTinyDataset
from rasterio.transform import from_origin

from s5geo.datamodules import (
    PotsdamDataModule,
    S5DataModule,
    SemiSupervisedDataModule,
    VaihingenDataModule,
)
from s5geo.datamodules._band_names import dataset_band_names, raster_band_names
from s5geo.datamodules.geo_predict import GeoPredictionDataModule
from s5geo.datasets import SegmentationFolder, UnlabeledFolder
from s5geo.metadata import CHECKPOINT_METADATA_KEY, ModelMetadata, datamodule_metadata

DATA = Path(__file__).resolve().parents[1] / "data"
CROP = 32

pytestmark = pytest.mark.filterwarnings("ignore:.*tile\\(s\\) missing:UserWarning")


def _geotiff(path: Path, descriptions: tuple[str | None, ...], photometric: str | None = None) -> Path:
    data = np.random.default_rng(0).integers(1, 250, size=(len(descriptions), 40, 40)).astype(np.uint8)
    options = {"photometric": photometric} if photometric else {}
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=40,
        height=40,
        count=len(descriptions),
        dtype="uint8",
        crs="EPSG:32119",
        transform=from_origin(600_000, 250_000, 30, 30),
        **options,
    ) as dst:
        dst.write(data)
        for index, text in enumerate(descriptions, start=1):
            if text:
                dst.set_band_description(index, text)
    return path


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # writing plain images
def test_raster_band_names_from_descriptions_or_rgb(tmp_path: Path) -> None:
    named = _geotiff(tmp_path / "named.tif", ("NIR", "Red", "Green"))
    assert raster_band_names(named) == ["NIR", "Red", "Green"]
    assert raster_band_names(named, [3, 1]) == ["Green", "NIR"]
    assert raster_band_names(_geotiff(tmp_path / "partly.tif", ("NIR", None, "Green"))) is None
    # GDAL calls any 3-band byte GeoTIFF RGB, false-colour ones too: not a name
    assert raster_band_names(_geotiff(tmp_path / "rgb.tif", (None,) * 3, "RGB")) is None
    with rasterio.open(
        tmp_path / "photo.png", "w", driver="PNG", width=8, height=8, count=3, dtype="uint8"
    ) as dst:
        dst.write(np.zeros((3, 8, 8), np.uint8))
    assert raster_band_names(tmp_path / "photo.png") == ["red", "green", "blue"]
    assert raster_band_names(named, [4]) is None
    assert raster_band_names(tmp_path / "missing.tif") is None


def test_isprs_datamodules_name_their_bands(tmp_path: Path) -> None:
    assert VaihingenDataModule(str(tmp_path)).band_names == ["nir", "red", "green"]
    assert PotsdamDataModule(str(tmp_path)).band_names == ["red", "green", "blue"]
    irrg = PotsdamDataModule(str(tmp_path), bands=("IR", "R", "G"))
    assert datamodule_metadata(irrg)["band_names"] == ["nir", "red", "green"]
    assert S5DataModule(SplitTinyDataset).band_names is None  # in-memory images have no names


def test_checkpoint_records_the_datamodule_band_names(tmp_path: Path) -> None:
    from s5geo.tasks import SupervisedSegmentation

    shutil.copytree(DATA / "potsdam", tmp_path / "potsdam", ignore=shutil.ignore_patterns("*.py"))
    dm = PotsdamDataModule(str(tmp_path / "potsdam"), bands=("IR", "R", "G"), tile_size=CROP, crop_size=CROP)
    dm.setup("fit")
    task = SupervisedSegmentation(model="upernet_resnet18", model_kwargs={"channels": 8}, num_classes=5)
    task._datamodule = lambda: dm  # as under a Trainer with this datamodule
    checkpoint: dict = {}
    task.on_save_checkpoint(checkpoint)
    meta = ModelMetadata.from_dict(checkpoint[CHECKPOINT_METADATA_KEY])
    assert meta.bands == [4, 1, 2] and meta.band_names == ["nir", "red", "green"]

    task._datamodule = lambda: S5DataModule(SplitTinyDataset)
    assert task.model_metadata().band_names is None
    task._datamodule = lambda: SimpleNamespace(band_names=["red", "green"])  # 2 names, 3 bands
    assert task.model_metadata().band_names is None


def test_folder_datamodule_of_rgb_photos_names_red_green_blue() -> None:
    folder = SegmentationFolder.dubai_aerial(DATA / "dubai_aerial")
    assert dataset_band_names(folder) == ["red", "green", "blue"]  # JPEG photos
    unlabeled = UnlabeledFolder(DATA / "dubai_aerial" / "Tile 1" / "images", classes=folder.classes)
    dm = SemiSupervisedDataModule(folder, unlabeled, crop_size=CROP)
    assert dm.band_names is None  # not known before the datasets are opened
    dm.setup("fit")
    assert dm.band_names == ["red", "green", "blue"]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # writing plain images
def test_folder_of_geotiffs_names_bands_by_description(tmp_path: Path) -> None:
    for name in ("images", "masks"):
        (tmp_path / name).mkdir()
    _geotiff(tmp_path / "images" / "a.tif", ("nir", "red", "green"))
    with rasterio.open(
        tmp_path / "masks" / "a.tif", "w", driver="GTiff", width=40, height=40, count=1, dtype="uint8"
    ) as dst:
        dst.write(np.zeros((1, 40, 40), np.uint8))
    folder = SegmentationFolder(tmp_path, classes=["a"])
    assert dataset_band_names(folder) == ["nir", "red", "green"]


def test_geo_prediction_datamodule_names_bands_from_descriptions(tmp_path: Path) -> None:
    named = _geotiff(tmp_path / "named.tif", ("Blue", "Green", "Red"))
    dm = GeoPredictionDataModule(paths=str(named), bands=[3, 2, 1], window_size=32, overlap=0)
    assert dm.band_names is None
    dm.setup("predict")
    assert dm.band_names == ["Red", "Green", "Blue"]
    unnamed = _geotiff(tmp_path / "unnamed.tif", ("Blue", None, "Red"))
    partial = GeoPredictionDataModule(paths=str(unnamed), window_size=32, overlap=0)
    partial.setup("predict")
    assert partial.band_names is None
