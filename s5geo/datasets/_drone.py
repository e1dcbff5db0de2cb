"""Shared reader of the drone benchmarks (UDD6, VDD): ``<split>/src`` images, ``gt`` masks."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from s5geo.datasets._base import Transform, check_index_mask, layout_error, rgb_to_index
from s5geo.datasets._tiling import TiledSegmentationDataset
from s5geo.errors import InvalidMaskError


class DroneSegmentationDataset(TiledSegmentationDataset):
    """Images in ``<root>/<split>/src/<stem>.JPG`` (or png/tif), masks in ``gt/<stem>.png``.

    A mask may be stored as class indices (1 band, also an 8-bit palette PNG), as grey RGB with
    ``R = G = B = index``, or RGB-coded with :attr:`colors`; all three decode to the same indices.
    Any other value or colour, in index and in RGB masks alike, raises
    :class:`~s5geo.errors.InvalidMaskError` (or becomes 255 with ``unknown_colors="ignore"``).
    ``split="trainval"`` joins train and val where both exist.
    """

    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    image_suffixes: ClassVar[tuple[str, ...]] = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
    mask_suffix: ClassVar[str] = ".png"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        transforms: Transform | None = None,
        tile_size: int | None = None,
        stride: int | None = None,
        unknown_colors: Literal["error", "ignore"] = "error",
    ) -> None:
        """Open the dataset.

        Args:
            root: the release folder (default :attr:`default_root`).
            split: one of :attr:`splits`, or ``"trainval"``.
            transforms: function applied to each sample dict.
            tile_size: serve ``tile_size`` px windows instead of whole images.
            stride: step of the window grid (default ``tile_size``).
            unknown_colors: ``"error"`` (default) or ``"ignore"`` (map to 255) for unknown mask
                colours.

        Raises:
            DatasetLayoutError: if a folder, an image or its mask is missing.
        """
        super().__init__(transforms, tile_size, stride)
        allowed = (*self.splits, "trainval") if {"train", "val"} <= set(self.splits) else self.splits
        self._open_release(root, split, allowed, unknown_colors)
        for part in ("train", "val") if split == "trainval" else (split,):
            self._add_split(part)
        self._build_tiles()

    @property
    def expected_layout(self) -> str:
        """The folder layout, for error messages."""
        splits = ",".join(self.splits)
        return (
            f"<root>/{{{splits}}}/src/<name>.JPG (RGB image) + "
            f"<root>/{{{splits}}}/gt/<name>.png (mask: class indices or class colours)"
        )

    def _add_split(self, part: str) -> None:
        src = self.root / part / "src"
        gt = self.root / part / "gt"
        for folder in (src, gt):
            if not folder.is_dir():
                raise layout_error(self.root, f"folder {folder} is missing", self.expected_layout)
        images = sorted(
            path for path in src.iterdir() if path.is_file() and path.suffix.lower() in self.image_suffixes
        )
        if not images:
            raise layout_error(self.root, f"no images in {src}", self.expected_layout)
        for image in images:
            mask = gt / f"{image.stem}{self.mask_suffix}"
            if not mask.is_file():
                raise layout_error(
                    self.root, f"mask {mask} is missing for image {image}", self.expected_layout
                )
            self.files.append({"image": image, "mask": mask})

    def _mask_from_array(self, raw: np.ndarray, path: Path) -> np.ndarray:
        if raw.shape[0] == 1:
            return check_index_mask(raw[0], self.num_classes, path, unknown=self.unknown_colors)
        if raw.shape[0] not in (3, 4):
            raise InvalidMaskError(f"{path}: expected a 1-, 3- or 4-band mask, found {raw.shape[0]}")
        rgb = raw[:3]
        grey = (rgb[0] == rgb[1]).all() and (rgb[1] == rgb[2]).all()
        if grey and rgb[0].max(initial=0) < self.num_classes:
            return rgb[0].astype(np.uint8)
        return rgb_to_index(rgb, self.colors, unknown=self.unknown_colors, path=path)
