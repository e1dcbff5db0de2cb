"""Segment a raster of any size into a georeferenced land-cover map.

Windows are read block by block, predicted in batches and stitched by
:class:`~s5geo.inference.tiling.StreamingStitcher`, whose memory does not grow with the raster's
height. Finished rows are written to tiled, compressed GeoTIFFs in whole tile rows, so GDAL never
holds partially written tiles. Outputs go to temporary files in the destination folder and are
renamed only when complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window as RioWindow
from torch import nn
from tqdm.auto import tqdm

from s5geo.errors import OutputExistsError, S5GeoError
from s5geo.inference.arrays import normalise, pad_to
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
from s5geo.inference.predictor import Predictor, make_predictor
from s5geo.inference.tiling import (
    BLEND_MODES,
    BlendMode,
    StreamingStitcher,
    Window,
    WindowGrid,
    argmax,
    softmax,
)
from s5geo.metadata import CLASS_NAMES_TAG, METADATA_KEY, ModelMetadata, class_name_tags

logger = logging.getLogger("s5geo.inference")

ProbabilityDtype = Literal["uint8", "float16"]

#: GDAL block cache in bytes while segmenting, unless GDAL_CACHEMAX is set. rasterio passes an
#: integer to GDAL as bytes (and refuses strings such as "512MB"); a cache of a few bytes makes
#: compressed formats (JPEG2000) decode every block again for every window.
DEFAULT_GDAL_CACHEMAX = 512 * 1024 * 1024
_TILE = 256


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
    probabilities: ProbabilityDtype | None = None,
    probabilities_path: str | Path | None = None,
    confidence: bool | str | Path | None = None,
    overwrite: bool = False,
    cog: bool = False,
    progress: bool = True,
    nodata: int = 255,
) -> Path:
    """Segment ``input`` with ``model`` and write a georeferenced class map to ``output``.

    Args:
        input: any raster GDAL opens (GeoTIFF, COG, VRT, JPEG2000, ...).
        model: s5geo checkpoint path, ``nn.Module`` (with ``metadata``) or :class:`Predictor`.
        output: GeoTIFF to write (uint8 classes, colour table, class names, ``nodata`` where the
            input has none).
        metadata: model metadata; overrides the one stored with the model.
        bands: 1-based input bands in model order (default: the metadata's).
        window_size: window side in pixels (default: metadata).
        overlap: overlap fraction between windows (default: metadata).
        batch_size: windows per forward pass.
        blend: ``none`` (each pixel from the window with the nearest centre), ``linear``,
            ``cosine``.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``...
        probabilities: also write per-class probabilities as ``uint8`` (0-255) or ``float16``.
        probabilities_path: where (default ``<output stem>_probabilities.tif``).
        confidence: also write the top-class probability (uint8 1-255, nodata 0); ``True`` writes
            ``<output stem>_confidence.tif``, a path writes there.
        overwrite: replace existing outputs instead of raising :class:`OutputExistsError`.
        cog: write Cloud Optimized GeoTIFFs (with overviews).
        progress: show a progress bar.
        nodata: class-map value for pixels without data (must not be a class id).

    Returns:
        The path of the class map.
    """
    if blend not in BLEND_MODES:
        raise S5GeoError(f"unknown blend mode {blend!r}; expected one of {', '.join(BLEND_MODES)}")
    if probabilities not in (None, "uint8", "float16"):
        raise S5GeoError(f"probabilities must be 'uint8' or 'float16', got {probabilities!r}")
    if batch_size < 1:
        raise S5GeoError(f"batch size must be positive, got {batch_size}")
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
            predictor = make_predictor(model, metadata, device=device)
            logger.info("segmenting %s on %s", source, predictor.device_name)
            _warn_not_georeferenced(src, source)
            job = _Job(src, predictor, targets, bands, window_size, overlap, batch_size, blend)
            job.check(nodata)
            job.check_resources(probabilities)
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
    options: dict[str, Any] = {"COMPRESS": "DEFLATE", "BLOCKSIZE": 512, "BIGTIFF": "IF_SAFER"}
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
        # Skip mask reads when GDAL says every pixel of the selected bands is valid.
        flags = [src.mask_flag_enums[b - 1] for b in self.bands if 1 <= b <= src.count]
        self.masked = any(MaskFlags.all_valid not in f for f in flags)
        self.floating = any(
            np.issubdtype(np.dtype(src.dtypes[b - 1]), np.floating) for b in self.bands if 1 <= b <= src.count
        )

    def check(self, nodata: int) -> None:
        name = self.src.name
        if len(self.bands) != self.meta.in_channels:
            raise S5GeoError(
                f"model expects {self.meta.in_channels} bands but {len(self.bands)} were selected"
            )
        bad = [b for b in self.bands if not 1 <= b <= self.src.count]
        if bad:
            raise S5GeoError(f"{name}: has {self.src.count} bands; cannot read band(s) {bad}")
        if not 0 <= nodata <= 255 or nodata < self.meta.num_classes:
            raise S5GeoError(f"nodata {nodata} must be in [{self.meta.num_classes}, 255]")
        if self.meta.num_classes > 255:
            raise S5GeoError(f"{self.meta.num_classes} classes do not fit a uint8 class map")

    def check_resources(self, probabilities: str | None) -> None:
        """Refuse early when the job cannot fit in memory or its outputs cannot fit on disk."""
        src, k = self.src, self.meta.num_classes
        prob_bytes = (
            0 if "probabilities" not in self.targets else k * (4 if probabilities == "float16" else 1)
        )
        per_pixel = 1 + prob_bytes + (1 if "confidence" in self.targets else 0)
        # Rows of windows held at once: the stitcher's carried rows plus the rows being written.
        memory = src.width * self.grid.window_height * (2 * 4 * (k + 1) + 2 * per_pixel)
        memory += (
            3 * self.batch_size * self.grid.window_height * self.grid.window_width * 4 * (len(self.bands) + k)
        )
        free = available_memory()
        if free is not None and memory > free:
            raise S5GeoError(
                f"{src.name}: {src.width} x {src.height} pixels need about {human_bytes(memory)} of memory "
                f"for rows of {self.window}-pixel windows, but {human_bytes(free)} is available; "
                "use a smaller --window or split the raster"
            )
        # Deflate shrinks class maps at least ~10 times; beyond that, the run would fill the disk.
        total = src.width * src.height * per_pixel
        folder = next(iter(self.targets.values())).parent
        disk = free_disk(folder)
        if disk is not None and total / 10 > disk:
            raise S5GeoError(
                f"{src.name}: the outputs of {src.width} x {src.height} pixels would take about "
                f"{human_bytes(total)} uncompressed "
                f"({human_bytes(total / 10)} even at 10:1 compression) but {folder} has "
                f"{human_bytes(disk)} free"
            )

    # Reading -----------------------------------------------------------------------------------

    def _read(self, windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
        src = self.src
        shape = (len(windows), len(self.bands), self.grid.window_height, self.grid.window_width)
        raw = np.empty(shape, dtype=np.float32)
        valid = np.ones((shape[0], *shape[2:]), dtype=bool)
        for n, w in enumerate(windows):
            rio_window = RioWindow(w.col, w.row, w.width, w.height)
            try:
                src.read(self.bands, window=rio_window, out=raw[n])
                if self.masked:
                    masks = src.read_masks(self.bands, window=rio_window)
                    valid[n] = np.all(masks > 0, axis=0)
            except RasterioError as error:
                raise S5GeoError(
                    f"{src.name}: cannot read pixels at row {w.row}, column {w.col} "
                    f"(truncated or damaged file, or a missing source): {_first_line(error)}"
                ) from error
            if self.floating:
                valid[n] &= np.all(np.isfinite(raw[n]), axis=0)
        # Normalised here, in the reader thread: numpy releases the GIL on large arrays.
        return normalise(raw, valid, self.meta), valid

    def _batches(self) -> Iterator[tuple[list[Window], np.ndarray, np.ndarray]]:
        """Yield batches, reading the next one in a background thread while the model runs."""
        windows = list(self.grid)
        chunks = [windows[k : k + self.batch_size] for k in range(0, len(windows), self.batch_size)]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s5geo-read") as pool:
            pending: Future | None = pool.submit(self._read, chunks[0]) if chunks else None
            for k, chunk in enumerate(chunks):
                assert pending is not None
                raw, valid = pending.result()
                pending = pool.submit(self._read, chunks[k + 1]) if k + 1 < len(chunks) else None
                yield chunk, raw, valid

    # Writing -----------------------------------------------------------------------------------

    def _profile(self, count: int, dtype: str, nodata: float | None) -> dict[str, Any]:
        src = self.src
        tile = _TILE
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": src.width,
            "height": src.height,
            "count": count,
            "dtype": dtype,
            "crs": src.crs,
            "transform": src.transform,
            "nodata": nodata,
            "compress": "deflate",
            "zlevel": 1,  # fast; --cog recompresses
            "BIGTIFF": "IF_SAFER",
        }
        if src.width >= tile and src.height >= tile:
            profile.update(tiled=True, blockxsize=tile, blockysize=tile)
        return profile

    def _open_outputs(self, temps: dict[str, Path], probabilities: str | None, nodata: int) -> dict:
        meta = self.meta
        classes_tag = json.dumps(meta.classes)
        datasets: dict[str, Any] = {}
        dst = rasterio.open(temps["classes"], "w", **self._profile(1, "uint8", nodata))
        datasets["classes"] = dst
        colormap = {i: (*meta.colors[i], 255) for i in range(meta.num_classes)}
        colormap[nodata] = (0, 0, 0, 0)
        dst.write_colormap(1, colormap)
        dst.set_band_description(1, "class")
        dst.update_tags(1, **class_name_tags(meta.classes))
        dst.update_tags(**{METADATA_KEY: meta.to_json(), CLASS_NAMES_TAG: classes_tag})
        if "probabilities" in temps:
            dtype = probabilities or "uint8"
            profile = self._profile(meta.num_classes, "uint8", None)
            if dtype == "float16":
                # Half floats on disk through GTiff's NBITS=16 on Float32 (rasterio has no float16).
                profile.update(dtype="float32", nodata=float("nan"), NBITS=16, predictor=3)
            pdst = rasterio.open(temps["probabilities"], "w", **profile)
            for i, name in enumerate(meta.classes, start=1):
                pdst.set_band_description(i, name)
            pdst.update_tags(**{CLASS_NAMES_TAG: classes_tag}, SCALE="1/255" if dtype == "uint8" else "1")
            datasets["probabilities"] = pdst
        if "confidence" in temps:
            cdst = rasterio.open(temps["confidence"], "w", **self._profile(1, "uint8", 0))
            cdst.set_band_description(1, "confidence")
            cdst.update_tags(SCALE="1/255")
            datasets["confidence"] = cdst
        return datasets

    def run(self, temps: dict[str, Path], probabilities: str | None, nodata: int, progress: bool):
        """Predict every window and write the outputs to ``temps``.

        Three stages overlap: a reader thread reads and normalises the next batch, the calling
        thread runs the model, and a writer thread stitches and writes the previous batch. At most
        one batch waits in each stage, so memory stays bounded.
        """
        grid, meta = self.grid, self.meta
        k = meta.num_classes
        need_probs = len(temps) > 1
        stitcher = StreamingStitcher(grid, k, self.blend, normalise=need_probs)
        logits = getattr(self.predictor, "returns_logits", True)
        datasets = self._open_outputs(temps, probabilities, nodata)
        writers = {key: _RowWriter(ds, grid.height) for key, ds in datasets.items()}
        rows: list[_RowBuffers] = []
        bar = tqdm(total=len(grid), desc="segment", unit="win", disable=not progress)

        def consume(chunk: list[Window], probs: np.ndarray, valid: np.ndarray) -> None:
            for w, p, ok in zip(chunk, probs, valid, strict=True):
                if w.j == 0:
                    rows[:] = [_RowBuffers(grid, w.i, datasets, probabilities, k)]
                for block in stitcher.add(w, p, ok):
                    rows[0].put(block.row, block.col, block.data, block.weight > 0, nodata, logits)
                if w.j == grid.shape[1] - 1:
                    for key, data in rows[0].arrays.items():
                        writers[key].push(data)

        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s5geo-write") as post:
                pending: Future | None = None
                for chunk, x, valid in self._batches():
                    probs = self._predict(x, valid)
                    if pending is not None:
                        pending.result()
                    pending = post.submit(consume, chunk, probs, valid)
                    bar.update(len(chunk))
                if pending is not None:
                    pending.result()
            if not stitcher.finished():
                raise RuntimeError("not all windows were stitched")
        finally:
            bar.close()
            for ds in datasets.values():
                ds.close()

    def _predict(self, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
        grid, k = self.grid, self.meta.num_classes
        has_data = valid.reshape(valid.shape[0], -1).any(axis=1)
        out = None
        if not has_data.all():
            out = np.zeros((x.shape[0], k, grid.window_height, grid.window_width), np.float32)
            if not has_data.any():
                return out  # windows without data are not predicted
            x = x[has_data]
        probs = self.predictor.predict(pad_to(x, self.window, self.window))
        if probs.shape[1] != k:
            raise S5GeoError(f"model predicts {probs.shape[1]} classes but its metadata lists {k}")
        probs = probs[:, :, : grid.window_height, : grid.window_width]
        probs = probs.astype(np.float32, copy=False)
        if out is None:
            return probs
        out[has_data] = probs
        return out


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _RowBuffers:
    """Output arrays of one row of windows (rows ``[row_starts[i], row_starts[i + 1])``)."""

    def __init__(self, grid: WindowGrid, i: int, datasets: dict, probabilities: str | None, k: int) -> None:
        self.top = grid.row_starts[i]
        bottom = grid.row_starts[i + 1] if i + 1 < len(grid.row_starts) else grid.height
        h, w = bottom - self.top, grid.width
        self.arrays: dict[str, np.ndarray] = {"classes": np.empty((1, h, w), np.uint8)}
        if "probabilities" in datasets:
            dtype = np.uint8 if probabilities != "float16" else np.float32
            self.arrays["probabilities"] = np.empty((k, h, w), dtype)
        if "confidence" in datasets:
            self.arrays["confidence"] = np.empty((1, h, w), np.uint8)

    def put(
        self,
        row: int,
        col: int,
        scores: np.ndarray,
        valid: np.ndarray,
        nodata: int,
        logits: bool,
    ) -> None:
        r = row - self.top
        h, w = valid.shape
        sl = (slice(None), slice(r, r + h), slice(col, col + w))
        classes = argmax(scores)
        if not valid.all():
            classes[~valid] = nodata
        self.arrays["classes"][sl] = classes
        if len(self.arrays) == 1:
            return
        probs = softmax(scores) if logits else scores
        if "confidence" in self.arrays:
            conf = np.clip(np.rint(probs.max(axis=0) * 255), 1, 255).astype(np.uint8)
            conf[~valid] = 0
            self.arrays["confidence"][sl] = conf
        if "probabilities" in self.arrays:
            target = self.arrays["probabilities"]
            if target.dtype == np.uint8:
                scaled = np.rint(probs * 255).astype(np.uint8)
                scaled[:, ~valid] = 0
            else:
                scaled = probs.astype(np.float16).astype(np.float32)
                scaled[:, ~valid] = np.nan
            target[sl] = scaled


class _RowWriter:
    """Writes full-width rows to a dataset in whole tile rows (the last one may be partial)."""

    def __init__(self, dataset: Any, height: int) -> None:
        self.ds = dataset
        self.height = height
        self.block = dataset.block_shapes[0][0]
        self.written = 0
        self.pending: list[np.ndarray] = []

    def push(self, rows: np.ndarray) -> None:
        self.pending.append(rows)
        buffered = sum(p.shape[1] for p in self.pending)
        end = self.written + buffered
        if end < self.height and buffered < self.block:
            return
        data = np.concatenate(self.pending, axis=1) if len(self.pending) > 1 else self.pending[0]
        n = buffered if end >= self.height else (buffered // self.block) * self.block
        window = RioWindow(0, self.written, self.ds.width, n)
        self.ds.write(data[:, :n], window=window)
        self.written += n
        self.pending = [data[:, n:]] if n < buffered else []
