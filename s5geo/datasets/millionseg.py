"""MillionSeg / RS4P-1M: the S5 pre-training corpus (labeled iSAID crops + ~1M unlabeled images).

Layout of the authors' release (RS4P-1M), as their split files name it::

    <root>/labeled/iSAID/train/images/<name>.png   1024-px iSAID crops (validation: val/)
    <root>/labeled/iSAID/train/masks/<name>.png    class indices 0..15 (same stem as the image)
    <root>/unlabeled/RS4P-1M/images/<name>.<ext>   unlabeled images (512-800 px)
    <root>/unlabeled/RS4P-1M/masks/<name>.png      pseudo-labels (class indices), for SEP

``labeled/iSAID/{images,masks}`` without the split folder is read as the training split, and image
or mask folders unpacked into a folder of their own name (``images/images/x.png``) are found.

Listing a million files takes a while on network file systems, so the dataset can also read a
manifest instead of walking the folders: the authors' split files
(``splits/labeled/labeled.txt``, ``splits/val.txt``, ``splits/unlabeled/RS4P-1M.txt``: one sample
per line, ``<image>`` or ``<image> <mask>``, relative to the data root) or a CSV written once with
:meth:`MillionSeg.write_manifest`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Literal

import numpy as np

from s5geo.datasets._base import SegmentationDataset, Transform, check_index_mask, check_split, layout_error
from s5geo.datasets._base import read_index_mask as _read_index_mask
from s5geo.datasets._layout import archive_hint, descend_nested
from s5geo.datasets.isaid import ISAIDSegmentation
from s5geo.errors import DatasetLayoutError, S5GeoError, SplitError

PathLike = str | os.PathLike[str]
Part = Literal["labeled", "unlabeled", "pseudo_labeled"]
Split = Literal["train", "val"]

LABELED_DIR = Path("labeled", "iSAID")
UNLABELED_DIR = Path("unlabeled", "RS4P-1M")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MILLIONSEG_LAYOUT = (
    "<root>/labeled/iSAID/{train,val}/{images,masks}/<name>.png (or labeled/iSAID/{images,masks} "
    "for train) and <root>/unlabeled/RS4P-1M/images/<name>.<ext> [+ masks/<name>.png]"
)
PARTS = ("labeled", "unlabeled", "pseudo_labeled")
SPLITS = ("train", "val")


def _scan(folder: Path, extensions: tuple[str, ...] | None = None) -> dict[str, str]:
    """Map stem -> file name of the files directly in ``folder`` (one ``scandir``, no stat)."""
    out: dict[str, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if extensions is None or ext.lower() in extensions:
                out[stem] = entry.name
    return out


def _part_dir(root: Path, part: str, split: str = "train") -> Path:
    """Folder of a part relative to ``root``: the labeled split folder, or the unlabeled one."""
    if part != "labeled":
        return UNLABELED_DIR
    if (root / LABELED_DIR / split).is_dir() or split != "train":
        return LABELED_DIR / split
    return LABELED_DIR  # the flat layout holds the training split


def _nested(root: Path, folder: Path, extensions: tuple[str, ...]) -> Path:
    """``folder`` (relative to ``root``), or its same-named subfolder holding the files."""
    return descend_nested(root / folder, extensions).relative_to(root)


def _mask_for(image: str) -> str:
    """Conventional mask path of an image path: ``.../images/x.jpg`` -> ``.../masks/x.png``."""
    head, name = os.path.split(image)
    parent, folder = os.path.split(head)
    if folder != "images":
        raise DatasetLayoutError(
            f"{image}: cannot derive a mask path (image not in an 'images' folder); "
            "give the mask on the same line ('<image> <mask>') or use a CSV with an image,mask header"
        )
    return os.path.join(parent, "masks", os.path.splitext(name)[0] + ".png")


class MillionSeg(SegmentationDataset):
    """One part of the MillionSeg corpus: ``"labeled"``, ``"unlabeled"`` or ``"pseudo_labeled"``.

    * ``labeled``: iSAID crops with their masks (every image must have one), ``split`` ``"train"``
      or ``"val"``;
    * ``unlabeled``: all RS4P-1M images, samples without ``"mask"``;
    * ``pseudo_labeled``: the RS4P-1M images that have a mask in ``masks/`` (their pseudo-labels,
      for supervised pre-training on them, SEP).

    With ``manifest`` the files come from a list instead of a directory walk, paths relative to
    ``root``; rows under another part's folder (or, for ``labeled``, the other split's) are
    skipped. Two forms:

    * text, one sample per line, ``<image>`` or ``<image> <mask>`` separated by white space (the
      authors' split files): a given mask is used as is; for a line with only an image, the
      ``labeled``/``pseudo_labeled`` mask is derived (``.../images/x.*`` -> ``.../masks/x.png``)
      and only checked when the sample is read;
    * CSV with an ``image,mask`` header: the mask column is authoritative (empty = no mask), so
      ``pseudo_labeled`` keeps the rows with a mask and ``labeled`` requires one.

    ``unlabeled`` ignores masks. A relative ``manifest`` not found from the working directory is
    looked up under ``root``.

    Example:
        >>> ds = MillionSeg("data/RS4P-1M", part="labeled", manifest="S4_Pretrain/splits/labeled/labeled.txt")
        >>> val = MillionSeg("data/RS4P-1M", part="labeled", split="val")
        >>> sep = MillionSeg("data/RS4P-1M", part="pseudo_labeled")
    """

    classes = ISAIDSegmentation.classes
    colors = ISAIDSegmentation.colors

    def __init__(
        self,
        root: PathLike = "data",
        part: Part = "labeled",
        manifest: PathLike | None = None,
        transforms: Transform | None = None,
        split: Split = "train",
        validate: bool = False,
    ) -> None:
        """Find the files of one part.

        Args:
            root: the MillionSeg (RS4P-1M) folder.
            part: ``"labeled"``, ``"unlabeled"`` or ``"pseudo_labeled"``.
            manifest: optional list of files (see the class docstring); no directory walk then.
            transforms: function applied to each sample.
            split: ``"train"`` or ``"val"`` (labeled part only; the unlabeled part has no split).
            validate: check every mask's values and size now, with a progress bar (see
                :meth:`~s5geo.datasets._base.SegmentationDataset.validate`).

        Raises:
            DatasetLayoutError: if folders or files are missing, or the manifest lists no sample.
            SplitError: on a bad ``part`` or ``split``.
            S5GeoError: on a malformed manifest line.
            InvalidMaskError: with ``validate=True``, naming the first bad mask.
        """
        check_split("MillionSeg", part, PARTS, argument="part")
        check_split("MillionSeg", split, SPLITS)
        if split != "train" and part != "labeled":
            raise SplitError(f"MillionSeg: the {part} part has no {split!r} split (only 'labeled' has)")
        super().__init__(transforms)
        self.root = Path(root)
        self.part = part
        self.split = split
        if manifest is not None:
            records = self._read_manifest(self._manifest_path(Path(manifest)))
        else:
            records = self.list_files(self.root, part, split)
        if not records:
            where = manifest if manifest is not None else self.root / _part_dir(self.root, part, split)
            raise layout_error(where, f"no {part} image found", MILLIONSEG_LAYOUT)
        self.files = [
            {"image": self.root / image, "mask": None if mask is None else self.root / mask}
            for image, mask in records
        ]
        if validate:
            self.validate(progress=True)

    @staticmethod
    def list_files(root: PathLike, part: Part, split: Split = "train") -> list[tuple[str, str | None]]:
        """Walk the release layout and return ``(image, mask)`` paths relative to ``root``.

        Each folder is read with one ``os.scandir`` (no per-file ``stat``).
        """
        root = Path(root)
        base = _part_dir(root, part, split)
        if not (root / base / "images").is_dir():
            problem = f"missing folder {root / base / 'images'}"
            if part == "labeled" and split == "train":
                problem = (
                    f"missing folder {root / LABELED_DIR / 'train' / 'images'} (or {root / base / 'images'})"
                )
            hint = archive_hint([root, root / base.parent, root / base], root)
            raise layout_error(root, problem + hint, MILLIONSEG_LAYOUT)
        image_rel = _nested(root, base / "images", IMAGE_EXTENSIONS)
        images = _scan(root / image_rel, IMAGE_EXTENSIONS)
        if part == "unlabeled":
            return [(str(image_rel / images[s]), None) for s in sorted(images)]
        if not (root / base / "masks").is_dir():
            if part == "pseudo_labeled":
                return []
            hint = archive_hint([root / base], root)
            raise layout_error(root, f"missing folder {root / base / 'masks'}{hint}", MILLIONSEG_LAYOUT)
        mask_rel = _nested(root, base / "masks", (".png",))
        masks = _scan(root / mask_rel, (".png",))
        if part == "labeled":
            missing = sorted(set(images) - set(masks))
            if missing:
                raise layout_error(
                    root,
                    f"{len(missing)} labeled image(s) without a mask, e.g. {images[missing[0]]} "
                    f"(looked for {root / mask_rel / (missing[0] + '.png')})",
                    MILLIONSEG_LAYOUT,
                )
        return [(str(image_rel / images[s]), str(mask_rel / masks[s])) for s in sorted(images) if s in masks]

    @classmethod
    def write_manifest(cls, root: PathLike, out: PathLike, part: Part | Literal["all"] = "all") -> int:
        """Walk the layout once and write a CSV manifest (``image,mask``, relative to ``root``).

        Args:
            root: the MillionSeg folder.
            out: CSV file to write (written to a temporary name, then renamed).
            part: which part to list; ``"all"`` lists the labeled part (both splits where the
                layout has them) and every unlabeled image (with its mask where one exists).

        Returns:
            Number of rows written.
        """
        if part == "all":
            rows = cls.list_files(root, "labeled")
            if (Path(root) / LABELED_DIR / "val").is_dir():
                rows += cls.list_files(root, "labeled", "val")
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

    def _manifest_path(self, path: Path) -> Path:
        if not path.is_file() and not path.is_absolute() and (self.root / path).is_file():
            return self.root / path
        return path

    def _read_manifest(self, path: Path) -> list[tuple[str, str | None]]:
        if not path.is_file():
            raise DatasetLayoutError(f"{path}: manifest file does not exist")
        with open(path, newline="") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        if not lines:
            return []
        is_csv = lines[0].replace(" ", "").lower().startswith("image,mask")
        # (image, mask, whether the mask was given)
        rows: list[tuple[str, str | None, bool]] = []
        if is_csv:
            for row in csv.reader(lines[1:]):
                mask = row[1].strip() if len(row) > 1 and row[1].strip() else None
                rows.append((row[0].strip(), mask, True))
        else:
            for number, line in enumerate(lines, 1):
                fields = line.split()
                if len(fields) > 2:
                    raise S5GeoError(
                        f"{path}:{number}: expected '<image>' or '<image> <mask>', found {len(fields)} "
                        "fields (paths with spaces need the CSV form: image,mask header)"
                    )
                rows.append((fields[0], fields[1] if len(fields) == 2 else None, len(fields) == 2))
        kept = [row for row in rows if self._belongs(row[0])]
        if not kept:
            where = sorted({"/".join(Path(row[0]).parts[:3]) for row in rows})
            raise DatasetLayoutError(
                f"{path}: none of its {len(rows)} rows belongs to part={self.part!r}, "
                f"split={self.split!r}; its rows are under {', '.join(where[:3])}"
            )
        if self.part == "unlabeled":
            return [(image, None) for image, _, _ in kept]
        records = [(image, mask if given else _mask_for(image)) for image, mask, given in kept]
        if self.part == "labeled":
            missing = [image for image, mask in records if mask is None]
            if missing:
                raise DatasetLayoutError(
                    f"{path}: {len(missing)} labeled image(s) without a mask, e.g. {missing[0]}"
                )
        return [(image, mask) for image, mask in records if mask is not None]

    def _belongs(self, image: str) -> bool:
        """Whether a manifest row is in this part and split (rows elsewhere are in every part)."""
        parts = Path(image).parts
        if parts[:2] == UNLABELED_DIR.parts:
            return self.part != "labeled"
        if parts[:2] != LABELED_DIR.parts:
            return True
        if self.part != "labeled":
            return False
        split = parts[2] if len(parts) > 2 and parts[2] in SPLITS else "train"  # flat layout: train
        return split == self.split

    def _load_mask(self, path: Path) -> np.ndarray:
        if not path.is_file():
            raise DatasetLayoutError(
                f"{path}: mask file does not exist. Expected layout: {MILLIONSEG_LAYOUT}"
            )
        return check_index_mask(_read_index_mask(path), self.num_classes, path)
