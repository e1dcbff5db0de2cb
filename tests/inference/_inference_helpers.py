"""Tiny rasters and models for the inference tests."""

from __future__ import annotations

import torch
from raster_helpers import write_raster as write_raster
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
