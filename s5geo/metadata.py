"""Model metadata shared by training, inference, ONNX export and the QGIS plugin.

This module must not import torch: the QGIS plugin uses it in a Python that only has numpy.
"""

from __future__ import annotations

import colorsys
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from s5geo._version import __version__

#: Metadata key under which the JSON document is stored (ONNX ``metadata_props``, raster tags).
METADATA_KEY = "s5geo"

#: Key of a Lightning/s5geo checkpoint dict under which :meth:`ModelMetadata.to_dict` is stored.
CHECKPOINT_METADATA_KEY = "s5geo_metadata"

#: Key of a multi-dataset checkpoint under which each dataset's metadata dict is stored, by dataset.
CHECKPOINT_DATASETS_KEY = "s5geo_datasets"

#: Matplotlib's ``tab20`` colours (as 0-255 RGB), the first 20 default class colours.
_TAB20: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (174, 199, 232), (255, 127, 14), (255, 187, 120), (44, 160, 44),
    (152, 223, 138), (214, 39, 40), (255, 152, 150), (148, 103, 189), (197, 176, 213),
    (140, 86, 75), (196, 156, 148), (227, 119, 194), (247, 182, 210), (127, 127, 127),
    (199, 199, 199), (188, 189, 34), (219, 219, 141), (23, 190, 207), (158, 218, 229),
)  # fmt: skip


def default_colors(n: int) -> tuple[tuple[int, int, int], ...]:
    """Return ``n`` distinct colours for classes that have none.

    The first 20 are matplotlib's ``tab20``; further ones step the hue by the golden angle.
    """
    colors = list(_TAB20[:n])
    for i in range(len(colors), n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.65, 0.95)
        colors.append((int(r * 255), int(g * 255), int(b * 255)))
    return tuple(colors)


@dataclass
class ModelMetadata:
    """What a user of a trained model needs to run it on new imagery.

    Attributes:
        classes: class names, index = class id.
        colors: one ``(r, g, b)`` per class.
        bands: 1-based band indices of the input raster, in the order the model expects.
        mean: per-band mean subtracted before the model (in raw raster units).
        std: per-band standard deviation divided after subtracting the mean.
        window_size: side of the square window the model was trained/evaluated with, in pixels.
        overlap: recommended overlap between windows as a fraction of the window (0 <= overlap < 1).
        gsd: ground sampling distance the model was trained at, in metres (None if unknown).
        dtype: data type of the imagery the model was trained on (``uint8``, ``uint16``,
            ``float32``...; None if unknown).
        scale: raw value that meant full brightness / reflectance 1 in the training imagery (the
            datamodule's ``scale``: 255 for 8-bit, 10000 for Sentinel-2 L2A...), one value or one per
            band; None if unknown (models from before it was recorded: 255).
        band_names: name of each input band in model order (e.g. ``["red", "green", "blue"]``),
            from the training data; None if unknown. Used to find the bands of a raster whose band
            descriptions name them.
        ignore_index: mask value that means "no label".
        model: name of the architecture in the s5geo model registry (informational).
        version: s5geo version that wrote the metadata.
    """

    classes: list[str]
    colors: list[tuple[int, int, int]]
    bands: list[int] = field(default_factory=lambda: [1, 2, 3])
    mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = field(default_factory=lambda: [255.0, 255.0, 255.0])
    window_size: int = 512
    overlap: float = 0.25
    gsd: float | None = None
    dtype: str | None = None
    scale: float | list[float] | None = None
    band_names: list[str] | None = None
    ignore_index: int = 255
    model: str = ""
    version: str = __version__

    def __post_init__(self) -> None:
        """Validate lengths and ranges, normalising sequences to lists."""
        self.colors = [tuple(int(v) for v in c) for c in self.colors]  # type: ignore[misc]
        self.bands = [int(b) for b in self.bands]
        self.mean = [float(m) for m in self.mean]
        self.std = [float(s) for s in self.std]
        if len(self.colors) != len(self.classes):
            raise ValueError(f"metadata has {len(self.classes)} classes but {len(self.colors)} colours")
        if not (len(self.bands) == len(self.mean) == len(self.std)):
            raise ValueError("metadata bands, mean and std must have the same length")
        if any(s <= 0 for s in self.std):
            raise ValueError("metadata std values must be positive")
        if self.band_names is not None:
            self.band_names = [str(name) for name in self.band_names]
            if len(self.band_names) != len(self.bands):
                raise ValueError(
                    f"metadata has {len(self.bands)} bands but {len(self.band_names)} band names"
                )
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"metadata overlap must be in [0, 1), got {self.overlap}")
        if isinstance(self.scale, (list, tuple)):
            self.scale = [float(v) for v in self.scale]
            if len(self.scale) == 1:
                self.scale = self.scale[0]
            elif len(self.scale) != len(self.bands):
                raise ValueError("metadata scale must be one value or one per band")
        elif self.scale is not None:
            self.scale = float(self.scale)
        scales = self.scale if isinstance(self.scale, list) else [self.scale]
        if any(v is not None and v <= 0 for v in scales):
            raise ValueError("metadata scale must be positive")

    @property
    def num_classes(self) -> int:
        """Number of classes the model predicts."""
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        """Number of input bands the model expects."""
        return len(self.bands)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        data = asdict(self)
        data["colors"] = [list(c) for c in self.colors]
        return data

    def to_json(self) -> str:
        """Return the metadata as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        """Build metadata from a dict, ignoring keys this version does not know."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        """Build metadata from a JSON string."""
        return cls.from_dict(json.loads(text))


@runtime_checkable
class DataModuleMetadata(Protocol):
    """What a datamodule tells a task about its data, for the metadata stored in checkpoints.

    The s5geo datamodules implement all of it; a task uses the default of any member a datamodule
    lacks (see ``docs/architecture.md``).

    Attributes:
        classes: class names, index ``i`` is class ``i`` (default ``class_<i>``).
        colors: one ``(r, g, b)`` per class (default :func:`default_colors`).
        bands: 1-based band indices of the source rasters, in the order the images hold them
            (e.g. ``[4, 1, 2]`` for IR-R-G read from an R-G-B-IR file); None: ``1..C``.
        gsd: ground sampling distance of the imagery in metres, None if unknown or mixed.
        scale: divisor mapping raw pixel values to ``[0, 1]`` (scalar or one per band; default 255).
        band_names: name of each image band in order (e.g. ``["nir", "red", "green"]``), None if
            unknown (the default).
    """

    @property
    def classes(self) -> Sequence[str]: ...  # noqa: D102

    @property
    def colors(self) -> Sequence[Sequence[int]]: ...  # noqa: D102

    @property
    def bands(self) -> Sequence[int] | None: ...  # noqa: D102

    @property
    def gsd(self) -> float | None: ...  # noqa: D102

    @property
    def scale(self) -> float | Sequence[float]: ...  # noqa: D102

    @property
    def band_names(self) -> Sequence[str] | None: ...  # noqa: D102


#: The members of :class:`DataModuleMetadata` and the value a task assumes where a datamodule lacks one.
DATAMODULE_METADATA_DEFAULTS: dict[str, Any] = {
    "classes": None,
    "colors": None,
    "bands": None,
    "gsd": None,
    "scale": 255.0,
    "band_names": None,
}


def datamodule_metadata(datamodule: object) -> dict[str, Any]:
    """Read the :class:`DataModuleMetadata` members of ``datamodule`` (None: no datamodule).

    Returns:
        ``{"classes", "colors", "bands", "gsd", "scale", "band_names"}``, with the default of
        :data:`DATAMODULE_METADATA_DEFAULTS` for each member the datamodule does not have.
    """
    return {
        name: getattr(datamodule, name, default) for name, default in DATAMODULE_METADATA_DEFAULTS.items()
    }


#: Raster tag holding the class names of a class map as a JSON list (dataset and band 1).
CLASS_NAMES_TAG = "CLASS_NAMES"


def class_name_tags(classes: list[str]) -> dict[str, str]:
    """Tags that name the classes of a class-map band: ``CLASS_NAMES`` (JSON list) and ``CLASS_<i>``."""
    return {CLASS_NAMES_TAG: json.dumps(list(classes)), **{f"CLASS_{i}": c for i, c in enumerate(classes)}}


def classes_from_tags(*tag_sets: dict[str, str]) -> dict[int, str] | None:
    """Class names from raster tags written by s5geo (or by hand), first match wins.

    Understands ``CLASS_NAMES`` / ``classes`` / ``class_names`` as a JSON list or ``{id: name}`` object,
    the ``s5geo`` model-metadata JSON, and ``CLASS_<i>`` tags.

    Args:
        tag_sets: tag dicts to look through in order (e.g. band tags, then dataset tags).
    """
    for tags in tag_sets:
        for key in (CLASS_NAMES_TAG, "classes", "class_names", "S5GEO_CLASSES", METADATA_KEY):
            if key not in tags:
                continue
            try:
                value = json.loads(tags[key])
            except json.JSONDecodeError:
                continue
            if key == METADATA_KEY and isinstance(value, dict):
                value = value.get("classes")
            if isinstance(value, list):
                return {i: str(name) for i, name in enumerate(value)}
            if isinstance(value, dict):
                try:
                    return {int(k): str(v) for k, v in value.items()}
                except ValueError:
                    continue
        numbered = {int(k[6:]): v for k, v in tags.items() if k.startswith("CLASS_") and k[6:].isdigit()}
        if numbered:
            return numbered
    return None
