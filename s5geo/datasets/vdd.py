"""VDD (Varied Drone Dataset, 7 classes)."""

from __future__ import annotations

from typing import ClassVar

from s5geo.datasets._drone import UDD_COLORS, DroneSegmentationDataset


class VDD(DroneSegmentationDataset):
    """VDD, the Varied Drone Dataset (400 images of 4000 x 3000 px: 280 train, 80 val, 40 test).

    Layout of the release (as we read it; the official repository documents the classes, not the
    tree)::

        <root>/{train,val,test}/src/<name>.JPG   RGB drone images
        <root>/{train,val,test}/gt/<name>.png    class-index PNGs (0..6), same stem

    Classes (index = VDD class id) and colours: other (0, 0, 0), wall (102, 102, 156),
    road (128, 64, 128), vegetation (107, 142, 35), vehicle (0, 0, 142), roof (70, 70, 70),
    water (28, 134, 238). Masks are read as class indices; RGB-coded masks with these colours are
    accepted too. Values above 6 raise :class:`~s5geo.errors.InvalidMaskError`.
    ``split="trainval"`` (360 images) is what S5 fine-tunes on.

    The images are large; use ``tile_size=512`` to train on a grid of windows and ``tile_size=None``
    for whole-image evaluation (JPEG windows still decode the rows above them; see
    :mod:`s5geo.datasets._tiling`).
    """

    classes: ClassVar[tuple[str, ...]] = (
        "other",
        "wall",
        "road",
        "vegetation",
        "vehicle",
        "roof",
        "water",
    )
    colors: ClassVar[tuple[tuple[int, int, int], ...]] = (*UDD_COLORS, (28, 134, 238))
    default_root: ClassVar[str] = "data/vdd"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test", "trainval")
