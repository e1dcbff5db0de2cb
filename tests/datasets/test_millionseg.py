import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s5geo.datasets.millionseg import MillionSeg
from s5geo.errors import DatasetLayoutError, InvalidMaskError

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
