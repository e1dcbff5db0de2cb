"""iSAID semantic segmentation: RGB-coded masks as the 16 MillionSeg classes, 1024-px patches.

Layout of the official release (the semantic masks come as ``Semantic_masks/images.zip``, the images
as ``images/part*.zip``; unpacked in place, as the iSAID devkit and MMSegmentation expect)::

    <root>/train/images/P0000.png
    <root>/train/Semantic_masks/images/P0000_instance_color_RGB.png
    <root>/val/images/P0003.png
    <root>/val/Semantic_masks/images/P0003_instance_color_RGB.png

Mask colours are the iSAID devkit palette (background black). The images (from DOTA) are large,
so by default every image is cut into 1024 x 1024 patches on a deterministic grid whose last
row/column is moved back to end on the border; images smaller than a patch are padded (image 0,
mask 255).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from s5geo.datasets._base import Sample, Transform, layout_error, rgb_to_index
from s5geo.datasets._tiling import TiledSegmentationDataset
from s5geo.errors import S5GeoError

PathLike = str | os.PathLike[str]

ISAID_LAYOUT = (
    "<root>/<split>/images/P0000.png and "
    "<root>/<split>/Semantic_masks/images/P0000_instance_color_RGB.png (split: train, val)"
)

#: Mask file name = image stem + this suffix.
MASK_SUFFIX = "_instance_color_RGB.png"


class ISAIDSegmentation(TiledSegmentationDataset):
    """iSAID semantic masks as the 16 MillionSeg classes (background + 15 object classes).

    Example:
        >>> ds = ISAIDSegmentation("data/iSAID", split="train")  # 1024-px patches
        >>> ds = ISAIDSegmentation("data/iSAID", split="val", patch_size=None)  # whole images
    """

    classes = (
        "background",
        "ship",
        "storage_tank",
        "baseball_diamond",
        "tennis_court",
        "basketball_court",
        "ground_track_field",
        "bridge",
        "large_vehicle",
        "small_vehicle",
        "helicopter",
        "swimming_pool",
        "roundabout",
        "soccer_ball_field",
        "plane",
        "harbor",
    )
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

    def __init__(
        self,
        root: PathLike = "data",
        split: Literal["train", "val"] = "train",
        patch_size: int | None = 1024,
        stride: int | None = None,
        unknown: Literal["error", "ignore"] = "error",
        transforms: Transform | None = None,
    ) -> None:
        """Find the images and masks of one split.

        Args:
            root: folder holding ``train/`` and ``val/``.
            split: ``"train"`` or ``"val"``.
            patch_size: patch side in pixels, or None for whole images.
            stride: step between patches (default: ``patch_size``, no overlap).
            unknown: a mask colour outside the palette raises (``"error"``) or becomes 255.
            transforms: function applied to each sample.

        Raises:
            S5GeoError: if ``split`` is not ``"train"`` or ``"val"``.
            DatasetLayoutError: if the split folder, an image or a mask is missing.
            InvalidMaskError: (when read) on an unknown colour or an image/mask size mismatch.
        """
        if split not in self.splits:
            raise S5GeoError(f"ISAIDSegmentation: split must be one of {self.splits}, got {split!r}")
        super().__init__(transforms, tile_size=patch_size, stride=stride)
        self.root = Path(root)
        self.split = split
        self.unknown = unknown
        image_dir = self.root / split / "images"
        mask_dir = self.root / split / "Semantic_masks" / "images"
        for folder in (image_dir, mask_dir):
            if not folder.is_dir():
                raise layout_error(self.root, f"missing folder {folder}", ISAID_LAYOUT)
        masks = {e.name for e in os.scandir(mask_dir) if e.name.endswith(MASK_SUFFIX)}
        images = sorted(
            Path(e.path) for e in os.scandir(image_dir) if e.name.lower().endswith(".png") and e.is_file()
        )
        if not images:
            raise layout_error(self.root, f"no .png image in {image_dir}", ISAID_LAYOUT)
        missing = [p for p in images if p.stem + MASK_SUFFIX not in masks]
        if missing:
            raise layout_error(
                self.root,
                f"{len(missing)} image(s) without a mask, e.g. {missing[0].name} "
                f"(looked for {mask_dir / (missing[0].stem + MASK_SUFFIX)})",
                ISAID_LAYOUT,
            )
        self.files = [{"image": p, "mask": mask_dir / (p.stem + MASK_SUFFIX)} for p in images]
        self._build_tiles()

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
