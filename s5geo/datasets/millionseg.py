"""MillionSeg / RS4P-1M: the S5 pre-training corpus (labeled iSAID crops + ~1M unlabeled images).

Released layout::

    <root>/labeled/iSAID/images/<name>.png        1024-px iSAID crops
    <root>/labeled/iSAID/masks/<name>.png         class indices 0..15 (same stem as the image)
    <root>/unlabeled/RS4P-1M/images/<name>.<ext>  unlabeled images (512-800 px)
    <root>/unlabeled/RS4P-1M/masks/<name>.png     optional pseudo-labels (class indices)

Listing a million files takes a while on network file systems, so the dataset can also read a
manifest (written once with :meth:`MillionSeg.write_manifest`) instead of walking the folders.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Literal

import numpy as np

from s5geo.datasets._base import SegmentationDataset, Transform, check_index_mask, layout_error
from s5geo.datasets._base import read_index_mask as _read_index_mask
from s5geo.datasets.isaid import ISAIDSegmentation
from s5geo.errors import DatasetLayoutError

PathLike = str | os.PathLike[str]
Part = Literal["labeled", "unlabeled", "pseudo_labeled"]

LABELED_DIR = Path("labeled", "iSAID")
UNLABELED_DIR = Path("unlabeled", "RS4P-1M")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MILLIONSEG_LAYOUT = (
    "<root>/labeled/iSAID/{images,masks}/<name>.png and "
    "<root>/unlabeled/RS4P-1M/images/<name>.<ext> [+ masks/<name>.png]"
)
PARTS = ("labeled", "unlabeled", "pseudo_labeled")


def _scan(folder: Path, extensions: tuple[str, ...] | None = None) -> dict[str, str]:
    """Map stem -> file name of the files directly in ``folder`` (one ``scandir``, no stat)."""
    out: dict[str, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if extensions is None or ext.lower() in extensions:
                out[stem] = entry.name
    return out


def _part_dir(part: str) -> Path:
    return LABELED_DIR if part == "labeled" else UNLABELED_DIR


def _mask_for(image: str) -> str:
    """Conventional mask path of an image path: ``.../images/x.jpg`` -> ``.../masks/x.png``."""
    head, name = os.path.split(image)
    parent, folder = os.path.split(head)
    if folder != "images":
        raise DatasetLayoutError(
            f"{image}: cannot derive a mask path (image not in an 'images' folder); "
            "give the manifest as CSV with an image,mask header"
        )
    return os.path.join(parent, "masks", os.path.splitext(name)[0] + ".png")


class MillionSeg(SegmentationDataset):
    """One part of the MillionSeg corpus: ``"labeled"``, ``"unlabeled"`` or ``"pseudo_labeled"``.

    * ``labeled``: iSAID crops with their masks (every image must have one);
    * ``unlabeled``: all RS4P-1M images, samples without ``"mask"``;
    * ``pseudo_labeled``: the RS4P-1M images that have a mask in ``masks/``.

    With ``manifest`` the files come from a list instead of a directory walk, paths relative to
    ``root``; rows under the other part's folder are skipped. Two forms:

    * CSV with an ``image,mask`` header: the mask column is authoritative (empty = no mask), so
      ``pseudo_labeled`` keeps the rows with a mask and ``labeled`` requires one;
    * plain text, one image path per line: for ``labeled``/``pseudo_labeled`` the mask path is
      derived (``.../images/x.*`` -> ``.../masks/x.png``) and only checked when the sample is read.

    ``unlabeled`` ignores masks.

    Example:
        >>> MillionSeg.write_manifest("data/MillionSeg", "rs4p.csv", part="unlabeled")
        >>> ds = MillionSeg("data/MillionSeg", part="unlabeled", manifest="rs4p.csv")
    """

    classes = ISAIDSegmentation.classes
    colors = ISAIDSegmentation.colors

    def __init__(
        self,
        root: PathLike = "data",
        part: Part = "labeled",
        manifest: PathLike | None = None,
        transforms: Transform | None = None,
    ) -> None:
        """Find the files of one part.

        Args:
            root: the MillionSeg (RS4P-1M) folder.
            part: ``"labeled"``, ``"unlabeled"`` or ``"pseudo_labeled"``.
            manifest: optional list of files (see the class docstring); no directory walk then.
            transforms: function applied to each sample.

        Raises:
            DatasetLayoutError: if folders or files are missing, or the manifest is empty.
        """
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, not {part!r}")
        super().__init__(transforms)
        self.root = Path(root)
        self.part = part
        if manifest is not None:
            records = self._read_manifest(Path(manifest))
        else:
            records = self.list_files(self.root, part)
        if not records:
            where = manifest if manifest is not None else self.root / _part_dir(part)
            raise layout_error(where, f"no {part} image found", MILLIONSEG_LAYOUT)
        self.files = [
            {"image": self.root / image, "mask": None if mask is None else self.root / mask}
            for image, mask in records
        ]

    @staticmethod
    def list_files(root: PathLike, part: Part) -> list[tuple[str, str | None]]:
        """Walk the release layout and return ``(image, mask)`` paths relative to ``root``.

        Each folder is read with one ``os.scandir`` (no per-file ``stat``).
        """
        root = Path(root)
        base = _part_dir(part)
        image_dir, mask_dir = root / base / "images", root / base / "masks"
        if not image_dir.is_dir():
            raise layout_error(root, f"missing folder {image_dir}", MILLIONSEG_LAYOUT)
        images = _scan(image_dir, IMAGE_EXTENSIONS)
        if part == "unlabeled":
            return [(str(base / "images" / images[s]), None) for s in sorted(images)]
        if not mask_dir.is_dir():
            if part == "pseudo_labeled":
                return []
            raise layout_error(root, f"missing folder {mask_dir}", MILLIONSEG_LAYOUT)
        masks = _scan(mask_dir, (".png",))
        if part == "labeled":
            missing = sorted(set(images) - set(masks))
            if missing:
                raise layout_error(
                    root,
                    f"{len(missing)} labeled image(s) without a mask, e.g. {images[missing[0]]} "
                    f"(looked for {mask_dir / (missing[0] + '.png')})",
                    MILLIONSEG_LAYOUT,
                )
        return [
            (str(base / "images" / images[s]), str(base / "masks" / masks[s]))
            for s in sorted(images)
            if s in masks
        ]

    @classmethod
    def write_manifest(cls, root: PathLike, out: PathLike, part: Part | Literal["all"] = "all") -> int:
        """Walk the layout once and write a CSV manifest (``image,mask``, relative to ``root``).

        Args:
            root: the MillionSeg folder.
            out: CSV file to write (written to a temporary name, then renamed).
            part: which part to list; ``"all"`` lists the labeled part and every unlabeled image
                (with its mask where one exists).

        Returns:
            Number of rows written.
        """
        if part == "all":
            rows = cls.list_files(root, "labeled")
            with_masks = dict(cls.list_files(root, "pseudo_labeled"))
            rows += [(img, with_masks.get(img)) for img, _ in cls.list_files(root, "unlabeled")]
        else:
            rows = cls.list_files(root, part)
        out = Path(out)
        tmp = out.with_name(out.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image", "mask"])
            writer.writerows((img, mask or "") for img, mask in rows)
        tmp.replace(out)
        return len(rows)

    def _read_manifest(self, path: Path) -> list[tuple[str, str | None]]:
        if not path.is_file():
            raise DatasetLayoutError(f"{path}: manifest file does not exist")
        with open(path, newline="") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        if not lines:
            return []
        is_csv = lines[0].replace(" ", "").lower().startswith("image,mask")
        records: list[tuple[str, str | None]] = []
        if is_csv:
            for row in csv.reader(lines[1:]):
                mask = row[1].strip() if len(row) > 1 and row[1].strip() else None
                records.append((row[0].strip(), mask))
        else:
            records = [(line.strip(), None) for line in lines]
        # Rows under the other part's folder are skipped; rows elsewhere belong to any part.
        other = UNLABELED_DIR if self.part == "labeled" else LABELED_DIR
        records = [(i, m) for i, m in records if Path(i).parts[:2] != other.parts]
        if self.part == "unlabeled":
            return [(image, None) for image, _ in records]
        if not is_csv:
            return [(image, _mask_for(image)) for image, _ in records]
        if self.part == "labeled":
            missing = [image for image, mask in records if mask is None]
            if missing:
                raise DatasetLayoutError(
                    f"{path}: {len(missing)} labeled image(s) without a mask, e.g. {missing[0]}"
                )
        return [(image, mask) for image, mask in records if mask is not None]

    def _load_mask(self, path: Path) -> np.ndarray:
        if not path.is_file():
            raise DatasetLayoutError(
                f"{path}: mask file does not exist. Expected layout: {MILLIONSEG_LAYOUT}"
            )
        return check_index_mask(_read_index_mask(path), self.num_classes, path)
