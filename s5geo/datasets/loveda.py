"""LoveDA in the S5 setting: 7 classes, no-data ignored."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torchgeo.datasets import DatasetNotFoundError
from torchgeo.datasets import LoveDA as TorchGeoLoveDA

from s5geo.datasets._base import IGNORE_INDEX
from s5geo.datasets._layout import archive_hint, extraction_pending, safe_extract
from s5geo.datasets._tiling import TiledSegmentationDataset
from s5geo.errors import InvalidMaskError, S5GeoError

EXPECTED_LAYOUT = (
    "<root>/{Train,Val,Test}/{Urban,Rural}/images_png/<n>.png (RGB) + "
    "<root>/{Train,Val}/{Urban,Rural}/masks_png/<n>.png (class values 0-7, 0 = no-data)"
)


class LoveDA(TiledSegmentationDataset):
    """LoveDA land-cover benchmark (0.3 m, 1024 x 1024 px, urban and rural scenes), S5 setting.

    File handling is TorchGeo's :class:`~torchgeo.datasets.LoveDA`: the extracted ``Train.zip``,
    ``Val.zip`` and ``Test.zip`` of the Zenodo release, i.e. ``<root>/Train/Urban/images_png/*.png``
    with the masks beside them in ``masks_png`` (the test split has no masks; its samples carry no
    ``"mask"``). ``split="trainval"`` joins train and val, the set S5 fine-tunes on (4191 images).
    A release zip (``<root>/Train.zip``) whose folder is missing is extracted into ``root`` on first
    use, never overwriting a file; a zip unpacked into a folder of its own (``Train/Train/Urban``)
    is read where it is.

    Mask mapping: raw 0 (no-data) -> 255 (ignored), raw 1..7 -> 0..6 for background, building, road,
    water, barren, forest, agriculture. A raw value above 7 raises
    :class:`~s5geo.errors.InvalidMaskError`. Colours are those of the official LoveDA visualisation.
    """

    classes: ClassVar[tuple[str, ...]] = (
        "background",
        "building",
        "road",
        "water",
        "barren",
        "forest",
        "agriculture",
    )
    colors: ClassVar[tuple[tuple[int, int, int], ...]] = (
        (255, 255, 255),
        (255, 0, 0),
        (255, 255, 0),
        (0, 0, 255),
        (159, 129, 183),
        (0, 255, 0),
        (255, 195, 128),
    )
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test", "trainval")
    scenes: ClassVar[tuple[str, ...]] = ("urban", "rural")
    #: Raw mask value -> class index (0 = no-data -> ignore).
    lut: ClassVar[np.ndarray] = np.array([IGNORE_INDEX, 0, 1, 2, 3, 4, 5, 6], dtype=np.uint8)

    default_root: ClassVar[str] = "data/loveda"
    expected_layout: ClassVar[str] = EXPECTED_LAYOUT

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        *,
        scene: Sequence[str] = ("urban", "rural"),
        **kwargs: Any,
    ) -> None:
        """Open the dataset.

        Args:
            root: folder holding ``Train/``, ``Val/`` and ``Test/`` (default :attr:`default_root`).
            split: ``"train"``, ``"val"``, ``"test"`` or ``"trainval"``.
            scene: ``"urban"``, ``"rural"`` or both.
            **kwargs: :class:`~s5geo.datasets._tiling.TiledSegmentationDataset` arguments
                (``transforms``, ``tile_size``, ``stride``, ``unknown``, ``validate``).

        Raises:
            DatasetLayoutError: if the scene folders, images or masks are missing.
        """
        scene = [scene] if isinstance(scene, str) else list(scene)
        if not scene or any(name not in self.scenes for name in scene):
            raise S5GeoError(f"LoveDA: scene must be taken from {self.scenes}, got {scene}")
        self.scene = tuple(scene)
        super().__init__(root, split, **kwargs)

    def _find_files(self) -> list[dict[str, Path | None]]:
        files: list[dict[str, Path | None]] = []
        for part in self._split_parts():
            base = self._part_root(part)
            try:
                found = TorchGeoLoveDA(root=os.fspath(base), split=part, scene=list(self.scene))
            except DatasetNotFoundError as error:
                folders = ", ".join(f"{part.capitalize()}/{name.capitalize()}" for name in self.scene)
                hint = archive_hint([self.root], self.root)
                raise self._layout_error(f"missing folder(s) {folders}{hint}") from error
            if not found.files:
                raise self._layout_error(f"no {part} images found")
            for record in found.files:
                mask = Path(record["mask"]) if "mask" in record else None
                if mask is not None and not mask.exists():
                    raise self._layout_error(f"mask {mask} is missing for image {record['image']}")
                files.append({"image": Path(record["image"]), "mask": mask})
        return files

    def _part_root(self, part: str) -> Path:
        """Folder holding ``<Part>/<Scene>``: ``root``, after extracting ``<Part>.zip`` if needed."""
        name = part.capitalize()
        scene_dirs = [self.root / name / scene.capitalize() for scene in self.scene]
        archive = self.root / f"{name}.zip"
        complete = all(d.is_dir() for d in scene_dirs)
        if archive.is_file() and (not complete or extraction_pending(archive, self.root)):
            safe_extract(archive, self.root)
        elif not complete and all((self.root / name / d.relative_to(self.root)).is_dir() for d in scene_dirs):
            return self.root / name  # unzipped into a folder of its own: <root>/Train/Train/Urban
        return self.root

    def _mask_from_array(self, raw: np.ndarray, path: Path) -> np.ndarray:
        if raw.shape[0] != 1:
            raise InvalidMaskError(f"{path}: expected a 1-band mask, found {raw.shape[0]} bands")
        values = raw[0]
        if values.max(initial=0) >= len(self.lut):
            outside = values >= len(self.lut)
            if self.unknown == "ignore":
                return np.where(outside, IGNORE_INDEX, self.lut[np.where(outside, 0, values)]).astype(
                    np.uint8
                )
            bad = np.unique(values[outside]).tolist()
            raise InvalidMaskError(f"{path}: mask value(s) {bad} outside 0..7 (0 = no-data)")
        return self.lut[values]
