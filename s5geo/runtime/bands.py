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


def bands_from_names(
    band_names: Sequence[str] | None, descriptions: Sequence[str | None]
) -> list[int] | None:
    """Return the raster bands whose descriptions are the model's band names, in model order.

    Names match case-insensitively, ignoring surrounding spaces (``Red`` is ``red``).

    Args:
        band_names: the model's band names (``ModelMetadata.band_names``), model input order.
        descriptions: the raster's band descriptions, band 1 first (None or empty: unnamed).

    Returns:
        1-based bands, or None when the model has no band names, one of them is not found, or a
        name describes two raster bands.
    """
    if not band_names:
        return None
    lookup: dict[str, int] = {}
    for index, text in enumerate(descriptions):
        key = str(text or "").strip().lower()
        if key:
            lookup[key] = -1 if key in lookup else index + 1
    found = [lookup.get(str(name).strip().lower(), 0) for name in band_names]
    if any(band < 1 for band in found) or len(set(found)) != len(found):
        return None
    return found


#: Value scale assumed for models whose metadata does not record one (all s5geo datamodules used 255).
DEFAULT_SCALE = 255.0
_EIGHT_BIT = ("uint8", "int8")
_WIDE_INTEGERS = ("uint16", "int16", "uint32", "int32")


def model_scale(metadata: ModelMetadata) -> list[float]:
    """Return the model's value scale per band (:data:`DEFAULT_SCALE` when not recorded)."""
    scale = metadata.scale
    if isinstance(scale, list):
        return [float(v) for v in scale]
    return [float(DEFAULT_SCALE if scale is None else scale)] * metadata.in_channels


def rescale(metadata: ModelMetadata, input_scale: float | Sequence[float]) -> ModelMetadata:
    """Return metadata that reads a raster whose full-brightness value is ``input_scale``.

    Raw values are multiplied by ``model scale / input_scale`` before the model's normalisation,
    which is the same as dividing its mean and std by that factor.

    Args:
        metadata: the model metadata.
        input_scale: the raster's value for full brightness / reflectance 1 (e.g. 10000 for
            Sentinel-2 L2A, 65535 for full-range 16-bit), one value or one per model band.

    Raises:
        S5GeoError: a non-positive scale or the wrong number of values.
    """
    values = (
        [float(input_scale)] if isinstance(input_scale, (int, float)) else [float(v) for v in input_scale]
    )
    if len(values) == 1:
        values *= metadata.in_channels
    if len(values) != metadata.in_channels or any(v <= 0 for v in values):
        raise S5GeoError(
            f"scale must be one positive value or one per model band ({metadata.in_channels}), got {values}"
        )
    factors = [m / v for m, v in zip(model_scale(metadata), values, strict=True)]
    data = metadata.to_dict()
    data["mean"] = [m / f for m, f in zip(metadata.mean, factors, strict=True)]
    data["std"] = [s / f for s, f in zip(metadata.std, factors, strict=True)]
    data["scale"] = values if len(set(values)) > 1 else values[0]
    return ModelMetadata.from_dict(data)


def data_warning(metadata: ModelMetadata, dtypes: Sequence[str], name: str) -> str | None:
    """One line when the raster's data type does not fit the model's value range, else None.

    The clear case is 16/32-bit integers (Sentinel-2 reflectance, 16-bit aerials) fed to a model
    trained on 8-bit imagery: normalised with 8-bit statistics, such a raster gives a confident but
    meaningless map. The model's range comes from its recorded ``dtype``/``scale`` (255 when not
    recorded).

    Args:
        metadata: the model metadata (after any :func:`rescale`).
        dtypes: numpy data type names of the selected raster bands.
        name: raster name for the message.
    """
    wide = sorted({d for d in dtypes if d in _WIDE_INTEGERS})
    eight_bit = max(model_scale(metadata)) <= DEFAULT_SCALE and metadata.dtype in (*_EIGHT_BIT, None)
    if not wide or not eight_bit:
        return None
    return (
        f"{name} is {'/'.join(wide)} but the model was trained on 8-bit imagery (0-255), so the map "
        "would be wrong; pass the raster's full-brightness value as scale (e.g. --scale 10000 for "
        "Sentinel-2 reflectance, --scale 65535 for full-range 16-bit)"
    )


def resolution_warning(metadata: ModelMetadata, pixel_m: float | None, name: str) -> str | None:
    """One line when the pixel size (metres) is far from the model's GSD, else None.

    Args:
        metadata: the model metadata (``gsd`` None: no check).
        pixel_m: the raster's pixel size in metres (for geographic rasters, converted from degrees
            at the raster's latitude), None if unknown.
        name: raster name for the message.
    """
    gsd = metadata.gsd
    if not gsd or not pixel_m or 0.67 <= pixel_m / gsd <= 1.5:
        return None
    return (
        f"{name} has {pixel_m:.3g} m pixels but the model was trained at {gsd:.3g} m, so results may "
        "be poor; resample the raster first (e.g. gdalwarp -tr)"
    )
