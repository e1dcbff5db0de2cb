"""Model metadata shared by training, inference, ONNX export and the QGIS plugin.

This module must not import torch: the QGIS plugin uses it in a Python that only has numpy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from s5geo._version import __version__

#: Metadata key under which the JSON document is stored (ONNX ``metadata_props``, checkpoints).
METADATA_KEY = "s5geo"


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
            raise ValueError(
                f"metadata has {len(self.classes)} classes but {len(self.colors)} colours"
            )
        if not (len(self.bands) == len(self.mean) == len(self.std)):
            raise ValueError("metadata bands, mean and std must have the same length")
        if any(s <= 0 for s in self.std):
            raise ValueError("metadata std values must be positive")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"metadata overlap must be in [0, 1), got {self.overlap}")

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
