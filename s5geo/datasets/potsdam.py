"""ISPRS Potsdam in the S5 setting: 6000 px tiles, 5 classes, clutter ignored."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from torchgeo.datasets import Potsdam2D

from s5geo.datasets._isprs import ISPRSDataset, band_indices


class Potsdam(ISPRSDataset):
    """ISPRS 2D semantic labelling benchmark, Potsdam (5 cm, 6000 px tiles), S5 setting.

    File handling is TorchGeo's :class:`~torchgeo.datasets.Potsdam2D`: ``root`` holds
    ``4_Ortho_RGBIR.zip`` and ``5_Labels_all.zip`` (extracted on first use) or their contents,
    ``<root>/4_Ortho_RGBIR/top_potsdam_<X>_<Y>_RGBIR.tif`` (4-band R, G, B, IR images) and
    ``<root>/top_potsdam_<X>_<Y>_label.tif`` (RGB-coded labels). ``train`` is TorchGeo's 24 training
    tiles, ``test`` (alias ``val``) its 14 test tiles. The eroded labels
    (``5_Labels_all_noBoundary``, black boundaries) may be placed there instead; black is ignored as
    well.

    Classes: impervious surfaces, building, low vegetation, tree, car (indices 0-4);
    clutter/background and boundary become 255. The S5 setting uses the RGB bands (the default
    ``bands``); pass ``bands=("R", "G", "B", "IR")`` for all four.

    Use ``tile_size=512`` for training and ``tile_size=None`` (whole tiles) for evaluation; windows
    are read from the 6000 px tiles without decoding the rest of the file.
    """

    torchgeo_class: ClassVar = Potsdam2D
    default_root: ClassVar[str] = "data/potsdam"
    all_bands: ClassVar[tuple[str, ...]] = ("R", "G", "B", "IR")
    #: Name of each band of the tiles (``band_names`` of an instance follows ``bands``).
    all_band_names: ClassVar[dict[str, str]] = {"R": "red", "G": "green", "B": "blue", "IR": "nir"}
    expected_layout: ClassVar[str] = (
        "<root>/4_Ortho_RGBIR.zip + <root>/5_Labels_all.zip, or extracted: "
        "<root>/4_Ortho_RGBIR/top_potsdam_<X>_<Y>_RGBIR.tif (R,G,B,IR image) + "
        "<root>/top_potsdam_<X>_<Y>_label.tif (RGB label)"
    )

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        *,
        bands: Sequence[str] = ("R", "G", "B"),
        **kwargs: Any,
    ) -> None:
        """Open the dataset.

        Args:
            root: folder with the release archives or their extracted contents (default
                :attr:`default_root`).
            split: ``"train"``, ``"val"`` or ``"test"`` (``val`` = ``test``).
            bands: image bands to read, from ``("R", "G", "B", "IR")``.
            **kwargs: :class:`~s5geo.datasets._isprs.ISPRSDataset` arguments (``transforms``,
                ``tile_size``, ``stride``, ``unknown``, ``checksum``, ``validate``).

        Raises:
            DatasetLayoutError: if the files are missing or incomplete.
        """
        self.image_bands = band_indices(bands, self.all_bands, type(self).__name__)
        self.bands = tuple(bands)
        self.band_names = tuple(self.all_band_names[str(band)] for band in self.bands)
        super().__init__(root, split, **kwargs)

    def _pair_paths(self, name: str) -> tuple[Path, Path]:
        image = self.root / Potsdam2D.image_root / f"{name}_RGBIR.tif"
        return image, self.root / f"{name}_label.tif"
