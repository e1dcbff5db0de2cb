"""Normalise and pad windows, and predict in-memory images with sliding windows (numpy only)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from s5geo.metadata import ModelMetadata
from s5geo.runtime.tiling import BlendMode, StreamingStitcher, WindowGrid, iter_windows


def normalise(raw: np.ndarray, valid: np.ndarray, metadata: ModelMetadata) -> np.ndarray:
    """Normalise raw windows with the metadata mean/std; invalid pixels become 0 (the mean).

    Args:
        raw: ``B x C x h x w`` (or ``C x h x w``) raw pixel values.
        valid: boolean ``B x h x w`` (or ``h x w``) mask of pixels with data.
        metadata: model metadata (mean and std in raw units, one per band).

    Returns:
        float32 array of the same shape as ``raw``.
    """
    mean = np.asarray(metadata.mean, dtype=np.float32)[:, None, None]
    scale = 1.0 / np.asarray(metadata.std, dtype=np.float32)[:, None, None]
    x = raw - mean if raw.dtype != np.float32 else np.subtract(raw, mean, out=raw)
    x = np.multiply(x, scale, out=x, dtype=np.float32) if x.dtype == np.float32 else x * scale
    if not valid.all():
        x *= np.expand_dims(valid, -3)
        x[~np.isfinite(x)] = 0.0
    return x.astype(np.float32, copy=False)


def pad_to(batch: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad a ``B x C x h x w`` batch at the bottom/right to ``height x width`` by reflection."""
    ph, pw = height - batch.shape[-2], width - batch.shape[-1]
    if ph <= 0 and pw <= 0:
        return batch
    mode = "reflect" if min(batch.shape[-2:]) > 1 else "edge"
    return np.pad(batch, ((0, 0), (0, 0), (0, max(ph, 0)), (0, max(pw, 0))), mode=mode)


def predict_array(
    image: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
    metadata: ModelMetadata,
    *,
    valid: np.ndarray | None = None,
    window_size: int | None = None,
    overlap: float | None = None,
    blend: BlendMode = "cosine",
    batch_size: int = 4,
) -> np.ndarray:
    """Predict class probabilities for an in-memory ``C x H x W`` image with sliding windows.

    Args:
        image: raw pixel values (bands already selected).
        predict: batch predictor (normalised ``B x C x h x w`` -> scores ``B x K x h x w``).
        metadata: model metadata (normalisation, default window and overlap).
        valid: optional ``H x W`` mask of pixels with data.
        window_size: window side (default: metadata).
        overlap: overlap fraction (default: metadata).
        blend: blend mode.
        batch_size: windows per forward.

    Returns:
        float32 ``K x H x W`` blended scores (logits or probabilities, as ``predict`` returns).
    """
    _, height, width = image.shape
    window = int(window_size or metadata.window_size)
    grid = WindowGrid(height, width, window, metadata.overlap if overlap is None else overlap)
    if valid is None:
        valid = np.ones((height, width), dtype=bool)
    out = np.empty((0, height, width), dtype=np.float32)
    stitcher: StreamingStitcher | None = None
    windows = iter_windows(grid)
    while chunk := list(itertools.islice(windows, batch_size)):
        raw = np.stack([image[:, w.row : w.row + w.height, w.col : w.col + w.width] for w in chunk])
        ok = np.stack([valid[w.row : w.row + w.height, w.col : w.col + w.width] for w in chunk])
        x = pad_to(normalise(raw.astype(np.float32), ok, metadata), window, window)
        probs = predict(x)[:, :, : grid.window_height, : grid.window_width].astype(np.float32)
        if stitcher is None:
            stitcher = StreamingStitcher(grid, probs.shape[1], blend)
            out = np.empty((probs.shape[1], height, width), dtype=np.float32)
        for w, p, mask in zip(chunk, probs, ok, strict=True):
            for block in stitcher.add(w, p, mask):
                _, h, bw = block.data.shape
                out[:, block.row : block.row + h, block.col : block.col + bw] = block.data
    return out
