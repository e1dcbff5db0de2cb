import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _dataset_helpers import copy_release, reassemble
from matplotlib.figure import Figure
from PIL import Image

from s5geo.datasets.vdd import VDD
from s5geo.errors import DatasetLayoutError, InvalidMaskError

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_release("vdd", tmp_path)


def test_splits_load(root: Path) -> None:
    assert len(VDD(root, split="train")) == 2
    assert len(VDD(root, split="val")) == 1
    assert len(VDD(root, split="test")) == 1
    ds = VDD(root, split="trainval")
    assert len(ds) == 3 and ds.num_classes == 7 and ds.classes[6] == "water"
    sample = ds[0]
    assert sample["image"].shape == (3, 45, 60) and sample["image"].dtype == torch.float32
    assert sample["mask"].shape == (45, 60) and sample["mask"].dtype == torch.int64


def test_class_ids_are_kept(root: Path) -> None:
    ds = VDD(root, split="trainval")
    for index, record in enumerate(ds.files):
        raw = np.asarray(Image.open(record["mask"]))
        mask = ds[index]["mask"].numpy()
        np.testing.assert_array_equal(mask, raw)
        assert mask[0, 0] == 0 and mask[0, 1] == 6


def test_rgb_coded_mask_is_accepted(root: Path) -> None:
    ds = VDD(root, split="test")
    reference = ds[0]["mask"]
    path = ds.files[0]["mask"]
    palette = np.array(VDD.colors, dtype=np.uint8)
    Image.fromarray(palette[np.asarray(Image.open(path))]).save(path)
    assert torch.equal(ds[0]["mask"], reference)


def test_unknown_class_and_size_mismatch(root: Path) -> None:
    ds = VDD(root, split="test")
    path = ds.files[0]["mask"]
    raw = np.array(Image.open(path))
    raw[1, 1] = 7
    Image.fromarray(raw).save(path)
    with pytest.raises(InvalidMaskError, match=r"\[7\]"):
        ds[0]
    Image.fromarray(raw[:40] % 7).save(path)
    with pytest.raises(InvalidMaskError, match="does not match"):
        ds[0]
    with pytest.raises(InvalidMaskError, match="does not match"):
        VDD(root, split="test", tile_size=16)


def test_layout_errors(root: Path) -> None:
    shutil.rmtree(root / "val" / "gt")
    with pytest.raises(DatasetLayoutError, match=r"val/gt is missing"):
        VDD(root, split="val")
    for image in (root / "test" / "src").iterdir():
        image.unlink()
    with pytest.raises(DatasetLayoutError, match="no images"):
        VDD(root, split="test")


def test_tiles_cover_the_image_exactly(root: Path) -> None:
    whole = VDD(root, split="train")
    tiled = VDD(root, split="train", tile_size=16, stride=12)
    for file_index in range(len(whole)):
        full = whole[file_index]
        image, mask, shapes = reassemble(tiled, file_index, full, 16)
        assert {mask_shape for _, mask_shape in shapes} == {(16, 16)}
        assert torch.equal(image, full["image"]) and torch.equal(mask, full["mask"])
    rows = sorted({t.row for t in tiled.tiles})
    assert rows == [0, 12, 24, 29]  # last window ends on the 45 px border


def test_transforms_are_applied(root: Path) -> None:
    def flip(sample: dict) -> dict:
        return {key: value.flip(-1) for key, value in sample.items()}

    plain = VDD(root, split="val", tile_size=16)
    flipped = VDD(root, split="val", tile_size=16, transforms=flip)
    assert torch.equal(flipped[3]["mask"], plain[3]["mask"].flip(-1))


def test_plot(root: Path) -> None:
    import matplotlib.pyplot as plt

    ds = VDD(root, split="val")
    sample = ds[0]
    sample["prediction"] = sample["mask"]
    fig = ds.plot(sample, show_titles=False)
    assert isinstance(fig, Figure)
    plt.close(fig)


def test_unknown_index_value_ignored_when_asked(root: Path) -> None:
    path = VDD(root, split="test").files[0]["mask"]
    raw = np.array(Image.open(path))
    raw[1, 1] = 7
    raw[2, 2] = 200
    Image.fromarray(raw).save(path)
    mask = VDD(root, split="test", unknown_colors="ignore")[0]["mask"]
    assert mask[1, 1] == 255 and mask[2, 2] == 255 and mask[0, 1] == 6
    tiled = VDD(root, split="test", unknown_colors="ignore", tile_size=16)
    assert tiled[0]["mask"][1, 1] == 255


def test_validate_finds_bad_values_and_sizes(root: Path) -> None:
    ds = VDD(root, split="trainval")
    assert ds.validate() == 3
    path = ds.files[1]["mask"]
    raw = np.array(Image.open(path))
    raw[1, 1] = 9
    Image.fromarray(raw).save(path)
    with pytest.raises(InvalidMaskError, match=rf"{path.name}: class value\(s\) \[9\]"):
        ds.validate()
    Image.fromarray(raw[:40] % 7).save(path)
    with pytest.raises(InvalidMaskError, match=rf"{path.name}: mask size 60x40 does not match"):
        ds.validate(progress=True)
