from pathlib import Path

import pytest
import torch

from s5geo.datasets.unlabeled import UnlabeledFolder
from s5geo.errors import DatasetLayoutError

DATA = Path(__file__).resolve().parents[1] / "data"


def test_recursive_folder_with_extension_filter() -> None:
    ds = UnlabeledFolder(DATA / "dubai_aerial", extensions=(".JPG",))
    assert [p["image"].name for p in ds.files] == [
        "image_part_001.jpg",
        "image_part_002.jpg",
        "image_part_001.jpg",
    ]
    sample = ds[0]
    assert set(sample) == {"image"}
    assert sample["image"].dtype == torch.float32 and sample["image"].shape == (3, 40, 48)
    with pytest.raises(DatasetLayoutError, match="no image"):
        UnlabeledFolder(DATA / "dubai_aerial" / "Tile 1", recursive=False)


def test_file_list_and_errors(tmp_path: Path) -> None:
    files = sorted((DATA / "millionseg/unlabeled/RS4P-1M/images").iterdir())
    ds = UnlabeledFolder(files[::-1], transforms=lambda s: {"image": s["image"] / 255})
    assert len(ds) == 4 and ds.files[0]["image"] == files[-1]
    assert ds[0]["image"].max() <= 1
    with pytest.raises(DatasetLayoutError, match="missing"):
        UnlabeledFolder([tmp_path / "none.png"])
    with pytest.raises(DatasetLayoutError, match="no image"):
        UnlabeledFolder(tmp_path)
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        UnlabeledFolder(tmp_path / "nope")
