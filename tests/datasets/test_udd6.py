from pathlib import Path

import numpy as np
import pytest
import torch
from _dataset_helpers import copy_release
from matplotlib.figure import Figure
from PIL import Image

from s5geo.datasets.udd6 import UDD6
from s5geo.errors import DatasetLayoutError, InvalidMaskError, S5GeoError

EXPECTED = {
    (0, 0, 0): 0,
    (102, 102, 156): 1,
    (128, 64, 128): 2,
    (107, 142, 35): 3,
    (0, 0, 142): 4,
    (70, 70, 70): 5,
}

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_release("udd6", tmp_path)


def expected_indices(path: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    expected = np.full(rgb.shape[:2], -1)
    for colour, value in EXPECTED.items():
        expected[(rgb == colour).all(-1)] = value
    assert (expected >= 0).all()
    return expected


def test_splits_load(root: Path) -> None:
    train = UDD6(root, split="train")
    assert [r["image"].name for r in train.files] == ["DJI_0001.JPG", "DJI_0002.JPG"]
    assert len(UDD6(root, split="val")) == 1 and len(UDD6(root, split="trainval")) == 3
    sample = train[0]
    assert sample["image"].shape == (3, 36, 64) and sample["image"].dtype == torch.float32
    assert sample["mask"].shape == (36, 64) and sample["mask"].dtype == torch.int64
    raw = np.array(Image.open(train.files[0]["image"])).transpose(2, 0, 1)
    assert torch.equal(sample["image"], torch.from_numpy(raw).float())
    assert train.classes == ("other", "facade", "road", "vegetation", "vehicle", "roof")


def test_rgb_colours_map_to_classes(root: Path) -> None:
    ds = UDD6(root, split="trainval")
    for index, record in enumerate(ds.files):
        mask = ds[index]["mask"].numpy()
        np.testing.assert_array_equal(mask, expected_indices(record["mask"]))
        assert mask[0, 0] == 0 and mask[0, 1] == 5


def test_index_and_grey_coded_masks_decode_the_same(root: Path) -> None:
    ds = UDD6(root, split="val")
    reference = ds[0]["mask"]
    path = ds.files[0]["mask"]
    indices = expected_indices(path).astype(np.uint8)
    Image.fromarray(indices, mode="L").save(path)
    assert torch.equal(ds[0]["mask"], reference)
    Image.fromarray(np.stack([indices] * 3, axis=-1)).save(path)
    assert torch.equal(ds[0]["mask"], reference)


def test_unknown_colour(root: Path) -> None:
    ds = UDD6(root, split="val")
    path = ds.files[0]["mask"]
    rgb = np.array(Image.open(path).convert("RGB"))
    rgb[5, 5] = (1, 2, 3)
    Image.fromarray(rgb).save(path)
    with pytest.raises(InvalidMaskError, match="not a class colour"):
        ds[0]
    assert UDD6(root, split="val", unknown_colors="ignore")[0]["mask"][5, 5] == 255


def test_size_mismatch(root: Path) -> None:
    ds = UDD6(root, split="val")
    path = ds.files[0]["mask"]
    Image.open(path).convert("RGB").crop((0, 0, 60, 36)).save(path)
    with pytest.raises(InvalidMaskError, match="does not match"):
        ds[0]


def test_layout_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"train/src is missing.*Expected layout"):
        UDD6(tmp_path)
    (root / "train" / "gt" / "DJI_0002.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"DJI_0002.png is missing"):
        UDD6(root, split="train")
    with pytest.raises(S5GeoError, match="split"):
        UDD6(root, split="test")


def test_tiling(root: Path) -> None:
    whole = UDD6(root, split="val")[0]
    tiled = UDD6(root, split="val", tile_size=24)
    assert [(t.row, t.col) for t in tiled.tiles] == [(row, col) for row in (0, 12) for col in (0, 24, 40)]
    image = torch.zeros_like(whole["image"])
    for index, tile in enumerate(tiled.tiles):
        image[:, tile.row : tile.row + 24, tile.col : tile.col + 24] = tiled[index]["image"]
    assert torch.equal(image, whole["image"])


def test_plot(root: Path) -> None:
    import matplotlib.pyplot as plt

    ds = UDD6(root, split="val")
    fig = ds.plot(ds[0])
    assert isinstance(fig, Figure)
    plt.close(fig)
