"""Any folder (or list) of images without masks, for the unlabeled stream of S5 training."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from s5geo.datasets._base import SegmentationDataset, Transform, layout_error
from s5geo.datasets.folder import IMAGE_EXTENSIONS
from s5geo.metadata import default_colors

PathLike = str | os.PathLike[str]

UNLABELED_LAYOUT = "<root>/[**/]<name>.<ext> with ext one of the accepted image extensions"


class UnlabeledFolder(SegmentationDataset):
    """Images from a folder (searched recursively) or a file list; samples hold ``"image"`` only.

    Example:
        >>> ds = UnlabeledFolder("data/unlabeled", extensions=(".tif",))
        >>> ds[0].keys()
        dict_keys(['image'])
    """

    def __init__(
        self,
        root: PathLike | Sequence[PathLike],
        *,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        recursive: bool = True,
        classes: Sequence[str] = (),
        colors: Sequence[Sequence[int]] | None = None,
        transforms: Transform | None = None,
    ) -> None:
        """Find the images.

        Args:
            root: a folder, or a list of image files (taken as given, in order).
            extensions: file extensions (case-insensitive) that count as images in a folder.
            recursive: whether to search sub-folders too.
            classes: class names of the task (only used for plotting predictions).
            colors: colour of each class (for plotting predictions).
            transforms: function applied to each sample.

        Raises:
            DatasetLayoutError: if the folder does not exist, holds no image, or a listed file is
                missing.
        """
        super().__init__(transforms)
        self.classes = tuple(classes)  # type: ignore[misc]
        self.colors = (  # type: ignore[misc]
            tuple(tuple(int(v) for v in c) for c in colors)
            if colors is not None
            else default_colors(len(classes))
        )
        if isinstance(root, str | os.PathLike):
            folder = Path(root)
            if not folder.is_dir():
                raise layout_error(folder, "folder does not exist", UNLABELED_LAYOUT)
            exts = {e.lower() for e in extensions}
            walker = folder.rglob("*") if recursive else folder.iterdir()
            files = sorted(p for p in walker if p.suffix.lower() in exts and p.is_file())
            if not files:
                raise layout_error(folder, f"no image with extension {sorted(exts)} found", UNLABELED_LAYOUT)
        else:
            files = [Path(p) for p in root]
            if not files:
                raise ValueError("the list of image files is empty")
            missing = [p for p in files if not p.is_file()]
            if missing:
                problem = f"{len(missing)} file(s) missing, e.g. {missing[0]}"
                raise layout_error("file list", problem, "existing files")
        self.files = [{"image": p, "mask": None} for p in files]
