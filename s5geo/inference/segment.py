"""Segment a raster of any size into a georeferenced land-cover map.

Windows are read block by block, predicted in batches and stitched by
:class:`~s5geo.inference.tiling.StreamingStitcher`, whose memory does not grow with the raster's
height. Finished tiles are written whole to tiled, compressed, sparse GeoTIFFs (``SPARSE_OK``): a
tile without any valid pixel is never written and reads back as nodata. For a VRT whose bands have
a nodata value, the areas outside its sources are skipped in bulk, so a huge mosaic that is mostly
empty costs what its data costs. Outputs go to temporary files in the destination folder and are
renamed only when complete.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window as RioWindow
from tqdm.auto import tqdm

from s5geo.errors import OutputExistsError, S5GeoError
from s5geo.inference.files import (
    available_memory,
    check_image_complete,
    check_not_input,
    check_writable_folder,
    free_disk,
    human_bytes,
    remove_stale_temps,
    temp_name,
)
from s5geo.metadata import ModelMetadata
from s5geo.runtime.bands import (
    bands_from_names,
    data_warning,
    rescale,
    resolution_warning,
    select_bands,
)
from s5geo.runtime.outputs import OUTPUT_TILE, OutputSpec, output_specs, output_tile_size
from s5geo.runtime.pipeline import segment_windows
from s5geo.runtime.predictor import Predictor, check_precision, fixed_precision
from s5geo.runtime.tiling import BLEND_MODES, BlendMode, RegionTest, Window, WindowGrid

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger("s5geo.inference")

ProbabilityDtype = Literal["uint8", "float16"]

#: GDAL block cache in bytes while segmenting, unless GDAL_CACHEMAX is set. rasterio passes an
#: integer to GDAL as bytes (and refuses strings such as "512MB"); a cache of a few bytes makes
#: compressed formats (JPEG2000) decode every block again for every window.
DEFAULT_GDAL_CACHEMAX = 512 * 1024 * 1024
_TILE = OUTPUT_TILE
#: Block size of the COGs written with ``cog=True``; rasters that need larger tiles are too large
#: for a COG with overviews and stay tiled GeoTIFFs.
_COG_BLOCK = 512


def segment_raster(
    input: str | Path,
    model: Predictor | nn.Module | str | Path,
    output: str | Path,
    *,
    metadata: ModelMetadata | None = None,
    bands: list[int] | None = None,
    window_size: int | None = None,
    overlap: float | None = None,
    batch_size: int = 4,
    blend: BlendMode = "cosine",
    device: str = "auto",
    precision: str = "fp32",
    probabilities: ProbabilityDtype | None = None,
    probabilities_path: str | Path | None = None,
    confidence: bool | str | Path | None = None,
    overwrite: bool = False,
    cog: bool = False,
    progress: bool = True,
    nodata: int = 255,
    scale: float | list[float] | None = None,
) -> Path:
    """Segment ``input`` with ``model`` and write a georeferenced class map to ``output``.

    Args:
        input: any raster GDAL opens (GeoTIFF, COG, VRT, JPEG2000, ...).
        model: s5geo checkpoint path, ``nn.Module`` (with ``metadata``) or :class:`Predictor`.
        output: GeoTIFF to write (uint8 classes, colour table, class names, ``nodata`` where the
            input has none).
        metadata: model metadata; overrides the one stored with the model.
        bands: 1-based input bands in model order (default: the raster bands whose descriptions
            are the model's ``band_names``, case-insensitive, else the metadata's ``bands``).
        window_size: window side in pixels (default: metadata).
        overlap: overlap fraction between windows (default: metadata).
        batch_size: windows per forward pass.
        blend: ``none`` (each pixel from the window with the nearest centre), ``linear``,
            ``cosine``.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``...
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast for PyTorch models (faster on GPUs
            with tensor cores; blending and outputs stay float32).
        probabilities: also write per-class probabilities as ``uint8`` (0-255) or ``float16``.
        probabilities_path: where (default ``<output stem>_probabilities.tif``).
        confidence: also write the top-class probability (uint8 1-255, nodata 0); ``True`` writes
            ``<output stem>_confidence.tif``, a path writes there.
        overwrite: replace existing outputs instead of raising :class:`OutputExistsError`.
        cog: write Cloud Optimized GeoTIFFs (with overviews). Rasters too large for 512 px COG
            tiles (more than :data:`~s5geo.runtime.outputs.MAX_TILES` of them, beyond about
            524,000 px square) are written as tiled, sparse GeoTIFFs without overviews instead,
            with a warning.
        progress: show a progress bar.
        nodata: class-map value for pixels without data (must not be a class id).
        scale: the raster's value for full brightness / reflectance 1 (e.g. 10000 for Sentinel-2
            L2A), one value or one per band: raw values are mapped to the model's range first.
            Without it, a 16-bit raster into a model trained on 8-bit imagery is warned about.

    Returns:
        The path of the class map.
    """
    if blend not in BLEND_MODES:
        raise S5GeoError(f"unknown blend mode {blend!r}; expected one of {', '.join(BLEND_MODES)}")
    if probabilities not in (None, "uint8", "float16"):
        raise S5GeoError(f"probabilities must be 'uint8' or 'float16', got {probabilities!r}")
    if batch_size < 1:
        raise S5GeoError(f"batch size must be positive, got {batch_size}")
    check_precision(precision, fixed_precision(model))
    output = Path(output)
    targets: dict[str, Path] = {"classes": output}
    if probabilities is not None:
        targets["probabilities"] = Path(
            probabilities_path or output.with_name(f"{output.stem}_probabilities.tif")
        )
    if confidence:
        targets["confidence"] = (
            output.with_name(f"{output.stem}_confidence.tif") if confidence is True else Path(confidence)
        )
    source = str(input)
    local = "://" not in source and not source.startswith("/vsi")
    if local and not Path(source).exists():
        raise S5GeoError(f"input raster {source!r} not found")
    if len(set(map(str, targets.values()))) != len(targets):
        raise S5GeoError(f"outputs {', '.join(map(str, targets.values()))} must be different files")
    for path in targets.values():
        if local:
            check_not_input(path, [source])
        if path.exists() and not overwrite:
            raise OutputExistsError(f"output {str(path)!r} exists (use overwrite to replace it)")
        if path.is_dir():
            raise S5GeoError(f"output {str(path)!r} is a folder")
        check_writable_folder(path.parent)
        for stale in remove_stale_temps(path):
            logger.info("removed %s, left by an interrupted run", stale)
    if local:
        check_image_complete(source)

    env: dict[str, Any] = {}
    if "GDAL_CACHEMAX" not in os.environ:
        env["GDAL_CACHEMAX"] = DEFAULT_GDAL_CACHEMAX
    with rasterio.Env(**env), warnings.catch_warnings():
        # Said once, in words, below: rasterio repeats it for every dataset it opens.
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            src = rasterio.open(source)
        except RasterioError as error:
            raise S5GeoError(f"cannot open input raster {source!r}: {error}") from error
        with src:
            _check_sources(src, source)
            for path in targets.values():
                if local:
                    _check_not_a_source(path, src)
            predictor = _make_predictor(model, metadata, device, precision)
            if scale is not None:
                predictor.metadata = rescale(predictor.metadata, scale)
            logger.info("segmenting %s on %s", source, predictor.device_name)
            _warn_not_georeferenced(src, source)
            if not bands:
                bands = _bands_from_names(predictor.metadata, src, source)
            job = _Job(src, predictor, targets, bands, window_size, overlap, batch_size, blend)
            job.check(nodata)
            dtypes = [src.dtypes[b - 1] for b in job.bands]
            for warning in (
                data_warning(job.meta, dtypes, source),
                resolution_warning(job.meta, _pixel_metres(src), source),
            ):
                if warning:
                    logger.warning("%s", warning)
            job.check_resources(probabilities)
            if cog and job.tile > _COG_BLOCK:
                logger.warning(
                    "%s: %d x %d pixels is too large for a Cloud Optimized GeoTIFF; writing tiled, "
                    "sparse GeoTIFFs (%d px tiles) without overviews instead",
                    source,
                    src.width,
                    src.height,
                    job.tile,
                )
                cog = False
            temps = {key: _temp_path(path) for key, path in targets.items()}
            made = list(temps.values())
            try:
                job.run(temps, probabilities, nodata, progress)
                if cog:
                    for key in list(temps):
                        cog_path = _temp_path(targets[key])
                        made.append(cog_path)
                        half = key == "probabilities" and probabilities == "float16"
                        _to_cog(temps[key], cog_path, nearest=key == "classes", half=half)
                        temps[key].unlink()
                        temps[key] = cog_path
                for key, temp in temps.items():
                    os.replace(temp, targets[key])
            except BaseException as error:
                for temp in made:
                    _remove(temp)
                if isinstance(error, (RasterioError, OSError)) and not isinstance(error, S5GeoError):
                    raise S5GeoError(f"cannot write {output}: {_first_line(error)}") from error
                raise
    return output


def _bands_from_names(metadata: ModelMetadata, src: Any, source: str) -> list[int] | None:
    """The raster bands named like the model's bands, in model order (None: no match); logged."""
    matched = bands_from_names(metadata.band_names, src.descriptions)
    if matched is not None:
        logger.info(
            "bands %s of %s, from their descriptions (the model reads %s)",
            ", ".join(map(str, matched)),
            source,
            ", ".join(metadata.band_names or ()),
        )
    return matched


def _make_predictor(model: Any, metadata: ModelMetadata | None, device: str, precision: str) -> Predictor:
    """Wrap ``model`` into a predictor; ONNX files and predictors never import torch."""
    if isinstance(model, (str, Path)) and Path(model).suffix.lower() == ".onnx":
        from s5geo.runtime.onnx import OnnxPredictor

        return OnnxPredictor(model, metadata, device=device)
    if isinstance(model, Predictor):
        if metadata is not None:
            model.metadata = metadata
        return model
    from s5geo.inference.predictor import make_predictor

    return make_predictor(model, metadata, device=device, precision=precision)


def _temp_path(final: Path) -> Path:
    return temp_name(final)


def _check_sources(src: Any, source: str) -> None:
    """Raise when a file the dataset reads from (e.g. a VRT's source) is missing."""
    try:
        files = list(src.files)
    except RasterioError:
        return
    for name in files[1:]:
        if "://" in name or name.startswith("/vsi") or name.endswith((".aux.xml", ".ovr", ".msk")):
            continue
        if not Path(name).exists():
            raise S5GeoError(f"{source}: source file {name!r} is missing")


def _check_not_a_source(output: Path, src: Any) -> None:
    """An output must not be one of the files a VRT input reads."""
    with contextlib.suppress(RasterioError):
        check_not_input(output, [f for f in src.files if Path(f).exists()])


def _pixel_metres(src: Any) -> float | None:
    """Pixel size in metres (geographic rasters: converted at the raster's centre latitude)."""
    crs = src.crs
    if crs is None:
        return None
    xres, yres = (abs(v) for v in src.res)
    if crs.is_geographic:
        lat = math.radians((src.bounds.top + src.bounds.bottom) / 2)
        return math.sqrt(xres * 111_320.0 * math.cos(lat) * yres * 110_574.0)
    try:
        factor = crs.linear_units_factor[1]
    except Exception:  # a CRS without linear units
        return None
    return math.sqrt(xres * yres) * factor


def _warn_not_georeferenced(src: Any, source: str) -> None:
    if src.crs is None and src.transform.is_identity:
        logger.warning(
            "%s has no CRS and no geotransform: the class map is written in pixel coordinates "
            "and will not line up with map layers",
            source,
        )
    elif src.crs is None:
        logger.warning("%s has no CRS: the class map is written without one", source)


def _remove(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + ".aux.xml"), path.with_suffix(".msk")):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()


def _to_cog(src_path: Path, dst_path: Path, *, nearest: bool, half: bool) -> None:
    options: dict[str, Any] = {
        "COMPRESS": "DEFLATE",
        "BLOCKSIZE": _COG_BLOCK,
        "BIGTIFF": "IF_SAFER",
        "SPARSE_OK": True,
    }
    if half:
        options["NBITS"] = 16
    if nearest:
        options["RESAMPLING"] = "NEAREST"
    rasterio.shutil.copy(str(src_path), str(dst_path), driver="COG", **options)


class _Job:
    """State of one segmentation run (input dataset, grid, predictor)."""

    def __init__(
        self,
        src: Any,
        predictor: Predictor,
        targets: dict[str, Path],
        bands: list[int] | None,
        window_size: int | None,
        overlap: float | None,
        batch_size: int,
        blend: BlendMode,
    ) -> None:
        self.src = src
        self.predictor = predictor
        self.meta = predictor.metadata
        self.targets = targets
        self.bands = [int(b) for b in (bands or self.meta.bands)]
        self.window = int(self.meta.window_size if window_size is None else window_size)
        overlap = self.meta.overlap if overlap is None else float(overlap)
        if not 0.0 <= overlap < 1.0:
            raise S5GeoError(f"overlap must be in [0, 1), got {overlap}")
        if self.window < 1:
            raise S5GeoError(f"window size must be positive, got {self.window}")
        self.grid = WindowGrid(src.height, src.width, self.window, overlap)
        self.batch_size = batch_size
        self.blend = blend
        self.tile = output_tile_size(src.height, src.width)
        # Skip mask reads when GDAL says every pixel of the selected bands is valid.
        flags = [src.mask_flag_enums[b - 1] for b in self.bands if 1 <= b <= src.count]
        self.masked = any(MaskFlags.all_valid not in f for f in flags)
        self.floating = any(
            np.issubdtype(np.dtype(src.dtypes[b - 1]), np.floating) for b in self.bands if 1 <= b <= src.count
        )
        self.regions = vrt_data_regions(src, [b for b in self.bands if 1 <= b <= src.count])

    def check(self, nodata: int) -> None:
        select_bands(self.meta, self.src.count, self.bands, self.src.name)
        output_specs(self.meta, ["classes"], nodata=nodata)

    def check_resources(self, probabilities: str | None) -> None:
        """Refuse early when the job cannot fit in memory or its outputs cannot fit on disk."""
        src, k = self.src, self.meta.num_classes
        prob_bytes = (
            0 if "probabilities" not in self.targets else k * (4 if probabilities == "float16" else 1)
        )
        per_pixel = 1 + prob_bytes + (1 if "confidence" in self.targets else 0)
        # Only the columns and pixels near data are held and written when the data regions are known.
        width, area = src.width, src.width * src.height
        if self.regions is not None:
            margin = 2 * (self.window + self.tile)
            width = min(width, sum(w + margin for _, _, _, w in self.regions))
            area = min(area, sum((h + margin) * (w + margin) for _, _, h, w in self.regions))
        wh = self.grid.window_height
        # Rows of windows held at once: the stitcher's carried rows plus the tiles being filled.
        memory = width * (2 * 4 * (k + 1) * wh + per_pixel * (2 * self.tile + wh))
        memory += 3 * self.batch_size * wh * self.grid.window_width * 4 * (len(self.bands) + k)
        free = available_memory()
        if free is not None and memory > free:
            raise S5GeoError(
                f"{src.name}: {src.width} x {src.height} pixels need about {human_bytes(memory)} of memory "
                f"for rows of {self.window}-pixel windows, but {human_bytes(free)} is available; "
                "use a smaller --window or split the raster"
            )
        # Deflate shrinks class maps at least ~10 times; beyond that, the run would fill the disk.
        total = area * per_pixel
        folder = next(iter(self.targets.values())).parent
        disk = free_disk(folder)
        if disk is not None and total / 10 > disk:
            raise S5GeoError(
                f"{src.name}: the outputs of {src.width} x {src.height} pixels would take about "
                f"{human_bytes(total)} uncompressed "
                f"({human_bytes(total / 10)} even at 10:1 compression) but {folder} has "
                f"{human_bytes(disk)} free"
            )

    def region_test(self) -> RegionTest | None:
        """The test of pixel regions for :func:`~s5geo.runtime.pipeline.segment_windows`, if known."""
        if self.regions is None:
            return None
        top, left, height, width = (np.array(v, dtype=np.int64) for v in zip(*self.regions, strict=True))
        bottom, right = top + height, left + width

        def test(row: int, col: int, h: int, w: int) -> bool:
            return bool(np.any((top < row + h) & (bottom > row) & (left < col + w) & (right > col)))

        return test

    # Reading and writing ------------------------------------------------------------------------

    def _read(self, window: Window, out: np.ndarray) -> np.ndarray:
        """Read the selected bands of ``window`` into ``out``; return its mask of valid pixels."""
        src = self.src
        rio_window = RioWindow(window.col, window.row, window.width, window.height)
        valid = np.ones((window.height, window.width), dtype=bool)
        try:
            src.read(self.bands, window=rio_window, out=out)
            if self.masked:
                masks = src.read_masks(self.bands, window=rio_window)
                valid = np.all(masks > 0, axis=0)
        except RasterioError as error:
            raise S5GeoError(
                f"{src.name}: cannot read pixels at row {window.row}, column {window.col} "
                f"(truncated or damaged file, or a missing source): {_first_line(error)}"
            ) from error
        if self.floating:
            valid &= np.all(np.isfinite(out), axis=0)
        return valid

    def _profile(self, spec: OutputSpec) -> dict[str, Any]:
        src = self.src
        tile = self.tile
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": src.width,
            "height": src.height,
            "count": spec.count,
            "dtype": spec.dtype,
            "crs": src.crs,
            "transform": src.transform,
            "nodata": spec.nodata,
            "compress": "deflate",
            "zlevel": 1,  # fast; --cog recompresses
            "BIGTIFF": "IF_SAFER",
            "SPARSE_OK": True,  # tiles never written read back as nodata
        }
        if spec.nbits:
            # Half floats on disk through GTiff's NBITS=16 on Float32 (rasterio has no float16).
            profile.update(NBITS=spec.nbits, predictor=3)
        if src.width >= _TILE and src.height >= _TILE:
            profile.update(tiled=True, blockxsize=tile, blockysize=tile)
        return profile

    def _open_outputs(self, temps: dict[str, Path], specs: dict[str, OutputSpec]) -> dict[str, Any]:
        datasets: dict[str, Any] = {}
        for key, spec in specs.items():
            dst = rasterio.open(temps[key], "w", **self._profile(spec))
            datasets[key] = dst
            if spec.colormap:
                dst.write_colormap(1, spec.colormap)
            for i, description in enumerate(spec.descriptions, start=1):
                dst.set_band_description(i, description)
            if spec.band_tags:
                dst.update_tags(1, **spec.band_tags)
            if spec.tags:
                dst.update_tags(**spec.tags)
        return datasets

    def run(self, temps: dict[str, Path], probabilities: str | None, nodata: int, progress: bool) -> None:
        """Predict every window and write the outputs to ``temps`` (see :mod:`s5geo.runtime.pipeline`)."""
        specs = output_specs(self.meta, list(temps), probabilities or "uint8", nodata)
        datasets = self._open_outputs(temps, specs)
        bar = tqdm(total=len(self.grid), desc="segment", unit="win", disable=not progress)
        first = next(iter(datasets.values()))
        tile_size = first.block_shapes[0]

        def write_tile(row: int, col: int, arrays: dict[str, np.ndarray]) -> None:
            for key, data in arrays.items():
                window = RioWindow(col, row, data.shape[2], data.shape[1])
                datasets[key].write(data, window=window)

        def advance(done: int, total: int) -> None:
            bar.update(done - bar.n)

        try:
            segment_windows(
                self.grid,
                self._read,
                self.predictor,
                specs,
                batch_size=self.batch_size,
                blend=self.blend,
                region_has_data=self.region_test(),
                write_tile=write_tile,
                tile_size=tile_size,
                progress=advance,
            )
        finally:
            bar.close()
            for ds in datasets.values():
                ds.close()


def vrt_data_regions(src: Any, bands: list[int]) -> list[tuple[int, int, int, int]] | None:
    """Pixel rectangles ``(row, col, height, width)`` outside which a VRT has no valid pixel.

    Outside its sources a VRT band reads as its nodata value, so where a selected band has one (and
    no mask of its own) no pixel outside that band's source rectangles is valid. The band whose
    sources cover the least is used.

    Args:
        src: the open rasterio dataset.
        bands: the selected 1-based bands.

    Returns:
        The rectangles, or None when the input is not such a VRT (or its layout is not understood).
    """
    if src.driver != "VRT":
        return None
    name = str(src.name)
    try:
        if name.lstrip().startswith("<VRTDataset"):
            root = ET.fromstring(name)
        elif Path(name).is_file():
            root = ET.parse(name).getroot()
        else:
            return None
    except (ET.ParseError, OSError):
        return None
    if root.tag != "VRTDataset" or root.get("subClass") or root.find("MaskBand") is not None:
        return None
    elements = root.findall("VRTRasterBand")
    best: list[tuple[int, int, int, int]] | None = None
    for band in bands:
        if MaskFlags.nodata not in src.mask_flag_enums[band - 1]:
            continue
        element = next((e for e in elements if e.get("band") == str(band)), None)
        if element is None and band <= len(elements) and elements[band - 1].get("band") is None:
            element = elements[band - 1]
        if element is None:
            continue
        rects = _source_rects(element, src.height, src.width)
        if rects is not None and (best is None or _area(rects) < _area(best)):
            best = rects
    return best


def _source_rects(band: ET.Element, height: int, width: int) -> list[tuple[int, int, int, int]] | None:
    """The destination rectangles of a plain VRT band's sources, clipped to the raster (None: unknown)."""
    if band.get("subClass") not in (None, "VRTSourcedRasterBand") or band.find("MaskBand") is not None:
        return None
    rects = []
    for source in band:
        if not source.tag.endswith("Source"):
            continue
        dst = source.find("DstRect")
        if dst is None:
            return None
        try:
            x, y = float(dst.get("xOff", "")), float(dst.get("yOff", ""))
            w, h = float(dst.get("xSize", "")), float(dst.get("ySize", ""))
        except ValueError:
            return None
        top, left = max(0, math.floor(y)), max(0, math.floor(x))
        bottom, right = min(height, math.ceil(y + h)), min(width, math.ceil(x + w))
        if bottom > top and right > left:
            rects.append((top, left, bottom - top, right - left))
    return rects


def _area(rects: list[tuple[int, int, int, int]]) -> int:
    return sum(h * w for _, _, h, w in rects)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
