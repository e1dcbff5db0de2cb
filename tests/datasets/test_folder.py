import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s5geo.datasets.folder import DUBAI_AERIAL, SegmentationFolder, read_color_mask
from s5geo.errors import DatasetLayoutError, InvalidMaskError

ROOT = Path(__file__).resolve().parents[1] / "data" / "dubai_aerial"
# The reduced copy of the real Dubai set shipped with s5geo (RGB and paletted masks, as released).
REAL_DUBAI = Path(__file__).resolve().parents[2] / "s5geo" / "sample_data" / "dubai_aerial"
COLORS = DUBAI_AERIAL["colors"]
GREY, OTHER = (155, 155, 155), (0, 0, 0)


def expected_mask(mask_path: Path) -> torch.Tensor:
    """Decode a Dubai mask pixel by pixel with a dict (independent of rgb_to_index)."""
    rgb = np.array(Image.open(mask_path).convert("RGB"))
    lookup = {tuple(c): i for i, c in enumerate(COLORS)}
    out = [[lookup.get(tuple(int(v) for v in px), 255) for px in row] for row in rgb]
    return torch.tensor(out, dtype=torch.int64)


def test_dubai_preset_loads_all_tiles_with_real_colours() -> None:
    ds = SegmentationFolder.dubai_aerial(ROOT)
    assert ds.classes == ("building", "land", "road", "vegetation", "water")
    assert [(r["image"].parent.parent.name, r["image"].name) for r in ds.files] == [
        ("Tile 1", "image_part_001.jpg"),
        ("Tile 1", "image_part_002.jpg"),
        ("Tile 2", "image_part_001.jpg"),
    ]
    for i, record in enumerate(ds.files):
        sample = ds[i]
        assert sample["image"].dtype == torch.float32 and sample["image"].shape[0] == 3
        assert sample["mask"].dtype == torch.int64
        assert torch.equal(sample["mask"], expected_mask(record["mask"]))
    # both paletted (Tile 1) and RGB (Tile 2) masks hold the grey and the "other" colour -> 255
    rgb = read_color_mask(ds.files[0]["mask"])
    assert {GREY, OTHER} <= {tuple(int(v) for v in c) for c in rgb.reshape(3, -1).T}
    assert (ds[2]["mask"] == 255).any()


def test_unknown_colour_raises_by_default() -> None:
    with pytest.raises(InvalidMaskError, match="not a class colour"):
        SegmentationFolder(ROOT, classes=DUBAI_AERIAL["classes"], colors=COLORS, ignore_colors=[GREY])[0]


def test_images_masks_dirs_with_suffix_and_index_masks(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "labels").mkdir()
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (16, 20, 3), dtype=np.uint8)).save(
            tmp_path / "imgs" / f"{name}.png"
        )
        mask = rng.integers(0, 3, (16, 20), dtype=np.uint8)
        mask[0, 0] = 255
        Image.fromarray(mask).save(tmp_path / "labels" / f"{name}_label.png")
    ds = SegmentationFolder(
        images=tmp_path / "imgs",
        masks=tmp_path / "labels",
        mask_suffix="_label",
        classes=["x", "y", "z"],
    )
    assert len(ds) == 2 and len(ds.colors) == 3
    raw = np.array(Image.open(tmp_path / "labels/b_label.png"))
    expected = torch.from_numpy(raw.astype(np.int64))
    assert torch.equal(ds[1]["mask"], expected)
    # two-class dataset: value 2 is unknown
    two = dict(images=tmp_path / "imgs", masks=tmp_path / "labels", mask_suffix="_label")
    with pytest.raises(InvalidMaskError, match=r"\[2\]"):
        SegmentationFolder(**two, classes=["x", "y"])[0]  # type: ignore[arg-type]
    lenient = SegmentationFolder(**two, classes=["x", "y"], unknown="ignore")  # type: ignore[arg-type]
    assert torch.equal(lenient[1]["mask"], torch.where(expected == 2, 255, expected))
    # explicit pairs
    pairs = [(tmp_path / "imgs/a.png", tmp_path / "labels/a_label.png")]
    assert len(SegmentationFolder(pairs=pairs, classes=["x", "y", "z"])) == 1


def test_layout_errors(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "Tile 1", tmp_path / "Tile 1")
    (tmp_path / "Tile 1/masks/image_part_002.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"image_part_002.*Expected layout"):
        SegmentationFolder.dubai_aerial(tmp_path)
    shutil.rmtree(tmp_path / "Tile 1/masks")
    with pytest.raises(DatasetLayoutError, match="no sibling folder 'masks'"):
        SegmentationFolder.dubai_aerial(tmp_path)
    with pytest.raises(DatasetLayoutError, match="no image/mask pairs"):
        SegmentationFolder.dubai_aerial((tmp_path / "empty").mkdir() or tmp_path / "empty")
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        SegmentationFolder.dubai_aerial(tmp_path / "nope")
    with pytest.raises(ValueError, match="exactly one"):
        SegmentationFolder(classes=["a"])


def test_size_mismatch(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "Tile 2", tmp_path / "Tile 2")
    mask_path = tmp_path / "Tile 2/masks/image_part_001.png"
    Image.open(mask_path).crop((0, 0, 10, 10)).save(mask_path)
    with pytest.raises(InvalidMaskError, match="does not match"):
        SegmentationFolder.dubai_aerial(tmp_path)[0]


def test_real_dubai_sample() -> None:
    ds = SegmentationFolder.dubai_aerial(REAL_DUBAI)
    assert len(ds) == 72
    for index in (0, 9):  # Tile 1 has RGB masks, Tile 2 paletted ones
        record, sample = ds.files[index], ds[index]
        assert sample["mask"].shape == sample["image"].shape[1:]
        counts = torch.bincount(sample["mask"].flatten(), minlength=256)
        assert counts[:5].sum() > 0.5 * sample["mask"].numel()
        sub = (slice(0, 64), slice(0, 64))
        assert torch.equal(sample["mask"][sub], expected_mask(record["mask"])[sub])
