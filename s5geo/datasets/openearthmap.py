"""OpenEarthMap in the S5 setting: 9 classes (label 0 trained as "other"), xBD regions optional."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s5geo.datasets._base import check_index_mask, layout_error
from s5geo.datasets._layout import archive_hint, extraction_pending, safe_extract
from s5geo.datasets._tiling import TiledSegmentationDataset
from s5geo.errors import InvalidMaskError, S5GeoError

EXPECTED_LAYOUT = (
    "<root>/{train,val,test}.txt (one file name per line, e.g. aachen_1.tif) + "
    "<root>/<region>/images/<region>_<n>.tif (RGB GeoTIFF) + "
    "<root>/<region>/labels/<region>_<n>.tif (1-band class values 0-8)"
)

_NAME = re.compile(r"(?P<region>.+)_(?P<number>\d+)\.tif")


class OpenEarthMap(TiledSegmentationDataset):
    """OpenEarthMap global land-cover benchmark (0.25-0.5 m, 97 regions), S5 setting.

    Layout of the official release (Zenodo, ``OpenEarthMap_wo_xBD``)::

        <root>/train.txt, val.txt, test.txt       file names, one per line ("aachen_1.tif")
        <root>/<region>/images/<region>_<n>.tif   RGB GeoTIFF
        <root>/<region>/labels/<region>_<n>.tif   1-band uint8, 0..8

    ``root`` may also be the folder that holds the release zip (``OpenEarthMap.zip``, extracted on
    first use without overwriting a file) or its unpacked ``OpenEarthMap_wo_xBD/`` folder.

    The region of a listed file is its name without the trailing ``_<n>.tif``. Test labels are not
    public: a listed test file without a label gives a sample without ``"mask"``; in
    ``train``/``val`` a missing label is an error. ``split="trainval"`` joins train and val.

    Classes: the mask value is the class index. Value 0 (unlabelled/unknown in the release) is
    trained as a ninth class ``"other"``, as in the S5 authors' fine-tuning code, which is how the
    paper counts 9 classes; 1..8 are bareland, rangeland, developed space, road, tree, water,
    agriculture land, building. Values above 8 raise :class:`~s5geo.errors.InvalidMaskError`.
    Colours are the official OpenEarthMap ones (black for "other").

    xBD regions: the images of 22 regions come from the xBD (xView2) disaster data set and are not
    shipped with the release (``xbd_files.csv`` plus the authors' ``compile_xbd.py`` add them).
    Those regions are :attr:`xbd_regions`, the region folders that ``xbd_files.csv`` fills (folders
    are named after the town, e.g. ``houston`` for hurricane Harvey, not after the xBD event).
    ``exclude_xbd=True`` (the default, and the S5 setting: 2303 training images, evaluation on val
    without xBD) drops them; with ``exclude_xbd=False`` their images must have been compiled in.
    """

    classes: ClassVar[tuple[str, ...]] = (
        "other",
        "bareland",
        "rangeland",
        "developed space",
        "road",
        "tree",
        "water",
        "agriculture land",
        "building",
    )
    colors: ClassVar[tuple[tuple[int, int, int], ...]] = (
        (0, 0, 0),
        (128, 0, 0),
        (0, 255, 36),
        (148, 148, 148),
        (255, 255, 255),
        (34, 97, 38),
        (0, 69, 255),
        (75, 181, 73),
        (222, 31, 7),
    )
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test", "trainval")
    default_root: ClassVar[str] = "data/openearthmap"
    expected_layout: ClassVar[str] = EXPECTED_LAYOUT
    #: Region folders whose images come from xBD (from the release's ``xbd_files.csv``).
    xbd_regions: ClassVar[frozenset[str]] = frozenset(
        {
            "adelaide",  # pinery-bushfire
            "el_rodeo",  # guatemala-volcano
            "gorakhpur",  # nepal-flooding
            "houston",  # hurricane-harvey
            "jeremie",  # hurricane-matthew
            "joplin",  # joplin-tornado
            "labuhan",  # sunda-tsunami
            "leilane_estates",  # lower-puna-volcano
            "les_cayes",  # hurricane-matthew
            "little_rock",  # midwest-flooding
            "mexico_city",  # mexico-earthquake
            "oklahoma",  # moore-tornado
            "palu",  # palu-tsunami
            "panama_city",  # hurricane-michael
            "pedrogao_grande",  # portugal-wildfire
            "port_a_piment",  # hurricane-matthew
            "saint_louis_du_sud",  # hurricane-matthew
            "santa_rosa",  # santa-rosa-wildfire
            "thousand_oaks",  # socal-fire
            "tulsa",  # midwest-flooding
            "tuscaloosa",  # tuscaloosa-tornado
            "wallace",  # hurricane-florence
        }
    )

    def __init__(
        self, root: str | Path | None = None, split: str = "train", *, exclude_xbd: bool = True, **kwargs: Any
    ) -> None:
        """Open the dataset.

        Args:
            root: the release folder (split lists and region folders; default :attr:`default_root`).
            split: ``"train"``, ``"val"``, ``"test"`` or ``"trainval"``.
            exclude_xbd: drop the xBD-derived regions (see the class docstring).
            **kwargs: :class:`~s5geo.datasets._tiling.TiledSegmentationDataset` arguments
                (``transforms``, ``tile_size``, ``stride``, ``unknown``, ``validate``).

        Raises:
            DatasetLayoutError: if a split list, a listed image or a train/val label is missing.
        """
        self.exclude_xbd = exclude_xbd
        super().__init__(root, split, **kwargs)

    def _find_files(self) -> list[dict[str, Path | None]]:
        given = self.root
        self.root = self._release_root(given, self._split_parts()[0])
        files = [record for part in self._split_parts() for record in self._list_split(part)]
        if not files:
            raise layout_error(given, f"the {self.split} list names no usable file", EXPECTED_LAYOUT)
        return files

    @staticmethod
    def _release_root(root: Path, part: str) -> Path:
        """The folder with the split lists: ``root``, or the release folder in it (zip extracted)."""
        if (root / f"{part}.txt").is_file() or not root.is_dir():
            return root

        def unpacked() -> Path | None:
            folders = sorted(
                p for p in root.iterdir() if p.is_dir() and p.name.lower().startswith("openearthmap")
            )
            return next((folder for folder in folders if (folder / f"{part}.txt").is_file()), None)

        archives = sorted(p for p in root.glob("*.zip") if p.name.lower().startswith("openearthmap"))
        pending = [archive for archive in archives if extraction_pending(archive, root)]
        found = unpacked()
        if found is None or pending:
            for archive in pending or archives:
                safe_extract(archive, root)
            found = unpacked()
        return found or root

    @classmethod
    def region_of(cls, name: str) -> str:
        """Region folder of a listed file name (``"el_rodeo_12.tif"`` -> ``"el_rodeo"``)."""
        match = _NAME.fullmatch(name)
        if match is None:
            raise S5GeoError(f"OpenEarthMap: {name!r} is not a file name of the form <region>_<n>.tif")
        return match["region"]

    def _list_split(self, part: str) -> list[dict[str, Path | None]]:
        listing = self.root / f"{part}.txt"
        if not listing.is_file():
            hint = archive_hint([self.root], self.root)
            raise self._layout_error(f"split list {listing} is missing{hint}")
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        files: list[dict[str, Path | None]] = []
        missing_images: list[Path] = []
        for name in names:
            name = name if name.endswith(".tif") else f"{name}.tif"
            region = self.region_of(name)
            if self.exclude_xbd and region in self.xbd_regions:
                continue
            image = self.root / region / "images" / name
            mask: Path | None = self.root / region / "labels" / name
            if not image.exists():
                missing_images.append(image)
                continue
            if not mask.exists():  # type: ignore[union-attr]
                if part != "test":
                    raise self._layout_error(f"label {mask} is missing for image {image}")
                mask = None
            files.append({"image": image, "mask": mask})
        if missing_images:
            first = missing_images[0]
            hint = ""
            if self.region_of(first.name) in self.xbd_regions:
                hint = (
                    " (an xBD region: add its images with the release's compile_xbd.py, "
                    "or use exclude_xbd=True)"
                )
            raise self._layout_error(
                f"{len(missing_images)} image(s) listed in {part}.txt are missing, e.g. {first}{hint}"
            )
        return files

    def _mask_from_array(self, raw: np.ndarray, path: Path) -> np.ndarray:
        if raw.shape[0] != 1:
            raise InvalidMaskError(f"{path}: expected a 1-band label, found {raw.shape[0]} bands")
        return check_index_mask(raw[0], self.num_classes, path, unknown=self.unknown)
