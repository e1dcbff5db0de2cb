"""The semi-supervised datamodule refuses labeled and unlabeled images with different band counts."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s5geo.datamodules import SemiSupervisedDataModule
from s5geo.datasets import UDD6, UnlabeledFolder
from s5geo.errors import S5GeoError

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def test_band_check_names_both_datasets(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[1] / "data"
    shutil.copytree(data / "udd6", tmp_path / "udd6", ignore=shutil.ignore_patterns("*.py"))
    unlabeled = tmp_path / "unlabeled"
    unlabeled.mkdir()
    profile = {"driver": "GTiff", "height": 16, "width": 16, "count": 4, "dtype": "uint8"}
    with rasterio.open(unlabeled / "a.tif", "w", **profile) as dst:
        dst.write(np.random.default_rng(0).integers(0, 255, (4, 16, 16), dtype=np.uint8))
    dm = SemiSupervisedDataModule(
        {"class_path": "s5geo.datasets.UDD6", "init_args": {"root": str(tmp_path / "udd6")}},
        UnlabeledFolder(unlabeled),
    )
    with pytest.raises(
        S5GeoError, match=r"3 bands \(UDD6 in .*udd6\) but unlabeled images have 4 \(UnlabeledFolder"
    ):
        dm.setup("fit")
    assert isinstance(dm.labeled_dataset, UDD6)
