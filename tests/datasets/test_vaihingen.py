from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from _dataset_helpers import ISPRS_EXPECTED as EXPECTED
from _dataset_helpers import copy_archives, reassemble
from _dataset_helpers import read as read_rgb
from matplotlib.figure import Figure

from s5geo.datasets.vaihingen import Vaihingen
from s5geo.errors import DatasetLayoutError, InvalidMaskError, S5GeoError

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*tile\\(s\\) missing:UserWarning"),
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_archives("vaihingen", tmp_path)


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    count, height, width = rgb.shape
    with rasterio.open(
        path, "w", driver="GTiff", height=height, width=width, count=count, dtype="uint8"
    ) as dst:
        dst.write(rgb)


def test_train_extracts_archives_and_loads_whole_tiles(root: Path) -> None:
    with pytest.warns(UserWarning, match="14 train tile"):
        ds = Vaihingen(root, split="train")
    assert (root / "top" / "top_mosaic_09cm_area1.tif").exists()  # TorchGeo extracted the zips
    assert len(ds) == 2
    assert ds.num_classes == 5 and len(ds.colors) == 5
    shapes = sorted(tuple(ds[i]["mask"].shape) for i in range(len(ds)))
    assert shapes == [(40, 50), (70, 90)]
    sample = ds[0]
    assert sample["image"].dtype == torch.float32 and sample["image"].shape[0] == 3
    assert sample["mask"].dtype == torch.int64
    image = read_rgb(ds.files[0]["image"])
    assert torch.equal(sample["image"], torch.from_numpy(image).float())  # raw IRRG values


def test_clutter_is_ignored_and_classes_map(root: Path) -> None:
    ds = Vaihingen(root, split="train")
    for index, record in enumerate(ds.files):
        rgb = read_rgb(record["mask"])
        expected = np.full(rgb.shape[1:], -1)
        for colour, value in EXPECTED.items():
            expected[(rgb.transpose(1, 2, 0) == colour).all(-1)] = value
        assert (expected >= 0).all()
        mask = ds[index]["mask"].numpy()
        np.testing.assert_array_equal(mask, expected)
        assert mask[0, 0] == 255  # the generator's clutter pixel
        assert set(np.unique(mask)) <= {0, 1, 2, 3, 4, 255}


def test_val_is_the_test_split(root: Path) -> None:
    test = Vaihingen(root, split="test")
    val = Vaihingen(root, split="val")
    assert [r["image"].name for r in val.files] == ["top_mosaic_09cm_area2.tif"]
    assert val.files == test.files


def test_tiles_cover_each_tile_exactly(root: Path) -> None:
    whole = Vaihingen(root, split="train")
    tiled = Vaihingen(root, split="train", tile_size=32)
    # 70 x 90 -> rows 0, 32, 38 and cols 0, 32, 58; 40 x 50 -> rows 0, 8 and cols 0, 18.
    assert len(tiled) == 3 * 3 + 2 * 2
    for file_index in range(len(whole)):
        full = whole[file_index]
        image, mask, shapes = reassemble(tiled, file_index, full, 32)
        assert shapes == {((3, 32, 32), (32, 32))}
        assert torch.equal(image, full["image"])  # every pixel covered, with the right values
        assert torch.equal(mask, full["mask"])


def test_stride_gives_overlapping_grid(root: Path) -> None:
    tiled = Vaihingen(root, split="train", tile_size=32, stride=16)
    first = [t for t in tiled.tiles if t.file_index == 0]  # the 70 x 90 tile
    assert sorted({t.row for t in first}) == [0, 16, 32, 38]
    assert sorted({t.col for t in first}) == [0, 16, 32, 48, 58]
    assert len(first) == 4 * 5


def test_eroded_label_boundary_is_ignored(root: Path) -> None:
    ds = Vaihingen(root, split="train")
    path = ds.files[0]["mask"]
    rgb = read_rgb(path)
    rgb[:, 5, :] = 0  # a black boundary row, as in the eroded labels
    write_rgb(path, rgb)
    assert (ds[0]["mask"][5] == 255).all()


def test_unknown_colour(root: Path) -> None:
    ds = Vaihingen(root, split="train")
    path = ds.files[0]["mask"]
    rgb = read_rgb(path)
    rgb[:, 3, 4] = (255, 0, 255)
    write_rgb(path, rgb)
    with pytest.raises(InvalidMaskError, match=r"colour \(.*255.*0.*255.*\)"):
        ds[0]
    lenient = Vaihingen(root, split="train", unknown_colors="ignore")
    assert lenient[0]["mask"][3, 4] == 255


def test_size_mismatch(root: Path) -> None:
    ds = Vaihingen(root, split="train")
    path = ds.files[0]["mask"]
    write_rgb(path, read_rgb(path)[:, :-1, :])
    with pytest.raises(InvalidMaskError, match="does not match"):
        ds[0]
    with pytest.raises(InvalidMaskError, match="does not match"):
        Vaihingen(root, split="train", tile_size=32)


def test_missing_dataset_shows_expected_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"Expected layout.*ISPRS_semantic_labeling_Vaihingen"):
        Vaihingen(tmp_path)


def test_missing_label_is_a_layout_error(root: Path) -> None:
    ds = Vaihingen(root, split="train")
    ds.files[0]["mask"].unlink()
    with pytest.raises(DatasetLayoutError, match=r"label .* is missing"):
        Vaihingen(root, split="train")


def test_bad_arguments(root: Path) -> None:
    with pytest.raises(S5GeoError, match="split"):
        Vaihingen(root, split="validation")
    with pytest.raises(ValueError, match="stride"):
        Vaihingen(root, tile_size=32, stride=64)


def test_plot(root: Path) -> None:
    import matplotlib.pyplot as plt

    ds = Vaihingen(root, split="train", tile_size=32)
    sample = ds[0]
    sample["prediction"] = sample["mask"].clone()
    fig = ds.plot(sample, suptitle="vaihingen")
    assert isinstance(fig, Figure)
    plt.close(fig)
