"""iSAID semantic segmentation: RGB-coded masks as the 16 MillionSeg classes, 1024-px patches.

Accepted layouts of a split folder (``train`` or ``val``); the semantic mask of ``P0000.png`` is
``P0000_instance_color_RGB.png`` (class colours), ``P0000_instance_id_RGB.png`` is the instance mask
and is never read::

    official release, unpacked in place (as MMSegmentation expects):
        <root>/train/images/P0000.png
        <root>/train/Semantic_masks/images/P0000_instance_color_RGB.png
    iSAID devkit (masks beside the images):
        <root>/train/images/P0000.png, P0000_instance_color_RGB.png, P0000_instance_id_RGB.png
    zips unpacked into folders of their own (``images/part1.zip`` -> ``images/images/``):
        <root>/train/images/images/P0000.png
        <root>/train/Semantic_masks/images/images/P0000_instance_color_RGB.png

Files are found anywhere up to four folders below the split folder. Mask colours are the iSAID
devkit palette (background black). The images (from DOTA) are large, so by default every image is
cut into 1024 x 1024 patches on a deterministic grid whose last row/column is moved back to end on
the border; images smaller than a patch are padded (image 0, mask 255).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from s5geo.constants import ISAID_CLASSES
from s5geo.datasets._base import Sample, Transform, renamed_argument, rgb_to_index
from s5geo.datasets._layout import ARCHIVE_SUFFIXES
from s5geo.datasets._tiling import TiledSegmentationDataset

PathLike = str | os.PathLike[str]

ISAID_LAYOUT = (
    "<root>/<split>/images/P0000.png and "
    "<root>/<split>/Semantic_masks/images/P0000_instance_color_RGB.png, or the devkit's "
    "<root>/<split>/images/{P0000.png,P0000_instance_color_RGB.png} (split: train, val)"
)

#: Mask file name = image stem + this suffix.
MASK_SUFFIX = "_instance_color_RGB.png"
#: Other per-image files of the release that are not images.
NOT_IMAGES = ("_instance_id_RGB.png", "_instance_color_RGB.png")
#: How deep below the split folder files are looked for.
MAX_DEPTH = 4


def _walk(folder: Path, depth: int = MAX_DEPTH) -> tuple[list[Path], list[Path]]:
    """``.png`` files and archives under ``folder``, at most ``depth`` folders down, sorted."""
    pngs: list[Path] = []
    archives: list[Path] = []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            name = entry.name.lower()
            if entry.is_dir():
                if depth > 0:
                    more = _walk(Path(entry.path), depth - 1)
                    pngs += more[0]
                    archives += more[1]
            elif name.endswith(".png"):
                pngs.append(Path(entry.path))
            elif name.endswith(ARCHIVE_SUFFIXES):
                archives.append(Path(entry.path))
    return pngs, archives


class ISAIDSegmentation(TiledSegmentationDataset):
    """iSAID semantic masks as the 16 MillionSeg classes (background + 15 object classes).

    Example:
        >>> ds = ISAIDSegmentation("data/iSAID", split="train")  # 1024-px patches
        >>> ds = ISAIDSegmentation("data/iSAID", split="val", tile_size=None)  # whole images
    """

    classes = ISAID_CLASSES
    #: The iSAID devkit's mask colours, in the class order above.
    colors = (
        (0, 0, 0),
        (0, 0, 63),
        (0, 63, 63),
        (0, 63, 0),
        (0, 63, 127),
        (0, 63, 191),
        (0, 63, 255),
        (0, 127, 63),
        (0, 127, 127),
        (0, 0, 127),
        (0, 0, 191),
        (0, 0, 255),
        (0, 191, 127),
        (0, 127, 191),
        (0, 127, 255),
        (0, 100, 155),
    )
    splits = ("train", "val")
    expected_layout = ISAID_LAYOUT

    def __init__(
        self,
        root: PathLike | None = None,
        split: str = "train",
        transforms: Transform | None = None,
        tile_size: int | None = 1024,
        **kwargs: Any,
    ) -> None:
        """Find the images and masks of one split.

        Args:
            root: folder holding ``train/`` and ``val/`` (default :attr:`default_root`).
            split: ``"train"`` or ``"val"``.
            transforms: function applied to each sample.
            tile_size: patch side in pixels, or None for whole images.
            **kwargs: :class:`~s5geo.datasets._tiling.TiledSegmentationDataset` arguments
                (``stride``, ``unknown``, ``validate``); ``patch_size`` is the former name of
                ``tile_size`` (deprecated).

        Raises:
            SplitError: if ``split`` is not ``"train"`` or ``"val"``.
            DatasetLayoutError: if the split folder, an image or a mask is missing.
            InvalidMaskError: (when read) on an unknown colour or an image/mask size mismatch.
        """
        tile_size = renamed_argument(kwargs, "patch_size", "tile_size", tile_size)
        super().__init__(root, split, transforms, tile_size, **kwargs)

    def _find_files(self) -> list[dict[str, Path | None]]:
        return self._find(self.root / self.split)

    def _find(self, split_dir: Path) -> list[dict[str, Path | None]]:
        """Pair the images and semantic masks found below ``split_dir`` (see the module docstring)."""
        if not split_dir.is_dir():
            zips = sorted(p.name for p in self.root.glob("*") if p.name.lower().endswith(ARCHIVE_SUFFIXES))
            hint = (
                f"; found {', '.join(zips)} in {self.root}: unpack the split into {split_dir}" if zips else ""
            )
            raise self._layout_error(f"missing folder {split_dir}{hint}")
        pngs, archives = _walk(split_dir)
        images: dict[str, Path] = {}
        masks: dict[str, Path] = {}
        for path in pngs:
            if path.name.endswith(MASK_SUFFIX):
                found, key = masks, path.name[: -len(MASK_SUFFIX)]
            elif path.name.endswith(NOT_IMAGES):
                continue
            else:
                found, key = images, path.stem
            if key in found:
                raise self._layout_error(f"{path.name} is found twice: {found[key]} and {path}; keep one")
            found[key] = path
        unpack = ""
        if archives:
            names = ", ".join(str(p.relative_to(self.root)) for p in archives[:4])
            unpack = (
                f"; found {names}: unzip each into the folder that holds it (unzip -n <zip> -d <its folder>)"
            )
        if not images:
            raise self._layout_error(f"no .png image below {split_dir}{unpack}")
        missing = sorted(set(images) - set(masks))
        if missing:
            first = images[missing[0]]
            semantic = split_dir / "Semantic_masks" / "images"
            looked = (semantic if semantic.is_dir() else first.parent) / (missing[0] + MASK_SUFFIX)
            raise self._layout_error(
                f"{len(missing)} image(s) without a mask, e.g. {first.name} (looked for {looked}){unpack}"
            )
        return [{"image": images[key], "mask": masks[key]} for key in sorted(images)]

    def _finish(self, sample: Sample) -> Sample:
        image = sample["image"]
        # A few DOTA images are grey (1 band) or RGBA; give every sample 3 bands so batches collate.
        if image.shape[0] == 1:
            sample["image"] = image.expand(3, -1, -1).clone()
        elif image.shape[0] > 3:
            sample["image"] = image[:3].clone()
        return super()._finish(sample)

    def _mask_from_array(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return rgb_to_index(raw, self.colors, unknown=self.unknown, path=path)
