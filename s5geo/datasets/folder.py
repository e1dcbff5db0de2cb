"""Users' own labelled data: a folder of images and a folder of masks, matched by file stem.

Images are any rasterio-readable files. Masks hold class indices (one band) or RGB colours
(three bands, or a paletted PNG) decoded through a colour map.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from s5geo.datasets._base import (
    IGNORE_INDEX,
    SegmentationDataset,
    Transform,
    check_index_mask,
    layout_error,
    read_index_mask,
    rgb_to_index,
)
from s5geo.errors import DatasetLayoutError, InvalidMaskError, S5GeoError
from s5geo.metadata import default_colors

PathLike = str | os.PathLike[str]
Color = tuple[int, int, int]

IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".bmp", ".img", ".vrt")
MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".gif")

#: Dubai aerial imagery (Humans in the Loop, CC0): real mask colours (the ones in its
#: classes.json are wrong). Unlabeled grey and any other colour (about 0.6% of pixels) are
#: ignored.
DUBAI_AERIAL: dict[str, Any] = {
    "classes": ("building", "land", "road", "vegetation", "water"),
    "colors": ((60, 16, 152), (132, 41, 246), (110, 193, 228), (254, 221, 58), (226, 169, 41)),
    "ignore_colors": ((155, 155, 155),),
    "unknown": "ignore",
}

FOLDER_LAYOUT = (
    "<root>/[**/]images/<name>.<ext> with masks in the sibling folder "
    "<root>/[**/]masks/<name>[suffix].<ext> "
    "(or images=<dir or files>, masks=<dir or files>, or pairs=[(image, mask), ...])"
)


def read_color_mask(path: PathLike) -> np.ndarray:
    """Read an RGB-coded mask as a ``3 x H x W`` uint8 array; paletted PNG/TIFF masks are expanded.

    Raises:
        S5GeoError: if the file cannot be read.
        InvalidMaskError: if it holds neither three bands nor a palette.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.count == 1 and src.colorinterp[0] == ColorInterp.palette:
                    index = src.read(1)
                    lut = np.zeros((max(256, int(index.max()) + 1), 3), dtype=np.uint8)
                    for value, rgba in src.colormap(1).items():
                        lut[value] = rgba[:3]
                    return np.moveaxis(lut[index], -1, 0)
                if src.count < 3:
                    raise InvalidMaskError(
                        f"{path}: expected an RGB-coded mask (3 bands or a palette), "
                        f"found {src.count} band(s)"
                    )
                return src.read([1, 2, 3])
    except RasterioIOError as error:
        raise S5GeoError(f"{path}: cannot read raster ({error})") from error


def _band_count(path: PathLike) -> tuple[int, bool]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(path) as src:
                return src.count, src.colorinterp[0] == ColorInterp.palette
        except RasterioIOError as error:
            raise S5GeoError(f"{path}: cannot read raster ({error})") from error


def _list_files(folder: Path, extensions: Sequence[str], recursive: bool = False) -> list[Path]:
    exts = {e.lower() for e in extensions}
    walker: Iterable[Path] = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in walker if p.is_file() and p.suffix.lower() in exts)


def _stem(path: Path, suffix: str = "") -> str:
    stem = path.stem
    return stem[: -len(suffix)] if suffix and stem.endswith(suffix) else stem


class SegmentationFolder(SegmentationDataset):
    """Images and masks from the user's own folders, matched by file stem.

    Three ways to say where the files are:

    * ``root``: every folder named ``image_dir`` under ``root`` (``root`` itself included,
      searched recursively) is paired with its sibling folder ``mask_dir``, e.g.
      ``<root>/Tile 1/images`` with ``<root>/Tile 1/masks``;
    * ``images`` and ``masks``: two folders (or two lists of files), matched by stem;
    * ``pairs``: an explicit list of ``(image, mask)`` paths.

    A mask belongs to an image if its stem equals the image stem plus ``mask_suffix``
    (e.g. ``"_label"``). Masks hold class indices ``0..len(classes)-1`` (255 = ignore), or RGB
    colours when ``colors`` is given and the mask has three bands or a palette
    (``mask_format="auto"``).

    Example:
        >>> ds = SegmentationFolder("data/mine", classes=["tree", "road"],
        ...                         colors=[(0, 255, 0), (9, 9, 9)])
        >>> ds = SegmentationFolder.dubai_aerial("../shared/data/dubai-aerial")
    """

    def __init__(
        self,
        root: PathLike | None = None,
        *,
        classes: Sequence[str],
        colors: Sequence[Sequence[int]] | None = None,
        ignore_colors: Sequence[Sequence[int]] = (),
        unknown: Literal["error", "ignore"] = "error",
        mask_format: Literal["auto", "index", "rgb"] = "auto",
        images: PathLike | Sequence[PathLike] | None = None,
        masks: PathLike | Sequence[PathLike] | None = None,
        pairs: Sequence[tuple[PathLike, PathLike]] | None = None,
        image_dir: str = "images",
        mask_dir: str = "masks",
        mask_suffix: str = "",
        image_extensions: Sequence[str] = IMAGE_EXTENSIONS,
        mask_extensions: Sequence[str] = MASK_EXTENSIONS,
        transforms: Transform | None = None,
        validate: bool = False,
    ) -> None:
        """Find the image/mask pairs.

        Args:
            root: folder searched for ``image_dir``/``mask_dir`` sibling folders.
            classes: class names; class ``i`` is mask value ``i`` (or colour ``colors[i]``).
            colors: colour of each class; needed for RGB masks, used for plotting otherwise.
            ignore_colors: mask colours that mean "no label" (become 255).
            unknown: ``"error"`` raises on a colour in neither list, ``"ignore"`` maps it to 255.
            mask_format: ``"index"``, ``"rgb"``, or ``"auto"`` (RGB when ``colors`` is given and
                the mask has three bands or a palette).
            images: folder or list of image files (with ``masks``), instead of ``root``.
            masks: folder or list of mask files, matched to ``images`` by stem.
            pairs: explicit ``(image, mask)`` pairs, instead of ``root``/``images``.
            image_dir: name of the image folders under ``root``.
            mask_dir: name of the mask folders under ``root``.
            mask_suffix: the mask stem is the image stem plus this suffix.
            image_extensions: image file extensions considered in folders.
            mask_extensions: mask file extensions considered in folders.
            transforms: function applied to each sample.
            validate: check every mask's values and size now, with a progress bar (see
                :meth:`~s5geo.datasets._base.SegmentationDataset.validate`).

        Raises:
            DatasetLayoutError: if no pairs are found or an image has no mask.
            InvalidMaskError: with ``validate=True``, naming the first bad mask.
            ValueError: on inconsistent arguments.
        """
        super().__init__(transforms)
        if not classes:
            raise ValueError("classes must name at least one class")
        if len(classes) > IGNORE_INDEX:
            raise ValueError(f"at most {IGNORE_INDEX} classes are supported (255 is ignore)")
        if colors is not None and len(colors) != len(classes):
            raise ValueError(f"got {len(colors)} colours for {len(classes)} classes")
        if mask_format == "rgb" and colors is None:
            raise ValueError("mask_format='rgb' needs colors")
        if unknown not in ("error", "ignore"):
            raise ValueError(f"unknown must be 'error' or 'ignore', not {unknown!r}")
        if sum(x is not None for x in (root, images, pairs)) != 1:
            raise ValueError("give exactly one of root, images (+ masks) or pairs")
        self.classes = tuple(classes)  # type: ignore[misc]
        self.colors = (  # type: ignore[misc]
            tuple(tuple(int(v) for v in c) for c in colors)
            if colors is not None
            else default_colors(len(classes))
        )
        self._decode_rgb = colors is not None and mask_format != "index"
        self._force_rgb = mask_format == "rgb"
        self.ignore_colors = tuple(tuple(int(v) for v in c) for c in ignore_colors)
        self.unknown = unknown
        self.mask_suffix = mask_suffix
        self.image_extensions = tuple(image_extensions)
        self.mask_extensions = tuple(mask_extensions)

        if pairs is not None:
            found = [(Path(i), Path(m)) for i, m in pairs]
            where: PathLike = "pairs"
        elif images is not None:
            if masks is None:
                raise ValueError("images needs masks (UnlabeledFolder reads images alone)")
            found = self._match(
                self._as_files(images, image_extensions), self._as_files(masks, mask_extensions), str(images)
            )
            where = images if isinstance(images, str | os.PathLike) else "images"
        else:
            found = self._scan_root(Path(root), image_dir, mask_dir)  # type: ignore[arg-type]
            where = root  # type: ignore[assignment]
        if not found:
            raise layout_error(where, "no image/mask pairs found", FOLDER_LAYOUT)
        for image, mask in found:
            for path in (image, mask):
                if not path.is_file():
                    raise layout_error(where, f"missing file {path}", FOLDER_LAYOUT)
        self.files = [{"image": i, "mask": m} for i, m in found]
        if validate:
            self.validate(progress=True)

    @classmethod
    def dubai_aerial(cls, root: PathLike, **kwargs: Any) -> SegmentationFolder:
        """The Dubai aerial imagery release: ``<root>/Tile N/{images/*.jpg, masks/*.png}``."""
        options = {**DUBAI_AERIAL, **kwargs}
        return cls(root, **options)

    @staticmethod
    def _as_files(source: PathLike | Sequence[PathLike], extensions: Sequence[str]) -> list[Path]:
        if isinstance(source, str | os.PathLike):
            folder = Path(source)
            if not folder.is_dir():
                raise layout_error(folder, "folder does not exist", FOLDER_LAYOUT)
            return _list_files(folder, extensions)
        return [Path(p) for p in source]

    def _match(self, images: list[Path], masks: list[Path], where: str) -> list[tuple[Path, Path]]:
        by_stem: dict[str, Path] = {}
        for mask in masks:
            stem = _stem(mask, self.mask_suffix)
            if stem in by_stem:
                raise DatasetLayoutError(f"{mask}: two masks for image stem {stem!r} ({by_stem[stem]})")
            by_stem[stem] = mask
        missing = [image for image in images if image.stem not in by_stem]
        if missing:
            raise layout_error(
                where,
                f"{len(missing)} image(s) without a mask, e.g. {missing[0]} "
                f"(looked for {missing[0].stem}{self.mask_suffix}.<ext>)",
                FOLDER_LAYOUT,
            )
        return [(image, by_stem[image.stem]) for image in images]

    def _scan_root(self, root: Path, image_dir: str, mask_dir: str) -> list[tuple[Path, Path]]:
        if not root.is_dir():
            raise layout_error(root, "folder does not exist", FOLDER_LAYOUT)
        image_dirs = [root] if root.name == image_dir else []
        image_dirs += sorted(p for p in root.rglob(image_dir) if p.is_dir())
        pairs: list[tuple[Path, Path]] = []
        for folder in image_dirs:
            masks_folder = folder.parent / mask_dir
            if not masks_folder.is_dir():
                raise layout_error(root, f"{folder} has no sibling folder {mask_dir!r}", FOLDER_LAYOUT)
            pairs += self._match(
                _list_files(folder, self.image_extensions),
                _list_files(masks_folder, self.mask_extensions),
                str(folder),
            )
        return pairs

    def _load_mask(self, path: Path) -> np.ndarray:
        if self._decode_rgb:
            bands, paletted = _band_count(path)
            if self._force_rgb or bands >= 3 or paletted:
                return rgb_to_index(
                    read_color_mask(path),
                    self.colors,
                    ignore_colors=self.ignore_colors,
                    unknown=self.unknown,
                    path=path,
                )
        mask = read_index_mask(path)
        if self.unknown == "ignore":
            return np.where((mask < self.num_classes) | (mask == IGNORE_INDEX), mask, IGNORE_INDEX)
        return check_index_mask(mask, self.num_classes, path)
