"""What ISPRS Vaihingen and Potsdam share in the S5 setting: 5 classes, clutter ignored.

TorchGeo's ``Vaihingen2D``/``Potsdam2D`` know the release archives, extract them on first use and
list the image/label pairs of each split; these classes reuse that and add the S5 class mapping,
clear errors and tiling. The ISPRS label colours are

=====================  ===============  ==============================
colour                 class            s5geo index
=====================  ===============  ==============================
(255, 255, 255)        impervious surf. 0
(0, 0, 255)            building         1
(0, 255, 255)          low vegetation   2
(0, 255, 0)            tree             3
(255, 255, 0)          car              4
(255, 0, 0)            clutter/backgr.  255 (ignored)
(0, 0, 0)              boundary         255 (only in the eroded "noBoundary" labels)
=====================  ===============  ==============================
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torchgeo.datasets import DatasetNotFoundError, NonGeoDataset

from s5geo.datasets._base import rgb_to_index
from s5geo.datasets._tiling import TiledSegmentationDataset
from s5geo.errors import S5GeoError


class ISPRSDataset(TiledSegmentationDataset):
    """Base of :class:`~s5geo.datasets.Vaihingen` and :class:`~s5geo.datasets.Potsdam`."""

    classes: ClassVar[tuple[str, ...]] = (
        "impervious surfaces",
        "building",
        "low vegetation",
        "tree",
        "car",
    )
    colors: ClassVar[tuple[tuple[int, int, int], ...]] = (
        (255, 255, 255),
        (0, 0, 255),
        (0, 255, 255),
        (0, 255, 0),
        (255, 255, 0),
    )
    #: Colours mapped to 255: clutter/background, and the black boundary of the eroded labels.
    ignore_colors: ClassVar[tuple[tuple[int, int, int], ...]] = ((255, 0, 0), (0, 0, 0))
    #: ``"val"`` reads the test tiles: the benchmark has no separate validation set (as in S5).
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    torchgeo_class: ClassVar[type[NonGeoDataset]]

    def __init__(
        self, root: str | Path | None = None, split: str = "train", *, checksum: bool = False, **kwargs: Any
    ) -> None:
        """Open the dataset.

        Args:
            root: folder with the release archives or their extracted contents (default
                :attr:`default_root`).
            split: ``"train"``, ``"val"`` or ``"test"`` (``val`` = ``test``: the benchmark has no
                other).
            checksum: check the MD5 of the archives before extracting them.
            **kwargs: :class:`~s5geo.datasets._tiling.TiledSegmentationDataset` arguments
                (``transforms``, ``tile_size`` (512 in S5 training), ``stride``, ``unknown``,
                ``validate``).

        Raises:
            DatasetLayoutError: if the files are missing or incomplete.
        """
        self.checksum = checksum
        super().__init__(root, split, **kwargs)

    def _find_files(self) -> list[dict[str, Path | None]]:
        torchgeo_split = "train" if self.split == "train" else "test"
        try:
            # Verifies the folder, extracts the release zips on first use, lists the complete pairs.
            found = self.torchgeo_class(  # type: ignore[call-arg]
                root=os.fspath(self.root), split=torchgeo_split, checksum=self.checksum
            )
        except DatasetNotFoundError as error:
            raise self._layout_error("dataset files not found") from error
        complete = {Path(record["image"]): Path(record["mask"]) for record in found.files}
        missing: list[str] = []
        for name in self.torchgeo_class.splits[torchgeo_split]:  # type: ignore[attr-defined]
            image, mask = self._pair_paths(name)
            if image in complete:
                continue
            if image.exists() and not mask.exists():
                raise self._layout_error(f"label {mask} is missing for image {image}")
            if mask.exists() and not image.exists():
                raise self._layout_error(f"image {image} is missing for label {mask}")
            missing.append(name)
        if not complete:
            raise self._layout_error(f"none of the {torchgeo_split} tiles was found")
        if missing:
            warnings.warn(
                f"{self.root}: {len(missing)} {torchgeo_split} tile(s) missing, e.g. {missing[0]}; "
                f"using the {len(complete)} found",
                stacklevel=4,
            )
        return [{"image": image, "mask": mask} for image, mask in sorted(complete.items())]

    def _pair_paths(self, name: str) -> tuple[Path, Path]:
        """Image and label path of one tile of the split list, named as TorchGeo names them."""
        raise NotImplementedError

    def _mask_from_array(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return rgb_to_index(
            raw,
            self.colors,
            ignore_colors=self.ignore_colors,
            unknown=self.unknown,
            path=path,
        )


def band_indices(bands: Sequence[str], all_bands: Sequence[str], name: str) -> list[int]:
    """1-based indices of ``bands`` among ``all_bands``; a clear error for an unknown band."""
    unknown = [band for band in bands if band not in all_bands]
    if unknown or not bands:
        raise S5GeoError(f"{name}: bands must be taken from {tuple(all_bands)}, got {tuple(bands)}")
    return [list(all_bands).index(band) + 1 for band in bands]
