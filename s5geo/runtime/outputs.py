"""The output kinds of a segmentation run and how scores are encoded into them (numpy only).

One definition for the CLI, the Python API and the QGIS plugin:

- ``classes``: uint8 class ids, ``nodata`` (255) where no window had data; colour table (nodata
  transparent), band description ``class``, class names as band tags (``CLASS_NAMES``,
  ``CLASS_<i>``) and category names, the model metadata as dataset tag ``s5geo``.
- ``confidence``: uint8 top-class probability times 255 in ``[1, 255]``, 0 = nodata, tag
  ``SCALE=1/255``.
- ``probabilities``: one band per class, uint8 (``SCALE=1/255``, 0 where no data) or float16
  stored as 16-bit floats (NaN where no data), band descriptions = class names.

Writers (rasterio in ``s5geo segment``, GDAL in the plugin) apply an :class:`OutputSpec` and write
the arrays :func:`encode` returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from s5geo.errors import S5GeoError
from s5geo.metadata import CLASS_NAMES_TAG, METADATA_KEY, ModelMetadata, class_name_tags
from s5geo.runtime.tiling import argmax, softmax

#: Output kinds, in the order they are written.
OUTPUT_KINDS = ("classes", "probabilities", "confidence")
#: Class-map value where the input has no data.
CLASS_NODATA = 255
#: Confidence value where the input has no data.
CONFIDENCE_NODATA = 0
PROBABILITY_DTYPES = ("uint8", "float16")


@dataclass
class OutputSpec:
    """How one output raster is written: type, nodata, descriptions, tags and colours.

    Attributes:
        kind: ``classes``, ``probabilities`` or ``confidence``.
        count: number of bands.
        dtype: numpy/GDAL data type name on disk (``uint8`` or ``float32``).
        nodata: nodata value (None: none).
        descriptions: one band description per band.
        tags: dataset tags.
        band_tags: tags of band 1.
        colormap: ``{value: (r, g, b, a)}`` colour table of band 1, or None.
        category_names: GDAL category names of band 1 (index = value), or None.
        nbits: bits per sample when smaller than the data type (16 for float16), or None.
    """

    kind: str
    count: int
    dtype: str
    nodata: float | None
    descriptions: list[str]
    tags: dict[str, str] = field(default_factory=dict)
    band_tags: dict[str, str] = field(default_factory=dict)
    colormap: dict[int, tuple[int, int, int, int]] | None = None
    category_names: list[str] | None = None
    nbits: int | None = None


def output_specs(
    metadata: ModelMetadata,
    kinds: list[str],
    probabilities: str = "uint8",
    nodata: int = CLASS_NODATA,
) -> dict[str, OutputSpec]:
    """Return the :class:`OutputSpec` of each requested output kind.

    Args:
        metadata: model metadata (classes, colours).
        kinds: subset of :data:`OUTPUT_KINDS`; ``classes`` is always written.
        probabilities: ``uint8`` or ``float16`` (probabilities output only).
        nodata: class-map nodata value (not a class id, at most 255).

    Raises:
        S5GeoError: a bad kind, probability type or nodata value.
    """
    k = metadata.num_classes
    if k > 255:
        raise S5GeoError(f"{k} classes do not fit a uint8 class map")
    if not 0 <= nodata <= 255 or nodata < k:
        raise S5GeoError(f"nodata {nodata} must be in [{k}, 255]")
    unknown = [kind for kind in kinds if kind not in OUTPUT_KINDS]
    if unknown:
        raise S5GeoError(f"unknown output kind(s) {unknown}; expected {', '.join(OUTPUT_KINDS)}")
    if probabilities not in PROBABILITY_DTYPES:
        raise S5GeoError(f"probabilities must be 'uint8' or 'float16', got {probabilities!r}")
    classes_tag = json.dumps(metadata.classes)
    colormap = {i: (*metadata.colors[i], 255) for i in range(k)}
    colormap[nodata] = (0, 0, 0, 0)
    specs = {
        "classes": OutputSpec(
            "classes",
            1,
            "uint8",
            nodata,
            ["class"],
            tags={METADATA_KEY: metadata.to_json(), CLASS_NAMES_TAG: classes_tag},
            band_tags=class_name_tags(metadata.classes),
            colormap=colormap,
            category_names=list(metadata.classes),
        )
    }
    if "probabilities" in kinds:
        half = probabilities == "float16"
        specs["probabilities"] = OutputSpec(
            "probabilities",
            k,
            "float32" if half else "uint8",
            float("nan") if half else None,
            list(metadata.classes),
            tags={CLASS_NAMES_TAG: classes_tag, "SCALE": "1" if half else "1/255"},
            nbits=16 if half else None,
        )
    if "confidence" in kinds:
        specs["confidence"] = OutputSpec(
            "confidence", 1, "uint8", CONFIDENCE_NODATA, ["confidence"], tags={"SCALE": "1/255"}
        )
    return specs


def encode(
    scores: np.ndarray,
    valid: np.ndarray,
    specs: dict[str, OutputSpec],
    logits: bool = True,
) -> dict[str, np.ndarray]:
    """Encode blended ``K x h x w`` scores into the arrays of each output (``bands x h x w``).

    Args:
        scores: blended logits (``logits``) or probabilities.
        valid: ``h x w`` pixels that had data in at least one window.
        specs: the outputs (:func:`output_specs`).
        logits: whether ``scores`` are logits (a softmax gives the probabilities).
    """
    out: dict[str, np.ndarray] = {}
    classes = argmax(scores)
    if not valid.all():
        classes[~valid] = np.uint8(specs["classes"].nodata)
    out["classes"] = classes[None]
    if len(specs) == 1:
        return out
    probs = softmax(scores) if logits else scores
    if "confidence" in specs:
        conf = np.clip(np.rint(probs.max(axis=0) * 255), 1, 255).astype(np.uint8)
        conf[~valid] = CONFIDENCE_NODATA
        out["confidence"] = conf[None]
    if "probabilities" in specs:
        if specs["probabilities"].dtype == "uint8":
            scaled = np.rint(probs * 255).astype(np.uint8)
            scaled[:, ~valid] = 0
        else:
            scaled = probs.astype(np.float16).astype(np.float32)
            scaled[:, ~valid] = np.nan
        out["probabilities"] = scaled
    return out


#: Smallest tile side of the output GeoTIFFs.
OUTPUT_TILE = 256
#: Most tiles an output GeoTIFF gets: libtiff holds two 8-byte offsets per tile in memory while
#: writing (a 2,000,000 px square in 256 px tiles would need 1 GB for them). Larger rasters get
#: larger tiles (512, 1024, ... px).
MAX_TILES = 2**20


def output_tile_size(height: int, width: int) -> int:
    """Tile side of the output GeoTIFFs: 256 px, doubled until the raster has at most :data:`MAX_TILES`."""
    tile = OUTPUT_TILE
    while -(-height // tile) * -(-width // tile) > MAX_TILES:
        tile *= 2
    return tile
