import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s5geo.datasets.millionseg import MillionSeg
from s5geo.errors import DatasetLayoutError, InvalidMaskError, S5GeoError

ROOT = Path(__file__).resolve().parents[1] / "data" / "millionseg"


def names(ds: MillionSeg) -> list[str]:
    return [r["image"].name for r in ds.files]  # type: ignore[union-attr]


def test_labeled_part() -> None:
    ds = MillionSeg(ROOT, part="labeled")
    assert names(ds) == ["P0000_0_0.png", "P0007_0_1024.png"]
    assert ds.num_classes == 16 and ds.classes[1] == "ship"
    sample = ds[0]
    image, mask = sample["image"], sample["mask"]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert mask.dtype == torch.int64 and mask.shape == (32, 32)
    assert (mask[:2, :2] == 255).all()
    valid = mask != 255
    assert torch.equal(mask[valid], ((image[0][valid] - 5) / 10).long())


def test_unlabeled_and_pseudo_labeled_parts() -> None:
    unlabeled = MillionSeg(ROOT, part="unlabeled")
    assert names(unlabeled) == ["dota_0001.png", "fast_0002.jpg", "sior_0004.png", "star_0003.jpg"]
    assert set(unlabeled[1]) == {"image"}
    pseudo = MillionSeg(ROOT, part="pseudo_labeled")
    assert names(pseudo) == ["dota_0001.png", "star_0003.jpg"]
    assert pseudo[1]["mask"].shape == (24, 24)


def test_manifest_roundtrip(tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    assert MillionSeg.write_manifest(ROOT, out) == 2 + 4
    for part in ("labeled", "unlabeled", "pseudo_labeled"):
        walked = MillionSeg(ROOT, part=part)  # type: ignore[arg-type]
        listed = MillionSeg(ROOT, part=part, manifest=out)  # type: ignore[arg-type]
        assert walked.files == listed.files
    assert torch.equal(
        MillionSeg(ROOT, "pseudo_labeled", manifest=out)[0]["mask"],
        MillionSeg(ROOT, "pseudo_labeled")[0]["mask"],
    )


def test_manifest_is_not_a_directory_walk(tmp_path: Path) -> None:
    # a plain text manifest naming one image is all the dataset sees, even if the folder has more
    text = tmp_path / "list.txt"
    text.write_text("unlabeled/RS4P-1M/images/star_0003.jpg\n\n")
    ds = MillionSeg(ROOT, part="pseudo_labeled", manifest=text)
    assert names(ds) == ["star_0003.jpg"]
    assert ds.files[0]["mask"] == ROOT / "unlabeled/RS4P-1M/masks/star_0003.png"
    assert ds[0]["mask"].shape == (24, 24)
    # a derived mask that does not exist fails clearly when read
    text.write_text("unlabeled/RS4P-1M/images/fast_0002.jpg\n")
    with pytest.raises(DatasetLayoutError, match=r"fast_0002\.png: mask file does not exist"):
        MillionSeg(ROOT, part="pseudo_labeled", manifest=text)[0]
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DatasetLayoutError, match="no unlabeled image"):
        MillionSeg(ROOT, part="unlabeled", manifest=empty)


def test_broken_layouts(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match="Expected layout"):
        MillionSeg(tmp_path, part="labeled")
    shutil.copytree(ROOT / "labeled", tmp_path / "labeled")
    (tmp_path / "labeled/iSAID/masks/P0007_0_1024.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"P0007_0_1024\.png"):
        MillionSeg(tmp_path, part="labeled")
    with pytest.raises(ValueError, match="part"):
        MillionSeg(ROOT, part="test")  # type: ignore[arg-type]


def test_bad_class_and_size(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "labeled", tmp_path / "labeled")
    mask_path = tmp_path / "labeled/iSAID/masks/P0000_0_0.png"
    mask = np.array(Image.open(mask_path))
    mask[5, 5] = 16
    Image.fromarray(mask).save(mask_path)
    with pytest.raises(InvalidMaskError, match=r"\[16\]"):
        MillionSeg(tmp_path)[0]
    mask[5, 5] = 1
    Image.fromarray(mask[:30]).save(mask_path)
    with pytest.raises(InvalidMaskError, match="does not match"):
        MillionSeg(tmp_path)[0]


PUBLISHED = ROOT / "published"
SPLITS = PUBLISHED / "splits"


def test_published_layout_walked() -> None:
    train = MillionSeg(PUBLISHED, part="labeled")
    assert names(train) == ["P0000_0000_crop_0.png", "P0000_0000_crop_1.png", "P0002_0001_crop_0.png"]
    assert train.files[0]["mask"] == PUBLISHED / "labeled/iSAID/train/masks/P0000_0000_crop_0.png"
    val = MillionSeg(PUBLISHED, part="labeled", split="val")
    assert names(val) == ["P0003_0000_crop_0.png"]
    sample = val[0]
    valid = sample["mask"] != 255
    assert sample["image"].shape == (3, 32, 32) and (sample["mask"][:2, :2] == 255).all()
    assert torch.equal(sample["mask"][valid], ((sample["image"][0][valid] - 5) / 10).long())
    assert len(MillionSeg(PUBLISHED, part="unlabeled")) == 3
    sep = MillionSeg(PUBLISHED, part="pseudo_labeled")
    assert names(sep) == ["dota_000001.png", "millionaid_000002.jpg", "star_000003.jpg"]
    assert sep[0]["mask"].max() < 16 and sep.num_classes == 16


def test_published_split_files() -> None:
    # "<image> <mask>" per line, relative to the data root, no final newline
    train = MillionSeg(PUBLISHED, part="labeled", manifest=SPLITS / "labeled/labeled.txt")
    assert train.files == MillionSeg(PUBLISHED, part="labeled").files
    val = MillionSeg(PUBLISHED, part="labeled", split="val", manifest=SPLITS / "val.txt")
    assert val.files == MillionSeg(PUBLISHED, part="labeled", split="val").files
    assert torch.equal(val[0]["mask"], MillionSeg(PUBLISHED, "labeled", split="val")[0]["mask"])
    # "<image>" per line: the pseudo-label path is derived; unlabeled ignores masks
    sep = MillionSeg(PUBLISHED, part="pseudo_labeled", manifest=SPLITS / "unlabeled/RS4P-1M.txt")
    assert sep.files == MillionSeg(PUBLISHED, part="pseudo_labeled").files
    unlabeled = MillionSeg(PUBLISHED, part="unlabeled", manifest="splits/unlabeled/RS4P-1M.txt")
    assert len(unlabeled) == 3 and set(unlabeled[0]) == {"image"}  # manifest found under root


def test_split_file_rows_filtered_by_part_and_split(tmp_path: Path) -> None:
    both = tmp_path / "both.txt"
    both.write_text(
        (SPLITS / "labeled/labeled.txt").read_text()
        + "\n"
        + (SPLITS / "val.txt").read_text()
        + "\n"
        + (SPLITS / "unlabeled/RS4P-1M.txt").read_text()
    )
    assert len(MillionSeg(PUBLISHED, "labeled", manifest=both)) == 3
    assert len(MillionSeg(PUBLISHED, "labeled", manifest=both, split="val")) == 1
    assert len(MillionSeg(PUBLISHED, "unlabeled", manifest=both)) == 3
    with pytest.raises(
        DatasetLayoutError, match=r"belongs to part='labeled', split='train'.*labeled/iSAID/val"
    ):
        MillionSeg(PUBLISHED, "labeled", manifest=SPLITS / "val.txt")


def test_bad_split_file_lines_and_splits(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("a.png a_mask.png extra\n")
    with pytest.raises(S5GeoError, match=r"bad\.txt:1: expected '<image>' or '<image> <mask>'"):
        MillionSeg(PUBLISHED, "labeled", manifest=bad)
    with pytest.raises(S5GeoError, match="split must be one of"):
        MillionSeg(PUBLISHED, "labeled", split="test")  # type: ignore[arg-type]
    with pytest.raises(S5GeoError, match="no 'val' split"):
        MillionSeg(PUBLISHED, "unlabeled", split="val")
    with pytest.raises(DatasetLayoutError, match=r"labeled/iSAID/val/images"):
        MillionSeg(ROOT, "labeled", split="val")  # the flat layout has no val split


def test_published_manifest_roundtrip(tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    assert MillionSeg.write_manifest(PUBLISHED, out) == 3 + 1 + 3
    for part, split in (
        ("labeled", "train"),
        ("labeled", "val"),
        ("unlabeled", "train"),
        ("pseudo_labeled", "train"),
    ):
        walked = MillionSeg(PUBLISHED, part=part, split=split)  # type: ignore[arg-type]
        assert MillionSeg(PUBLISHED, part=part, split=split, manifest=out).files == walked.files  # type: ignore[arg-type]


def test_nested_folders_and_archive_hint(tmp_path: Path) -> None:
    root = tmp_path / "RS4P-1M"
    shutil.copytree(PUBLISHED / "labeled", root / "labeled")
    # images unzipped into a folder of their own name
    images = root / "labeled/iSAID/train/images"
    shutil.move(images, tmp_path / "images")
    images.mkdir()
    shutil.move(tmp_path / "images", images / "images")
    ds = MillionSeg(root, part="labeled")
    assert len(ds) == 3 and ds.files[0]["image"] == images / "images/P0000_0000_crop_0.png"
    assert ds[0]["mask"].shape == (32, 32)
    (root / "unlabeled.zip").write_bytes(b"")
    with pytest.raises(
        DatasetLayoutError, match=r"unlabeled/RS4P-1M/images.*found .*unlabeled\.zip: unpack it"
    ):
        MillionSeg(root, part="unlabeled")
