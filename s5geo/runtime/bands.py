"""Which raster bands feed the model (numpy-free checks shared by the CLI and the QGIS plugin)."""

from __future__ import annotations

from collections.abc import Sequence

from s5geo.errors import S5GeoError
from s5geo.metadata import ModelMetadata


def select_bands(
    metadata: ModelMetadata, band_count: int, bands: Sequence[int] | None, name: str
) -> list[int]:
    """Return the 1-based raster bands that feed the model inputs, in model order.

    A band may be listed more than once (e.g. ``1, 1, 1`` feeds a grey raster to an RGB model).

    Args:
        metadata: model metadata (its ``bands`` are the default).
        band_count: number of bands of the raster.
        bands: model input ``i`` reads raster band ``bands[i]``; None or empty: the metadata's.
        name: raster name for messages.

    Raises:
        S5GeoError: the number of bands does not match the model, or a band does not exist.
    """
    chosen = [int(b) for b in bands] if bands else list(metadata.bands)
    if len(chosen) != metadata.in_channels:
        raise S5GeoError(f"model expects {metadata.in_channels} bands but {len(chosen)} were selected")
    bad = [b for b in chosen if not 1 <= b <= band_count]
    if bad:
        raise S5GeoError(f"{name}: has {band_count} bands; cannot read band(s) {bad}")
    return chosen
