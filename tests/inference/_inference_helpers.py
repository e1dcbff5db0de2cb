"""Tiny rasters and models for the inference tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import Affine, from_origin
from torch import nn

from s5geo.metadata import ModelMetadata

NUM_CLASSES = 4


class IdentityModel(nn.Module):
    """Logits = one-hot of the class id encoded in band 1 (raw value = class id, mean 0, std 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        classes = torch.round(x[:, 0]).long().clamp(0, NUM_CLASSES - 1)
        return nn.functional.one_hot(classes, NUM_CLASSES).permute(0, 3, 1, 2).float() * 10


def make_metadata(window: int = 32, overlap: float = 0.25, bands: int = 1) -> ModelMetadata:
    return ModelMetadata(
        classes=[f"class{i}" for i in range(NUM_CLASSES)],
        colors=[(10 * i, 20 * i, 30 * i) for i in range(NUM_CLASSES)],
        bands=list(range(1, bands + 1)),
        mean=[0.0] * bands,
        std=[1.0] * bands,
        window_size=window,
        overlap=overlap,
    )


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str = "EPSG:32119",
    transform: Affine | None = None,
    nodata: float | None = None,
) -> Path:
    data = data if data.ndim == 3 else data[None]
    transform = transform or from_origin(600_000.0, 250_000.0, 28.5, 28.5)
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype=data.dtype, crs=crs, transform=transform, nodata=nodata,
    ) as dst:
        dst.write(data)
    return path
