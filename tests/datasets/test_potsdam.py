from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from _dataset_helpers import ISPRS_EXPECTED as EXPECTED
from _dataset_helpers import copy_archives, read, reassemble
from matplotlib.figure import Figure

from s5geo.datasets.potsdam import Potsdam
from s5geo.errors import DatasetLayoutError, InvalidMaskError, S5GeoError

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*tile\\(s\\) missing:UserWarning"),
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_archives("potsdam", tmp_path)


def test_loads_rgb_bands_by_default(root: Path) -> None:
    with pytest.warns(UserWarning, match="22 train tile"):
        ds = Potsdam(root, split="train")
    assert (root / "4_Ortho_RGBIR" / "top_potsdam_2_10_RGBIR.tif").exists()
    assert len(ds) == 2
    sample = ds[0]
    raw = read(ds.files[0]["image"])
    assert raw.shape[0] == 4
    assert sample["image"].dtype == torch.float32
    assert torch.equal(sample["image"], torch.from_numpy(raw[:3]).float())
    assert sample["mask"].dtype == torch.int64 and sample["mask"].shape == raw.shape[1:]
    four = Potsdam(root, split="train", bands=("R", "G", "B", "IR"))
    assert torch.equal(four[0]["image"], torch.from_numpy(raw).float())
    irrg = Potsdam(root, split="train", bands=("IR", "R", "G"))
    assert torch.equal(irrg[0]["image"], torch.from_numpy(raw[[3, 0, 1]]).float())


def test_clutter_is_ignored_and_classes_map(root: Path) -> None:
    ds = Potsdam(root, split="train")
    for index, record in enumerate(ds.files):
        rgb = read(record["mask"]).transpose(1, 2, 0)
        expected = np.full(rgb.shape[:2], -1)
        for colour, value in EXPECTED.items():
            expected[(rgb == colour).all(-1)] = value
        mask = ds[index]["mask"].numpy()
        np.testing.assert_array_equal(mask, expected)
        assert mask[0, 0] == 255


def test_test_split(root: Path) -> None:
    ds = Potsdam(root, split="test")
    assert [r["image"].name for r in ds.files] == ["top_potsdam_2_13_RGBIR.tif"]


def test_tiles_cover_each_tile_exactly(root: Path) -> None:
    whole = Potsdam(root, split="train", bands=("R", "G", "B", "IR"))
    tiled = Potsdam(root, split="train", bands=("R", "G", "B", "IR"), tile_size=32, stride=24)
    for file_index in range(len(whole)):
        full = whole[file_index]
        image, mask, shapes = reassemble(tiled, file_index, full, 32)
        assert {image_shape for image_shape, _ in shapes} == {(4, 32, 32)}
        assert torch.equal(image, full["image"]) and torch.equal(mask, full["mask"])


def test_unknown_colour_and_size_mismatch(root: Path) -> None:
    ds = Potsdam(root, split="train")
    path = ds.files[1]["mask"]
    rgb = read(path)
    rgb[:, 0, 0] = (10, 20, 30)
    with rasterio.open(path, "r+") as dst:
        dst.write(rgb)
    with pytest.raises(InvalidMaskError, match="not a class colour"):
        ds[1]
    profile = {"driver": "GTiff", "height": 10, "width": 10, "count": 3, "dtype": "uint8"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((3, 10, 10), 255, np.uint8))
    with pytest.raises(InvalidMaskError, match="does not match"):
        ds[1]


def test_layout_errors(root: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetLayoutError, match=r"4_Ortho_RGBIR.zip"):
        Potsdam(empty)
    ds = Potsdam(root, split="train")
    ds.files[0]["image"].unlink()
    with pytest.raises(DatasetLayoutError, match=r"image .* is missing"):
        Potsdam(root, split="train")


def test_bad_bands(root: Path) -> None:
    with pytest.raises(S5GeoError, match="bands"):
        Potsdam(root, bands=("R", "NIR"))


def test_plot(root: Path) -> None:
    import matplotlib.pyplot as plt

    ds = Potsdam(root, split="test")
    fig = ds.plot(ds[0])
    assert isinstance(fig, Figure)
    plt.close(fig)
