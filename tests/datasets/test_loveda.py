import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _dataset_helpers import copy_release
from matplotlib.figure import Figure
from PIL import Image

from s5geo.datasets.loveda import LoveDA
from s5geo.errors import DatasetLayoutError, InvalidMaskError, S5GeoError

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_release("loveda", tmp_path)


def test_train_loads_both_scenes(root: Path) -> None:
    ds = LoveDA(root, split="train")
    assert len(ds) == 3
    assert ds.num_classes == 7 and len(ds.colors) == 7
    sample = ds[0]
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    assert sample["mask"].shape == (32, 32) and sample["mask"].dtype == torch.int64
    raw = np.array(Image.open(ds.files[0]["image"])).transpose(2, 0, 1)
    assert torch.equal(sample["image"], torch.from_numpy(raw).float())


def test_no_data_is_ignored_and_classes_shift(root: Path) -> None:
    ds = LoveDA(root, split="trainval")
    assert len(ds) == 5
    for index, record in enumerate(ds.files):
        raw = np.asarray(Image.open(record["mask"])).astype(np.int64)
        expected = np.where(raw == 0, 255, raw - 1)
        mask = ds[index]["mask"].numpy()
        np.testing.assert_array_equal(mask, expected)
        assert mask[0, 0] == 255 and mask[0, 1] == 0  # raw 0 -> ignore, raw 1 -> background


def test_scene_selection(root: Path) -> None:
    urban = LoveDA(root, split="train", scene=["urban"])
    assert [r["image"].name for r in urban.files] == ["1366.png"]
    rural = LoveDA(root, split="val", scene="rural")
    assert [r["image"].name for r in rural.files] == ["2522.png"]
    with pytest.raises(S5GeoError, match="scene"):
        LoveDA(root, scene=["suburban"])
    with pytest.raises(S5GeoError, match="split"):
        LoveDA(root, split="validation")


def test_test_split_has_no_masks(root: Path) -> None:
    ds = LoveDA(root, split="test")
    assert len(ds) == 2
    assert "mask" not in ds[0]


def test_tiling(root: Path) -> None:
    ds = LoveDA(root, split="train", tile_size=16)
    whole = LoveDA(root, split="train")
    assert len(ds) == 3 * 4
    first = [ds[i] for i, tile in enumerate(ds.tiles) if tile.file_index == 0]
    top = torch.cat([first[0]["mask"], first[1]["mask"]], dim=1)
    bottom = torch.cat([first[2]["mask"], first[3]["mask"]], dim=1)
    assert torch.equal(torch.cat([top, bottom]), whole[0]["mask"])


def test_layout_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"Train/Urban.*Expected layout"):
        LoveDA(tmp_path / "nowhere")
    (root / "Train" / "Rural" / "masks_png" / "1.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"1.png is missing"):
        LoveDA(root, split="train")


def test_bad_mask_value_and_size(root: Path) -> None:
    ds = LoveDA(root, split="val")
    path = ds.files[0]["mask"]
    raw = np.asarray(Image.open(path)).copy()
    raw[2, 2] = 9
    Image.fromarray(raw).save(path)
    with pytest.raises(InvalidMaskError, match=r"\[9\]"):
        ds[0]
    Image.fromarray(raw[:-2] % 8).save(path)
    with pytest.raises(InvalidMaskError, match="does not match"):
        ds[0]


def test_plot(root: Path) -> None:
    import matplotlib.pyplot as plt

    ds = LoveDA(root, split="val")
    fig = ds.plot(ds[0], suptitle="LoveDA")
    assert isinstance(fig, Figure)
    plt.close(fig)


def zip_folder(folder: Path, archive: Path) -> None:
    import zipfile

    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent))


def test_release_zip_extracted_on_first_use(root: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    release.mkdir()
    zip_folder(root / "Train", release / "Train.zip")
    (release / "Train" / "Urban").mkdir(parents=True)  # a user's partial folder is completed, not replaced
    ds = LoveDA(release, split="train")
    assert len(ds) == 3 and ds[0]["mask"].shape == ds[0]["image"].shape[1:]
    assert not list(release.glob(".*.extracting"))
    with pytest.raises(DatasetLayoutError, match=r"Val/Urban.*found .*Train\.zip"):
        LoveDA(release, split="val")


def test_zip_unpacked_into_its_own_folder(root: Path, tmp_path: Path) -> None:
    nested = tmp_path / "nested"
    shutil.copytree(root / "Val", nested / "Val" / "Val")
    assert len(LoveDA(nested, split="val")) == len(LoveDA(root, split="val"))
