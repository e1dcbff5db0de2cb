"""Shared reader of the drone benchmarks (UDD6, VDD): ``<split>/src`` images, ``gt`` masks."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from s5geo.datasets._base import check_index_mask, rgb_to_index
from s5geo.datasets._tiling import TiledSegmentationDataset
from s5geo.errors import InvalidMaskError

#: Colours of UDD6's classes (other, facade, road, vegetation, vehicle, roof); VDD adds water.
UDD_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (102, 102, 156),
    (128, 64, 128),
    (107, 142, 35),
    (0, 0, 142),
    (70, 70, 70),
)


class DroneSegmentationDataset(TiledSegmentationDataset):
    """Images in ``<root>/<split>/src/<stem>.JPG`` (or png/tif), masks in ``gt/<stem>.png``.

    A mask may be stored as class indices (1 band, also an 8-bit palette PNG), as grey RGB with
    ``R = G = B = index``, or RGB-coded with :attr:`colors`; all three decode to the same indices.
    Any other value or colour, in index and in RGB masks alike, raises
    :class:`~s5geo.errors.InvalidMaskError` (or becomes 255 with ``unknown="ignore"``).
    ``split="trainval"`` joins train and val where both exist.
    """

    splits: ClassVar[tuple[str, ...]] = ("train", "val", "trainval")
    image_suffixes: ClassVar[tuple[str, ...]] = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
    mask_suffix: ClassVar[str] = ".png"

    @property
    def expected_layout(self) -> str:  # type: ignore[override]
        """The folder layout, for error messages."""
        splits = ",".join(split for split in self.splits if split != "trainval")
        return (
            f"<root>/{{{splits}}}/src/<name>.JPG (RGB image) + "
            f"<root>/{{{splits}}}/gt/<name>.png (mask: class indices or class colours)"
        )

    def _find_files(self) -> list[dict[str, Path | None]]:
        files: list[dict[str, Path | None]] = []
        for part in self._split_parts():
            src = self.root / part / "src"
            gt = self.root / part / "gt"
            for folder in (src, gt):
                if not folder.is_dir():
                    raise self._layout_error(f"folder {folder} is missing")
            images = sorted(
                path
                for path in src.iterdir()
                if path.is_file() and path.suffix.lower() in self.image_suffixes
            )
            if not images:
                raise self._layout_error(f"no images in {src}")
            for image in images:
                mask = gt / f"{image.stem}{self.mask_suffix}"
                if not mask.is_file():
                    raise self._layout_error(f"mask {mask} is missing for image {image}")
                files.append({"image": image, "mask": mask})
        return files

    def _mask_from_array(self, raw: np.ndarray, path: Path) -> np.ndarray:
        if raw.shape[0] == 1:
            return check_index_mask(raw[0], self.num_classes, path, unknown=self.unknown)
        if raw.shape[0] not in (3, 4):
            raise InvalidMaskError(f"{path}: expected a 1-, 3- or 4-band mask, found {raw.shape[0]}")
        rgb = raw[:3]
        grey = (rgb[0] == rgb[1]).all() and (rgb[1] == rgb[2]).all()
        if grey and rgb[0].max(initial=0) < self.num_classes:
            return rgb[0].astype(np.uint8)
        return rgb_to_index(rgb, self.colors, unknown=self.unknown, path=path)
