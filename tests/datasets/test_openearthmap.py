import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from _dataset_helpers import copy_release, read
from matplotlib.figure import Figure

from s5geo.datasets.openearthmap import OpenEarthMap
from s5geo.errors import DatasetLayoutError, InvalidMaskError, S5GeoError

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_release("openearthmap", tmp_path, "oem")


def names(ds: OpenEarthMap) -> list[str]:
    return [record["image"].name for record in ds.files]


def test_train_without_xbd_regions(root: Path) -> None:
    ds = OpenEarthMap(root, split="train")
    assert names(ds) == ["aachen_1.tif", "aachen_2.tif", "tokyo_1.tif"]
    assert ds.num_classes == 9 and len(ds.colors) == 9
    sample = ds[0]
    assert sample["image"].shape == (3, 40, 48) and sample["image"].dtype == torch.float32
    assert sample["mask"].shape == (40, 48) and sample["mask"].dtype == torch.int64
    assert torch.equal(sample["image"], torch.from_numpy(read(ds.files[0]["image"])).float())


def test_xbd_regions_can_be_kept(root: Path) -> None:
    ds = OpenEarthMap(root, split="train", exclude_xbd=False)
    assert names(ds) == ["aachen_1.tif", "aachen_2.tif", "houston_1.tif", "tokyo_1.tif"]
    assert names(OpenEarthMap(root, split="val")) == ["aachen_3.tif"]
    val = OpenEarthMap(root, split="val", exclude_xbd=False)
    assert names(val) == ["aachen_3.tif", "houston_2.tif"]
    assert len(OpenEarthMap(root, split="trainval")) == 4


def test_xbd_region_list() -> None:
    assert len(OpenEarthMap.xbd_regions) == 22
    assert {"houston", "el_rodeo", "pedrogao_grande", "wallace"} <= OpenEarthMap.xbd_regions
    assert not {"aachen", "tokyo", "chiclayo"} & OpenEarthMap.xbd_regions
    assert OpenEarthMap.region_of("el_rodeo_12.tif") == "el_rodeo"
    assert OpenEarthMap.region_of("saint_louis_du_sud_3.tif") == "saint_louis_du_sud"


def test_label_zero_is_class_other(root: Path) -> None:
    ds = OpenEarthMap(root, split="trainval", exclude_xbd=False)
    assert ds.classes[0] == "other" and ds.classes[8] == "building"
    for index, record in enumerate(ds.files):
        raw = read(record["mask"])[0]
        mask = ds[index]["mask"].numpy()
        np.testing.assert_array_equal(mask, raw)  # index = raw value, 0..8, nothing ignored
        assert mask[0, 0] == 0 and mask[0, 1] == 8
    assert set(np.unique(ds[0]["mask"].numpy())) <= set(range(9))


def test_test_split_without_labels(root: Path) -> None:
    ds = OpenEarthMap(root, split="test")
    assert names(ds) == ["tokyo_2.tif"]
    assert "mask" not in ds[0]


def test_missing_xbd_images(root: Path) -> None:
    shutil.rmtree(root / "houston" / "images")  # as in the release, before compile_xbd.py
    assert len(OpenEarthMap(root, split="train")) == 3
    with pytest.raises(DatasetLayoutError, match="compile_xbd"):
        OpenEarthMap(root, split="train", exclude_xbd=False)


def test_layout_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"train.txt is missing.*Expected layout"):
        OpenEarthMap(tmp_path)
    (root / "aachen" / "labels" / "aachen_2.tif").unlink()
    with pytest.raises(DatasetLayoutError, match=r"label .*aachen_2.tif is missing"):
        OpenEarthMap(root, split="train")
    (root / "val.txt").write_text("not-a-name.png\n")
    with pytest.raises(S5GeoError, match="not-a-name"):
        OpenEarthMap(root, split="val")


def test_bad_label_value_and_size(root: Path) -> None:
    ds = OpenEarthMap(root, split="val")
    path = ds.files[0]["mask"]
    label = read(path)
    label[0, 3, 3] = 9
    with rasterio.open(path, "r+") as dst:
        dst.write(label)
    with pytest.raises(InvalidMaskError, match=r"\[9\]"):
        ds[0]
    profile = {"driver": "GTiff", "height": 8, "width": 8, "count": 1, "dtype": "uint8"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, 8, 8), np.uint8))
    with pytest.raises(InvalidMaskError, match="does not match"):
        ds[0]


def test_tiling_covers_and_pads(root: Path) -> None:
    whole = OpenEarthMap(root, split="train")
    tiled = OpenEarthMap(root, split="train", tile_size=32, stride=16)
    full = whole[0]  # 40 x 48
    mask = torch.full_like(full["mask"], -1)
    for index, tile in enumerate(tiled.tiles):
        if tile.file_index == 0:
            mask[tile.row : tile.row + 32, tile.col : tile.col + 32] = tiled[index]["mask"]
    assert torch.equal(mask, full["mask"])
    padded = OpenEarthMap(root, split="train", tile_size=64)  # every image is smaller
    assert len(padded) == 3
    sample = padded[2]  # tokyo_1, 36 x 40
    assert sample["image"].shape == (3, 64, 64) and sample["mask"].shape == (64, 64)
    assert torch.equal(sample["mask"][:36, :40], whole[2]["mask"])
    assert (sample["mask"][36:] == 255).all() and (sample["mask"][:, 40:] == 255).all()
    assert (sample["image"][:, 36:] == 0).all()


def test_plot(root: Path) -> None:
    import matplotlib.pyplot as plt

    ds = OpenEarthMap(root, split="train")
    fig = ds.plot(ds[1])
    assert isinstance(fig, Figure)
    plt.close(fig)


def test_release_zip_and_its_folder(root: Path, tmp_path: Path) -> None:
    import zipfile

    release = tmp_path / "release"
    release.mkdir()
    with zipfile.ZipFile(release / "OpenEarthMap.zip", "w") as zf:
        for path in sorted(root.rglob("*")):
            zf.write(path, Path("OpenEarthMap_wo_xBD") / path.relative_to(root))
    ds = OpenEarthMap(release, split="train")
    assert names(ds) == ["aachen_1.tif", "aachen_2.tif", "tokyo_1.tif"]
    assert ds.root == release / "OpenEarthMap_wo_xBD"
    # the unpacked folder is used as it is on the next call
    (release / "OpenEarthMap.zip").unlink()
    assert len(OpenEarthMap(release, split="val")) == len(OpenEarthMap(root, split="val"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "oem.tar.gz").write_bytes(b"")
    with pytest.raises(DatasetLayoutError, match=r"train\.txt is missing; found .*oem\.tar\.gz"):
        OpenEarthMap(tmp_path / "empty", split="train")
