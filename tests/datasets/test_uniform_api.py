"""The argument names, split errors and mask validation that every dataset shares."""

import inspect
import shutil
from pathlib import Path

import numpy as np
import pytest
from _dataset_helpers import DATA, copy_archives, copy_release
from PIL import Image

from s5geo.datasets import (
    UDD6,
    VDD,
    ISAIDSegmentation,
    LoveDA,
    MillionSeg,
    OpenEarthMap,
    Potsdam,
    SegmentationFolder,
    Vaihingen,
)
from s5geo.datasets._tiling import TiledSegmentationDataset
from s5geo.errors import InvalidMaskError, S5GeoError, SplitError

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*tile\\(s\\) missing:UserWarning"),
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]

BENCHMARKS = [UDD6, VDD, ISAIDSegmentation, LoveDA, OpenEarthMap, Potsdam, Vaihingen]
UNIFORM = ("root", "split", "transforms", "tile_size", "stride", "unknown", "validate")


def release(cls: type, tmp_path: Path) -> Path:
    """A copy of the fake release of ``cls`` in ``tmp_path``."""
    name = cls.__name__.lower().replace("segmentation", "")
    if cls in (Potsdam, Vaihingen):
        return copy_archives(name, tmp_path)
    return copy_release(name, tmp_path)


@pytest.mark.parametrize("cls", BENCHMARKS, ids=lambda c: c.__name__)
def test_benchmarks_share_the_argument_names(cls: type) -> None:
    assert issubclass(cls, TiledSegmentationDataset)
    names = inspect.signature(TiledSegmentationDataset.__init__).parameters
    assert all(name in names for name in UNIFORM)
    own = inspect.signature(cls.__init__).parameters
    assert list(own)[1:3] == ["root", "split"]
    assert "patch_size" not in own


@pytest.mark.parametrize("cls", BENCHMARKS, ids=lambda c: c.__name__)
def test_bad_split_is_one_error_type(cls: type, tmp_path: Path) -> None:
    with pytest.raises(SplitError, match=rf"{cls.__name__}: split must be one of .*got 'nope'") as caught:
        cls(release(cls, tmp_path), split="nope")
    assert isinstance(caught.value, S5GeoError) and isinstance(caught.value, ValueError)


def test_millionseg_bad_split_and_part() -> None:
    root = DATA / "millionseg"
    for kwargs in ({"split": "test"}, {"part": "all"}, {"part": "unlabeled", "split": "val"}):
        with pytest.raises(SplitError):
            MillionSeg(root, **kwargs)  # type: ignore[arg-type]


def test_former_argument_names_still_work(tmp_path: Path) -> None:
    root = release(UDD6, tmp_path)
    with pytest.deprecated_call():
        old = UDD6(root, split="val", unknown_colors="ignore")
    assert old.unknown == "ignore"
    with pytest.deprecated_call():
        whole = ISAIDSegmentation(DATA / "isaid", split="val", patch_size=None)
    assert whole.tile_size is None and len(whole) == len(whole.files)


def corrupt_value(path: Path, value: int) -> None:
    raw = np.array(Image.open(path))
    raw[1, 1] = value
    Image.fromarray(raw).save(path)


def test_validate_checks_values_and_sizes_at_construction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = release(VDD, tmp_path)
    ds = VDD(root, split="trainval", validate=True)
    assert "checking masks" in capsys.readouterr().err
    path = ds.files[1]["mask"]
    corrupt_value(path, 9)
    VDD(root, split="trainval")  # not checked unless asked
    with pytest.raises(
        InvalidMaskError, match=rf"^\S*{path.name}: class value\(s\) \[9\] outside 0..6[^\n]*$"
    ):
        VDD(root, split="trainval", validate=True)
    # a value outside the classes is accepted when unknown values are ignored
    VDD(root, split="trainval", validate=True, unknown="ignore")
    Image.fromarray(np.array(Image.open(path))[:40] % 7).save(path)
    with pytest.raises(InvalidMaskError, match=rf"{path.name}: mask size 60x40 does not match image"):
        VDD(root, split="trainval", validate=True)


def test_validate_on_corpus_and_user_folders(tmp_path: Path) -> None:
    root = tmp_path / "millionseg"
    shutil.copytree(DATA / "millionseg", root, ignore=shutil.ignore_patterns("*.py"))
    assert len(MillionSeg(root, part="labeled", validate=True)) == 2
    mask = sorted((root / "labeled" / "iSAID" / "masks").iterdir())[0]
    corrupt_value(mask, 40)
    with pytest.raises(InvalidMaskError, match=rf"{mask.name}: class value\(s\) \[40\] outside 0..15"):
        MillionSeg(root, part="labeled", validate=True)
    images = root / "labeled" / "iSAID" / "images"
    folder = SegmentationFolder(images=images, masks=mask.parent, classes=MillionSeg.classes)
    with pytest.raises(InvalidMaskError, match=mask.name):
        folder.validate()
    with pytest.raises(InvalidMaskError, match=mask.name):
        SegmentationFolder(images=images, masks=mask.parent, classes=MillionSeg.classes, validate=True)
