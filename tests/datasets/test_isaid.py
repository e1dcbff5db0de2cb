import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s5geo.datasets.isaid import ISAIDSegmentation
from s5geo.errors import DatasetLayoutError, InvalidMaskError

ROOT = Path(__file__).resolve().parents[1] / "data" / "isaid"


def test_classes_and_palette() -> None:
    assert len(ISAIDSegmentation.classes) == 16 == len(set(ISAIDSegmentation.colors))
    assert ISAIDSegmentation.classes[0] == "background"
    assert ISAIDSegmentation.colors[0] == (0, 0, 0)
    assert ISAIDSegmentation.classes[15] == "harbor"


def test_whole_images_map_colours_to_classes() -> None:
    ds = ISAIDSegmentation(ROOT, split="train", patch_size=None)
    assert len(ds) == 2
    for i in range(2):
        sample = ds[i]
        image, mask = sample["image"], sample["mask"]
        assert image.dtype == torch.float32 and mask.dtype == torch.int64
        assert image.shape[0] == 3  # the grey image is expanded to 3 bands
        # the generator writes image = 10 * class + 5
        assert torch.equal(mask, ((image[0] - 5) / 10).long())
        assert len(mask.unique()) > 3


def test_patches_cover_edges_and_pad() -> None:
    ds = ISAIDSegmentation(ROOT, split="train", patch_size=32)
    # P0000 is 48 x 70 -> rows [0, 16] x cols [0, 32, 38]; P0001 (20 x 30) -> one padded patch
    assert len(ds) == 6 + 1
    whole = ISAIDSegmentation(ROOT, split="train", patch_size=None)[0]
    last = ds[5]
    assert last["image"].shape == (3, 32, 32)
    assert torch.equal(last["mask"], whole["mask"][16:48, 38:70])
    padded = ds[6]
    assert padded["image"].shape == (3, 32, 32) and padded["mask"].shape == (32, 32)
    assert (padded["mask"][20:, :] == 255).all() and (padded["mask"][:, 30:] == 255).all()
    assert (padded["image"][:, 20:, :] == 0).all()
    assert (padded["mask"][:20, :30] != 255).all()


def test_val_split_and_transforms() -> None:
    ds = ISAIDSegmentation(ROOT, split="val", patch_size=32, transforms=lambda s: {**s, "seen": 1})
    assert len(ds) == 4
    assert ds[0]["seen"] == 1


def test_missing_mask_shows_layout(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "train", tmp_path / "train")
    (tmp_path / "train/Semantic_masks/images/P0001_instance_color_RGB.png").unlink()
    with pytest.raises(DatasetLayoutError, match="Semantic_masks/images/P0000_instance_color_RGB"):
        ISAIDSegmentation(tmp_path, split="train")
    with pytest.raises(DatasetLayoutError, match="Expected layout"):
        ISAIDSegmentation(tmp_path, split="val")


def test_unknown_colour_and_size_mismatch(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "val", tmp_path / "val")
    mask_path = tmp_path / "val/Semantic_masks/images/P0002_instance_color_RGB.png"
    rgb = np.array(Image.open(mask_path))
    rgb[3, 3] = (1, 2, 3)
    Image.fromarray(rgb).save(mask_path)
    with pytest.raises(InvalidMaskError, match="1 pixels have colour"):
        ISAIDSegmentation(tmp_path, split="val", patch_size=None)[0]
    assert ISAIDSegmentation(tmp_path, split="val", patch_size=None, unknown="ignore")[0]["mask"][3, 3] == 255
    rgb[3, 3] = (0, 0, 0)
    Image.fromarray(rgb[:-2]).save(mask_path)
    with pytest.raises(InvalidMaskError, match="does not match"):
        ISAIDSegmentation(tmp_path, split="val", patch_size=32)
    with pytest.raises(InvalidMaskError, match="does not match"):
        ISAIDSegmentation(tmp_path, split="val", patch_size=None)[0]


def test_plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    ds = ISAIDSegmentation(ROOT, split="val", patch_size=None)
    fig = ds.plot(ds[0], suptitle="x")
    assert len(fig.axes) == 2


@pytest.mark.parametrize("layout", ["devkit", "unzipped"])
def test_devkit_and_unzipped_layouts(layout: str) -> None:
    train = ISAIDSegmentation(ROOT / layout, split="train", patch_size=None)
    # instance masks are never listed as images
    assert [r["image"].name for r in train.files] == ["P0002.png", "P0010.png"]  # type: ignore[union-attr]
    assert all(r["mask"].name.endswith("_instance_color_RGB.png") for r in train.files)  # type: ignore[union-attr]
    for i in range(len(train)):
        sample = train[i]
        assert torch.equal(sample["mask"], ((sample["image"][0] - 5) / 10).long())
    val = ISAIDSegmentation(ROOT / layout, split="val", patch_size=32)
    assert len(val) == 2 and val[1]["mask"].shape == (32, 32)


def test_zips_and_duplicates_named(tmp_path: Path) -> None:
    (tmp_path / "train/images").mkdir(parents=True)
    (tmp_path / "train/images/part1.zip").write_bytes(b"")
    with pytest.raises(DatasetLayoutError, match=r"no \.png image below .*found train/images/part1\.zip"):
        ISAIDSegmentation(tmp_path, split="train")
    shutil.copytree(ROOT / "unzipped/train/images", tmp_path / "train/images", dirs_exist_ok=True)
    (tmp_path / "train/Semantic_masks").mkdir()
    (tmp_path / "train/Semantic_masks/images.zip").write_bytes(b"")
    with pytest.raises(DatasetLayoutError, match=r"without a mask.*Semantic_masks/images\.zip"):
        ISAIDSegmentation(tmp_path, split="train")
    shutil.copy(ROOT / "unzipped/train/images/images/P0002.png", tmp_path / "train/images/P0002.png")
    with pytest.raises(DatasetLayoutError, match=r"P0002\.png is found twice"):
        ISAIDSegmentation(tmp_path, split="train")
    (tmp_path / "iSAID_train.zip").write_bytes(b"")
    with pytest.raises(DatasetLayoutError, match=r"missing folder .*val; found iSAID_train\.zip"):
        ISAIDSegmentation(tmp_path, split="val")
