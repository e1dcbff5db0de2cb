"""Shared pieces of s5geo's segmentation datasets: file reading, colour decoding, plotting.

Every dataset returns TorchGeo-style samples ``{"image": float32 CxHxW, "mask": int64 HxW}`` with raw pixel
values in the image (normalisation happens in the datamodule, on the device) and 255 as the one ignore value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from torch import Tensor
from torchgeo.datasets import NonGeoDataset

from s5geo.constants import IGNORE_INDEX
from s5geo.errors import DatasetLayoutError, InvalidMaskError, S5GeoError, SplitError
from s5geo.imagefile import read_image_file as read_raster

Sample = dict[str, Any]
Transform = Callable[[Sample], Sample]
T = TypeVar("T")


def raster_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of a raster, read from its header only."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.height, src.width
    except RasterioIOError as error:
        raise S5GeoError(f"{path}: cannot read raster ({error})") from error


def read_image(path: str | Path, bands: Sequence[int] | None = None) -> Tensor:
    """Read an image as a float32 ``C x H x W`` tensor with raw pixel values."""
    return torch.from_numpy(read_raster(path, bands).astype(np.float32))


def read_index_mask(path: str | Path) -> np.ndarray:
    """Read a single-band class-index mask as an ``H x W`` array."""
    data = read_raster(path)
    if data.shape[0] != 1:
        raise InvalidMaskError(f"{path}: expected a 1-band class-index mask, found {data.shape[0]} bands")
    return data[0]


def rgb_to_index(
    rgb: np.ndarray,
    colors: Sequence[Sequence[int]],
    *,
    ignore_colors: Sequence[Sequence[int]] = (),
    unknown: str = "error",
    path: str | Path | None = None,
) -> np.ndarray:
    """Map an RGB-coded mask to class indices.

    Args:
        rgb: ``3 x H x W`` (or ``4 x H x W``, alpha dropped) uint8 array.
        colors: colour of each class; class ``i`` is ``colors[i]``.
        ignore_colors: colours that mean "no label" and become 255.
        unknown: what to do with a colour that is in neither list: ``"error"`` raises
            :class:`InvalidMaskError`, ``"ignore"`` maps it to 255.
        path: file the mask came from, for error messages.

    Returns:
        ``H x W`` uint8 array of class indices, 255 where ignored.
    """
    if rgb.ndim != 3 or rgb.shape[0] < 3:
        raise InvalidMaskError(f"{path or 'mask'}: expected an RGB mask, found shape {rgb.shape}")
    rgb = rgb[:3].astype(np.int64)
    code = (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]
    lut_keys = [(int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in colors]
    ignore_keys = [(int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in ignore_colors]
    keys = np.array(lut_keys + ignore_keys, dtype=np.int64)
    values = np.array(list(range(len(lut_keys))) + [IGNORE_INDEX] * len(ignore_keys), dtype=np.uint8)
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    pos = np.clip(np.searchsorted(keys, code), 0, len(keys) - 1)
    known = keys[pos] == code
    out = np.where(known, values[pos], IGNORE_INDEX).astype(np.uint8)
    if unknown == "error" and not known.all():
        bad = int(code[~known][0])
        colour = ((bad >> 16) & 255, (bad >> 8) & 255, bad & 255)
        raise InvalidMaskError(
            f"{path or 'mask'}: {int((~known).sum())} pixels have colour {colour}, "
            "which is not a class colour of this dataset"
        )
    return out


def check_index_mask(
    mask: np.ndarray, num_classes: int, path: str | Path | None = None, unknown: str = "error"
) -> np.ndarray:
    """Check that a class-index mask holds only ``0..num_classes-1`` and 255.

    Args:
        mask: ``H x W`` class indices.
        num_classes: number of classes.
        path: file the mask came from, for error messages.
        unknown: ``"error"`` raises :class:`InvalidMaskError` on another value, ``"ignore"`` maps
            it to 255.
    """
    bad_pixels = (mask >= num_classes) & (mask != IGNORE_INDEX)
    if not bad_pixels.any():
        return mask
    if unknown == "ignore":
        return np.where(bad_pixels, IGNORE_INDEX, mask).astype(mask.dtype)
    bad = np.unique(mask[bad_pixels])
    raise InvalidMaskError(
        f"{path or 'mask'}: class value(s) {bad.tolist()} outside 0..{num_classes - 1} (255 = ignore)"
    )


def check_split(dataset: str, split: str, allowed: Sequence[str], argument: str = "split") -> None:
    """Raise :class:`~s5geo.errors.SplitError` naming ``dataset`` if ``split`` is not ``allowed``."""
    if split not in allowed:
        raise SplitError(f"{dataset}: {argument} must be one of {tuple(allowed)}, got {split!r}")


def renamed_argument(kwargs: dict[str, Any], old: str, new: str, value: T) -> T:
    """``kwargs[old]``, removed from ``kwargs`` with a warning that it is now ``new``; else ``value``."""
    if old not in kwargs:
        return value
    warnings.warn(f"{old}= is deprecated, use {new}=", DeprecationWarning, stacklevel=3)
    return kwargs.pop(old)


def size_mismatch(
    image: str | Path, size: tuple[int, ...], mask: str | Path, mask_size: tuple[int, ...]
) -> InvalidMaskError:
    """The error for a mask whose ``(height, width)`` differs from its image's."""
    return InvalidMaskError(
        f"{mask}: mask size {mask_size[1]}x{mask_size[0]} does not match image {image} "
        f"size {size[1]}x{size[0]}"
    )


def layout_error(root: str | Path, problem: str, expected: str) -> DatasetLayoutError:
    """Build an error that says what is wrong in ``root`` and shows the expected layout."""
    return DatasetLayoutError(f"{root}: {problem}. Expected layout: {expected}")


class SegmentationDataset(NonGeoDataset):
    """Base class: a list of ``{"image": path, "mask": path | None}`` records read on demand.

    Subclasses set ``classes`` and ``colors``, fill ``self.files`` and implement :meth:`_load_mask`.
    """

    classes: ClassVar[tuple[str, ...]] = ()
    colors: ClassVar[tuple[tuple[int, int, int], ...]] = ()
    ignore_index: ClassVar[int] = IGNORE_INDEX

    def __init__(self, transforms: Transform | None = None) -> None:
        self.transforms = transforms
        self.files: list[dict[str, Path | None]] = []

    @property
    def num_classes(self) -> int:
        """Number of classes (the ignore value excluded)."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        record = self.files[index]
        image = self._load_image(record["image"])  # type: ignore[arg-type]
        sample: Sample = {"image": image}
        if record.get("mask") is not None:
            mask = self._load_mask(record["mask"])  # type: ignore[arg-type]
            if mask.shape != tuple(image.shape[-2:]):
                raise size_mismatch(record["image"], tuple(image.shape[-2:]), record["mask"], mask.shape)  # type: ignore[arg-type]
            sample["mask"] = torch.from_numpy(mask.astype(np.int64))
        return self._finish(sample)

    def validate(self, progress: bool = False) -> int:
        """Check every mask against its image before training, instead of inside a loader worker.

        Image and mask sizes are compared from the file headers, then each mask is decoded and its
        values or colours checked as when a sample is read.

        Args:
            progress: show a progress bar.

        Returns:
            Number of masks checked.

        Raises:
            InvalidMaskError: naming the first mask with a bad value or colour, or whose size differs
                from its image's.
            S5GeoError: naming a file that cannot be read.
        """
        from tqdm.auto import tqdm

        records = [r for r in self.files if r.get("mask") is not None]
        for record in tqdm(records, desc="checking masks", unit="mask", disable=not progress):
            image, mask = record["image"], record["mask"]
            size, mask_size = raster_size(image), raster_size(mask)  # type: ignore[arg-type]
            if size != mask_size:
                raise size_mismatch(image, size, mask, mask_size)  # type: ignore[arg-type]
            self._load_mask(mask)  # type: ignore[arg-type]
        return len(records)

    def _finish(self, sample: Sample) -> Sample:
        """Apply ``transforms`` to a read sample; datasets that adjust samples extend this."""
        return sample if self.transforms is None else self.transforms(sample)

    def _load_image(self, path: Path) -> Tensor:
        return read_image(path)

    def _load_mask(self, path: Path) -> np.ndarray:
        """Return the ``H x W`` class-index mask (255 = ignore) stored in ``path``."""
        raise NotImplementedError

    def plot(
        self,
        sample: Sample,
        show_titles: bool = True,
        suptitle: str | None = None,
    ) -> Any:
        """Plot a sample: image, mask and (if present) prediction.

        Args:
            sample: a sample from this dataset, optionally with a ``"prediction"`` entry.
            show_titles: whether to title each panel.
            suptitle: optional figure title.

        Returns:
            A matplotlib Figure.
        """
        return plot_segmentation_sample(sample, self.colors, show_titles, suptitle)


def colorize(mask: np.ndarray, colors: Sequence[Sequence[int]]) -> np.ndarray:
    """Return an ``H x W x 3`` uint8 image of a class-index mask (ignore pixels black)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: len(colors)] = np.asarray(colors, dtype=np.uint8)
    return palette[np.asarray(mask, dtype=np.int64).clip(0, 255)]


def image_for_display(image: Tensor | np.ndarray) -> np.ndarray:
    """Turn a ``C x H x W`` image into an ``H x W x 3`` float array in [0, 1] (2-98% stretch)."""
    array = np.asarray(image, dtype=np.float32)
    array = array[:3] if array.shape[0] >= 3 else np.repeat(array[:1], 3, axis=0)
    array = np.moveaxis(array, 0, -1)
    low, high = np.percentile(array, (2, 98))
    return np.clip((array - low) / max(high - low, 1e-6), 0, 1)


def plot_segmentation_sample(
    sample: Sample,
    colors: Sequence[Sequence[int]],
    show_titles: bool = True,
    suptitle: str | None = None,
) -> Any:
    """Plot image, mask and prediction of a sample side by side."""
    import matplotlib.pyplot as plt

    panels = [("Image", image_for_display(sample["image"]))]
    for key, title in (("mask", "Mask"), ("prediction", "Prediction")):
        if key in sample:
            panels.append((title, colorize(np.asarray(sample[key]), colors)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    for ax, (title, data) in zip(axes[0], panels, strict=True):
        ax.imshow(data)
        ax.axis("off")
        if show_titles:
            ax.set_title(title)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig
