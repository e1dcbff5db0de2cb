"""ISPRS Vaihingen in the S5 setting: IRRG tiles, 5 classes, clutter ignored."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from torchgeo.datasets import Vaihingen2D

from s5geo.datasets._isprs import ISPRSDataset


class Vaihingen(ISPRSDataset):
    """ISPRS 2D semantic labelling benchmark, Vaihingen (9 cm, IRRG), S5 fine-tuning setting.

    File handling is TorchGeo's :class:`~torchgeo.datasets.Vaihingen2D`: ``root`` holds the release
    archives ``ISPRS_semantic_labeling_Vaihingen.zip`` and
    ``ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip`` (extracted on first use) or
    their contents, ``<root>/top/top_mosaic_09cm_area<N>.tif`` (3-band IRRG images) and
    ``<root>/top_mosaic_09cm_area<N>.tif`` (RGB-coded labels). The ``train`` split is TorchGeo's 16
    training areas, ``test`` (alias ``val``) its 17 test areas. Eroded labels (black boundaries) may
    be placed there instead of the complete ones; black is ignored as well.

    Classes: impervious surfaces, building, low vegetation, tree, car (indices 0-4).
    Clutter/background (red) and boundary (black) become 255 and are ignored, as in the S5 paper.

    Use ``tile_size=512`` for training (a deterministic grid of 512 px windows over each tile, the
    last one aligned to the border, see :mod:`s5geo.datasets._tiling`) and ``tile_size=None`` (whole
    tiles, batch 1) for evaluation.
    """

    torchgeo_class: ClassVar = Vaihingen2D
    default_root: ClassVar[str] = "data/vaihingen"
    band_names: ClassVar[tuple[str, ...]] = ("nir", "red", "green")
    expected_layout: ClassVar[str] = (
        "<root>/ISPRS_semantic_labeling_Vaihingen.zip + "
        "<root>/ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip, or extracted: "
        "<root>/top/top_mosaic_09cm_area<N>.tif (IRRG image) + "
        "<root>/top_mosaic_09cm_area<N>.tif (RGB label)"
    )

    def _pair_paths(self, name: str) -> tuple[Path, Path]:
        return self.root / Vaihingen2D.image_root / name, self.root / name
