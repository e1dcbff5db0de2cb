"""UDD6 (Urban Drone Dataset, 6 classes)."""

from __future__ import annotations

from typing import ClassVar

from s5geo.datasets._drone import UDD_COLORS, DroneSegmentationDataset


class UDD6(DroneSegmentationDataset):
    """UDD6, the 6-class Urban Drone Dataset (Peking University; 4096 x 2160 / 4000 x 3000 px).

    Layout of the release (``UDD6.zip`` from the UDD GitHub page, as other tools read it)::

        <root>/train/src/<name>.JPG   RGB drone frames
        <root>/train/gt/<name>.png    labels, same stem
        <root>/val/src, <root>/val/gt

    Classes and official colours (index = UDD6 "Gt Label"): other (0, 0, 0), facade (102, 102, 156),
    road (128, 64, 128), vegetation (107, 142, 35), vehicle (0, 0, 142), roof (70, 70, 70).

    Assumption: the ``gt`` PNGs are read whether they are RGB-coded with these colours or hold the
    class index (1 band, or R = G = B); descriptions of the release differ on this and both decode
    to the same indices. An unknown colour or value raises :class:`~s5geo.errors.InvalidMaskError`.
    Splits: ``train`` (106 images in S5's Table 12), ``val`` and ``trainval``. Use ``tile_size`` to
    train on fixed windows.
    """

    classes: ClassVar[tuple[str, ...]] = (
        "other",
        "facade",
        "road",
        "vegetation",
        "vehicle",
        "roof",
    )
    colors: ClassVar[tuple[tuple[int, int, int], ...]] = UDD_COLORS
    default_root: ClassVar[str] = "data/udd6"
