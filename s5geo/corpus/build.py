"""Build MillionSeg (RS4P-1M layout) from source datasets: crop, filter by pseudo-labels, count.

The S5 recipe: large images are cut into 512-px crops (iSAID into 1024-px crops), images of the
collections that are already small (SIOR 800 px, FAST 600 px, MillionAID) are kept whole, and an
unlabeled crop is kept only if a segmentation model trained on iSAID finds a foreground object in
it. The result is written in the layout :class:`~s5geo.datasets.MillionSeg` reads::

    <output>/labeled/iSAID/{train,val}/{images,masks}/<source>_<name>_<row>_<col>.png
    <output>/unlabeled/RS4P-1M/images/<source>_<name>_<row>_<col>.png
    <output>/unlabeled/RS4P-1M/masks/<...>.png          pseudo-labels (with a filter model)
    <output>/manifest.csv                              image,mask,part,split,source,source_image,x,y,...
    <output>/splits/{labeled/labeled.txt,val.txt,unlabeled/RS4P-1M.txt}   the authors' split files
    <output>/statistics.json                           per-class pixels and images (paper Fig. 4)
    <output>/.s5geo-corpus/                            state of the build (for resuming)

Builds are resumable: every finished source image is logged in ``.s5geo-corpus/crops.jsonl`` and
skipped by the next run, crops whose files exist are never rewritten, and every file is written
under a temporary name and renamed. A folder that holds files and no build state is refused, so
user files are never overwritten. Cropping runs in ``workers`` processes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.windows import Window
from tqdm.auto import tqdm

from s5geo.constants import IGNORE_INDEX
from s5geo.datasets._base import check_index_mask, rgb_to_index
from s5geo.datasets.isaid import ISAIDSegmentation
from s5geo.datasets.millionseg import LABELED_DIR, UNLABELED_DIR
from s5geo.errors import InvalidMaskError, S5GeoError
from s5geo.imagefile import JPEG_SUFFIXES, read_image_file
from s5geo.inference.files import check_image_complete, remove_stale_temps_under, temp_name
from s5geo.inference.tiling import window_starts

logger = logging.getLogger("s5geo.corpus")

Kind = Literal["images", "isaid"]
#: File endings read as source images.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".jp2", ".webp")
#: Crop side of each kind when not given (paper: 512; iSAID 1024).
DEFAULT_CROP = {"images": 512, "isaid": 1024}
STATE_DIR = ".s5geo-corpus"
CLASSES = ISAIDSegmentation.classes
COLORS = ISAIDSegmentation.colors
NUM_CLASSES = len(CLASSES)
MANIFEST_FIELDS = ("image", "mask", "part", "split", "source", "source_image", "x", "y", "width", "height")


@dataclass(frozen=True)
class Source:
    """One source dataset.

    Attributes:
        name: short name, the prefix of its crops (``dota``, ``isaid``...).
        path: folder of images (searched recursively), or for ``kind="isaid"`` the iSAID root
            holding ``train/`` and ``val/`` in any layout :class:`ISAIDSegmentation` reads.
        kind: ``"images"`` (unlabeled, or labeled with ``masks``) or ``"isaid"`` (labeled).
        crop: side of the crops; None keeps images whole.
        stride: step between crops (default ``crop``: no overlap; the last row and column end on
            the border, and an image side shorter than ``crop`` is kept whole).
        masks: folder of class-index PNG masks named like the images (``a/b.jpg`` ->
            ``a/b.png``): the source is then labeled and goes to ``labeled/iSAID/<split>``.
        split: split of a labeled ``images`` source (``"train"`` or ``"val"``).
    """

    name: str
    path: Path
    kind: Kind = "images"
    crop: int | None = 512
    stride: int | None = None
    masks: Path | None = None
    split: Literal["train", "val"] = "train"

    @property
    def labeled(self) -> bool:
        """Whether the source has masks (labeled part) or not (unlabeled part)."""
        return self.kind == "isaid" or self.masks is not None

    def settings(self) -> dict[str, Any]:
        """JSON-ready description (compared between a build and its resumption)."""
        out = asdict(self)
        out["path"] = str(Path(self.path).resolve())
        out["masks"] = None if self.masks is None else str(Path(self.masks).resolve())
        return out


def parse_source(text: str) -> Source:
    """Parse ``NAME=PATH[,crop=N|whole][,stride=N][,masks=DIR][,kind=isaid][,split=val]``.

    A source named ``isaid`` is of kind ``isaid`` (1024-px crops) unless ``kind=`` says otherwise.

    Raises:
        S5GeoError: on a malformed specification.
    """
    head, *options = text.split(",")
    name, sep, path = head.partition("=")
    if not sep or not name or not path:
        raise S5GeoError(f"source {text!r}: expected NAME=PATH[,crop=N][,stride=N][,masks=DIR][,kind=isaid]")
    values = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in {"crop", "stride", "masks", "kind", "split"}:
            raise S5GeoError(f"source {text!r}: unknown option {option!r} (crop, stride, masks, kind, split)")
        values[key] = value
    kind = values.get("kind", "isaid" if name.lower() == "isaid" else "images")
    if kind not in DEFAULT_CROP:
        raise S5GeoError(f"source {text!r}: kind must be 'images' or 'isaid', got {kind!r}")
    split = values.get("split", "train")
    if split not in ("train", "val"):
        raise S5GeoError(f"source {text!r}: split must be 'train' or 'val', got {split!r}")
    try:
        crop_text = values.get("crop", str(DEFAULT_CROP[kind]))
        crop = None if crop_text in {"whole", "none", "0"} else int(crop_text)
        stride = int(values["stride"]) if "stride" in values else None
    except ValueError as error:
        raise S5GeoError(f"source {text!r}: crop and stride are whole numbers of pixels ({error})") from error
    masks = Path(values["masks"]) if "masks" in values else None
    return Source(name, Path(path), kind, crop, stride, masks, split)  # type: ignore[arg-type]


@dataclass
class BuildStats:
    """Summary of a build."""

    source_images: int
    processed: int
    resumed: int
    crops: int
    rejected: int
    seconds: float
    manifest: Path
    statistics: Path
    #: ``(source image, reason)`` for images that could not be read (nothing written for them).
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    """One source image to crop (sent to a worker process)."""

    source: str
    image: str
    mask: str | None
    mask_kind: Literal["rgb", "index"] | None
    crop: int | None
    stride: int | None
    out_root: str
    image_dir: str
    mask_dir: str | None
    prefix: str
    part: str
    split: str


def _list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (any depth, hidden folders skipped), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath, f) for f in filenames if f.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(found)


def _jobs(source: Source, output: Path) -> list[_Job]:
    """Every source image of ``source`` as a job."""
    common = {"source": source.name, "crop": source.crop, "stride": source.stride, "out_root": str(output)}
    jobs = []
    source = replace(source, path=source.path.resolve())
    if source.kind == "isaid":
        splits = [s for s in ("train", "val") if (source.path / s).is_dir()]
        if not splits:
            raise S5GeoError(
                f"source {source.name}: {source.path} holds neither train/ nor val/ (iSAID root)"
            )
        for split in splits:
            files = ISAIDSegmentation(source.path, split=split, tile_size=None).files
            base = LABELED_DIR / split
            for pair in files:
                image = Path(pair["image"])  # type: ignore[arg-type]
                jobs.append(
                    _Job(
                        **common,
                        image=str(image),
                        mask=str(pair["mask"]),
                        mask_kind="rgb",
                        image_dir=str(base / "images"),
                        mask_dir=str(base / "masks"),
                        prefix=f"{source.name}_{image.stem}",
                        part="labeled",
                        split=split,
                    )
                )
        return jobs
    if not source.path.is_dir():
        raise S5GeoError(f"source {source.name}: {source.path} is not a folder of images")
    images = _list_images(source.path)
    if not images:
        raise S5GeoError(f"source {source.name}: no image below {source.path} ({', '.join(IMAGE_SUFFIXES)})")
    base = LABELED_DIR / source.split if source.labeled else UNLABELED_DIR
    for image in images:
        rel = image.relative_to(source.path).with_suffix("")
        mask = None
        if source.masks is not None:
            mask = source.masks / rel.with_suffix(".png")
            if not mask.is_file():
                raise S5GeoError(f"source {source.name}: {image} has no mask (looked for {mask})")
        jobs.append(
            _Job(
                **common,
                image=str(image),
                mask=None if mask is None else str(mask),
                mask_kind=None if mask is None else "index",
                image_dir=str(base / "images"),
                mask_dir=str(base / "masks") if mask is not None else None,
                prefix=f"{source.name}_{'__'.join(rel.parts)}",
                part="labeled" if source.labeled else "unlabeled",
                split=source.split if source.labeled else "train",
            )
        )
    return jobs


def _open(path: str) -> rasterio.DatasetReader:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path)


def _as_rgb(array: np.ndarray) -> np.ndarray:
    """8-bit crops as 3 bands (grey repeated, alpha dropped); other data unchanged."""
    if array.dtype != np.uint8:
        return array
    if array.shape[0] < 3:
        return np.repeat(array[:1], 3, axis=0)
    return array[:3]


def _save(path: Path, array: np.ndarray, palette: bool = False) -> None:
    """Write ``C x H x W`` (or ``H x W`` mask) atomically: PNG for 8-bit data, GeoTIFF otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        if array.ndim == 2:
            image = Image.fromarray(array.astype(np.uint8), mode="P" if palette else "L")
            if palette:
                image.putpalette([v for color in COLORS for v in color])
            image.save(tmp, format="PNG")
        elif path.suffix == ".png":
            Image.fromarray(np.moveaxis(array, 0, -1)).save(tmp, format="PNG")
        else:
            profile = {"driver": "GTiff", "count": array.shape[0], "dtype": array.dtype.name}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(
                    tmp, "w", height=array.shape[1], width=array.shape[2], compress="deflate", **profile
                ) as dst:
                    dst.write(array)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _class_counts(mask: np.ndarray) -> list[int]:
    """Pixels of each class (0..15) followed by ignored pixels (255)."""
    counts = np.bincount(mask.ravel(), minlength=256)
    return [int(c) for c in counts[:NUM_CLASSES]] + [int(counts[IGNORE_INDEX])]


def _read_mask(job: _Job, src: rasterio.DatasetReader, window: Window) -> np.ndarray:
    raw = src.read(window=window)
    if job.mask_kind == "rgb":
        return rgb_to_index(raw, COLORS, path=job.mask)
    if raw.shape[0] != 1:
        raise InvalidMaskError(f"{job.mask}: expected a 1-band class-index mask, found {raw.shape[0]} bands")
    return check_index_mask(raw[0], NUM_CLASSES, job.mask)


def crop_job(job: _Job) -> dict[str, Any]:
    """Write the missing crops of one source image (run in a worker process).

    Returns:
        ``{"source", "image", "crops": [...]}``, or with ``"error"`` if the image cannot be read.
    """
    record: dict[str, Any] = {"source": job.source, "image": job.image, "crops": []}
    root = Path(job.out_root)
    try:
        check_image_complete(job.image)  # GDAL reads a truncated PNG or JPEG as zeros
        with contextlib.ExitStack() as stack:
            src = stack.enter_context(_open(job.image))
            msrc = stack.enter_context(_open(job.mask)) if job.mask else None
            if msrc is not None and (msrc.height, msrc.width) != (src.height, src.width):
                raise InvalidMaskError(
                    f"{job.mask}: mask is {msrc.height}x{msrc.width}, image {src.height}x{src.width}"
                )
            suffix = ".png" if src.dtypes[0] == "uint8" else ".tif"
            # A JPEG is decoded once, as every s5geo reader decodes it, rather than once per crop.
            whole = read_image_file(job.image) if Path(job.image).suffix.lower() in JPEG_SUFFIXES else None
            if job.crop is None:
                windows = [Window(0, 0, src.width, src.height)]
            else:
                stride = job.stride or job.crop
                windows = [
                    Window(x, y, min(job.crop, src.width), min(job.crop, src.height))
                    for y in window_starts(src.height, job.crop, stride)
                    for x in window_starts(src.width, job.crop, stride)
                ]
            for window in windows:
                x, y, w, h = int(window.col_off), int(window.row_off), int(window.width), int(window.height)
                name = job.prefix if job.crop is None else f"{job.prefix}_{y}_{x}"
                image_rel = Path(job.image_dir) / (name + suffix)
                mask_rel = Path(job.mask_dir) / (name + ".png") if job.mask_dir else None
                counts = None
                if mask_rel is not None:
                    mask_path = root / mask_rel
                    if mask_path.exists():
                        with Image.open(mask_path) as done:
                            mask = np.asarray(done)
                    else:
                        mask = _read_mask(job, msrc, window)
                        _save(mask_path, mask, palette=True)
                    counts = _class_counts(mask)
                if not (root / image_rel).exists():
                    pixels = src.read(window=window) if whole is None else whole[:, y : y + h, x : x + w]
                    _save(root / image_rel, _as_rgb(pixels))
                record["crops"].append(
                    {
                        "image": image_rel.as_posix(),
                        "mask": None if mask_rel is None else mask_rel.as_posix(),
                        "part": job.part,
                        "split": job.split,
                        "x": x,
                        "y": y,
                        "width": w,
                        "height": h,
                        "counts": counts,
                    }
                )
    except (RasterioError, RasterioIOError, S5GeoError, OSError) as error:
        readable = (RasterioIOError, FileNotFoundError, PermissionError, S5GeoError)
        if isinstance(error, OSError) and not isinstance(error, readable):
            raise  # disk full and the like stop the build
        record["error"] = f"{job.image}: {error}".replace("\n", " ")
    return record


def mask_counts(path: str) -> list[int]:
    """Class counts of one mask file (run in a worker process)."""
    with Image.open(path) as image:
        return _class_counts(np.asarray(image))


def _map(fn: Any, items: Sequence[Any], workers: int, desc: str, progress: bool) -> Iterator[Any]:
    """``fn`` over ``items`` in ``workers`` processes (0: in this process), with a progress bar."""
    bar = tqdm(total=len(items), desc=desc, unit="img", disable=not progress)
    try:
        if workers <= 0 or len(items) <= 1:
            for item in items:
                yield fn(item)
                bar.update()
            return
        # fork: workers start at once (cropping runs before any torch work in this process)
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        with context.Pool(min(workers, len(items))) as pool:
            for result in pool.imap_unordered(
                fn, items, chunksize=max(1, min(16, len(items) // (4 * workers)))
            ):
                yield result
                bar.update()
    finally:
        bar.close()


def _check_folders(sources: Sequence[Source], output: Path) -> None:
    names = [s.name for s in sources]
    if not sources:
        raise S5GeoError("give at least one source (NAME=PATH)")
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise S5GeoError(f"source name {duplicate!r} is given twice; names prefix the crops and must differ")
    out = output.resolve()
    for source in sources:
        for folder in (source.path, source.masks):
            if folder is None:
                continue
            if not folder.exists():
                raise S5GeoError(f"source {source.name}: {folder} does not exist")
            path = folder.resolve()
            if path == out or out in path.parents or path in out.parents:
                raise S5GeoError(
                    f"output {output} and source {folder} overlap; choose an output folder apart"
                )
    if output.exists() and not output.is_dir():
        raise S5GeoError(f"output {output} exists and is not a folder")
    if output.is_dir() and not (output / STATE_DIR).is_dir() and any(output.iterdir()):
        raise S5GeoError(
            f"output {output} holds files that s5geo corpus build did not write; choose a new or empty folder"
        )


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_log(path: Path) -> dict[str, dict[str, Any]]:
    """Records of finished source images (a truncated last line from a killed run is ignored)."""
    done: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                done[f"{record['source']}\t{record['image']}"] = record
    return done


def _check_settings(state: Path, sources: Sequence[Source]) -> None:
    """Refuse to resume a build with other crop settings for a source of the same name."""
    path = state / "sources.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    for source in sources:
        old = known.get(source.name)
        if old is not None and old != source.settings():
            raise S5GeoError(
                f"{path}: source {source.name!r} was built as {old}; resume with the same settings "
                "or build into a new folder"
            )
        known[source.name] = source.settings()
    _write_text(path, json.dumps(known, indent=2) + "\n")


def build_corpus(
    sources: Iterable[Source],
    output: str | Path,
    *,
    workers: int = 0,
    filter_model: Any = None,
    metadata: Any = None,
    min_foreground: int = 1,
    background: int = 0,
    device: str = "auto",
    batch_size: int = 8,
    progress: bool = True,
) -> BuildStats:
    """Crop the sources into ``output`` (RS4P-1M layout), filter, and write manifest and statistics.

    Args:
        sources: the source datasets (see :class:`Source` and :func:`parse_source`).
        output: new or empty folder, or the folder of an interrupted build (resumed).
        workers: processes that crop (0: this process).
        filter_model: checkpoint, ONNX file, module (with ``metadata``) or predictor that
            pseudo-labels the unlabeled crops; crops with fewer than ``min_foreground`` pixels
            outside ``background`` are removed. The pseudo-labels are kept in
            ``unlabeled/RS4P-1M/masks`` (the masks SEP trains on). None: keep every crop.
        metadata: model metadata for a module ``filter_model``.
        min_foreground: foreground pixels a kept crop needs (0 keeps all and only pseudo-labels).
        background: class id that is not foreground.
        device: device of the filter model.
        batch_size: crops per forward pass of the filter model.
        progress: show progress bars.

    Returns:
        Counts, timing and the paths of the manifest and the statistics.

    Raises:
        S5GeoError: on missing sources, overlapping folders, an output that holds other files, or
            a resumed build whose sources changed settings.
    """
    start = time.perf_counter()
    sources = list(sources)
    output = Path(output)
    _check_folders(sources, output)
    state = output / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    _check_settings(state, sources)
    removed = remove_stale_temps_under(output)
    if removed:
        logger.info("removed %d temporary files left by an interrupted build", removed)

    log_path = state / "crops.jsonl"
    done = _read_log(log_path)
    jobs = [job for source in sources for job in _jobs(source, output)]
    todo = [job for job in jobs if f"{job.source}\t{job.image}" not in done]
    failed: list[tuple[str, str]] = []
    logger.info("cropping %d source images (%d done before)", len(todo), len(jobs) - len(todo))
    with open(log_path, "a") as log:
        for record in _map(crop_job, todo, workers, "crop", progress):
            if "error" in record:
                failed.append((record["image"], record["error"]))
                logger.warning("skipped %s", record["error"])
                continue
            log.write(json.dumps(record) + "\n")
            log.flush()
            done[f"{record['source']}\t{record['image']}"] = record

    rejected = _read_rejected(state / "rejected.txt")
    if filter_model is not None:
        rejected |= _filter(
            output, state, filter_model, metadata, min_foreground, background, device, batch_size, progress
        )

    order = {s.name: k for k, s in enumerate(sources)}
    records = sorted(
        (r for r in done.values() if r["source"] in order), key=lambda r: (order[r["source"]], r["image"])
    )
    rows = _manifest_rows(output, records, rejected)
    manifest = output / "manifest.csv"
    _write_manifest(manifest, rows)
    _write_splits(output, rows)
    statistics = output / "statistics.json"
    _write_statistics(statistics, output, rows, records, rejected, workers, progress)
    return BuildStats(
        source_images=len(jobs),
        processed=len(todo) - len(failed),
        resumed=len(jobs) - len(todo),
        crops=len(rows),
        rejected=sum(1 for r in records for c in r["crops"] if c["image"] in rejected),
        seconds=time.perf_counter() - start,
        manifest=manifest,
        statistics=statistics,
        failed=failed,
    )


def _read_rejected(path: Path) -> set[str]:
    return set(path.read_text().split()) if path.is_file() else set()


def _filter(
    output: Path,
    state: Path,
    model: Any,
    metadata: Any,
    min_foreground: int,
    background: int,
    device: str,
    batch_size: int,
    progress: bool,
) -> set[str]:
    """Pseudo-label the unlabeled crops; remove (and list) those without enough foreground."""
    images = output / UNLABELED_DIR / "images"
    if not images.is_dir() or not any(images.iterdir()):
        return set()
    from s5geo.inference.pseudo_label import pseudo_label  # torch only when a model is used

    masks = output / UNLABELED_DIR / "masks"
    keep_list = state / "foreground.txt"
    pseudo_label(
        model,
        images,
        masks,
        metadata=metadata,
        min_foreground=min_foreground,
        foreground_list=keep_list,
        background=background,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
    keep = set(keep_list.read_text().split())
    rejected = []
    for path in sorted(images.iterdir()):
        if path.name.startswith(".") or path.name in keep:
            continue
        rel = (UNLABELED_DIR / "images" / path.name).as_posix()
        rejected.append(rel)
        with open(state / "rejected.txt", "a") as f:  # listed before removal: a kill leaves no orphan
            f.write(rel + "\n")
        (masks / path.with_suffix(".png").name).unlink(missing_ok=True)
        path.unlink()
    logger.info("kept %d unlabeled crops with foreground, removed %d", len(keep), len(rejected))
    return set(rejected)


def _manifest_rows(output: Path, records: list[dict[str, Any]], rejected: set[str]) -> list[dict[str, Any]]:
    """Manifest rows: labeled train, labeled val, then unlabeled (with their pseudo-label if any)."""
    rows = []
    pseudo = output / UNLABELED_DIR / "masks"
    for record in records:
        for crop in record["crops"]:
            if crop["image"] in rejected:
                continue
            mask = crop["mask"]
            if mask is None:
                candidate = pseudo / (Path(crop["image"]).stem + ".png")
                mask = (UNLABELED_DIR / "masks" / candidate.name).as_posix() if candidate.exists() else None
            rows.append({**crop, "mask": mask, "source": record["source"], "source_image": record["image"]})
    order = {("labeled", "train"): 0, ("labeled", "val"): 1}
    rows.sort(key=lambda r: (order.get((r["part"], r["split"]), 2), r["image"]))
    return rows


def _write_manifest(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_FIELDS)
    for row in rows:
        writer.writerow(["" if row[k] is None else row[k] for k in MANIFEST_FIELDS])
    _write_text(path, buffer.getvalue())


def _write_splits(output: Path, rows: list[dict[str, Any]]) -> None:
    """The authors' split files: ``<image> <mask>`` (or ``<image>``) per line, relative to the root."""
    groups: dict[str, list[str]] = {"labeled/labeled.txt": [], "val.txt": [], "unlabeled/RS4P-1M.txt": []}
    for row in rows:
        key = (
            "unlabeled/RS4P-1M.txt"
            if row["part"] == "unlabeled"
            else ("val.txt" if row["split"] == "val" else "labeled/labeled.txt")
        )
        groups[key].append(f"{row['image']} {row['mask']}" if row["mask"] else row["image"])
    for name, lines in groups.items():
        if lines:
            _write_text(output / "splits" / name, "".join(line + "\n" for line in lines))


def _write_statistics(
    path: Path,
    output: Path,
    rows: list[dict[str, Any]],
    records: list[dict[str, Any]],
    rejected: set[str],
    workers: int,
    progress: bool,
) -> None:
    """Per part: images, pixels of each class, images holding each class (the paper's Fig. 4)."""
    pending = [row for row in rows if row["counts"] is None and row["mask"]]
    counted = _counts_unordered(output, pending, workers, progress)
    parts: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = (
            f"labeled/{row['split']}"
            if row["part"] == "labeled"
            else ("pseudo_labeled" if row["mask"] else "unlabeled")
        )
        part = parts.setdefault(
            key,
            {
                "images": 0,
                "pixels": 0,
                "class_pixels": [0] * NUM_CLASSES,
                "class_images": [0] * NUM_CLASSES,
                "ignored_pixels": 0,
            },
        )
        part["images"] += 1
        part["pixels"] += int(row["width"]) * int(row["height"])
        counts = row["counts"] if row["counts"] is not None else counted.get(row["image"])
        if counts is None:
            continue
        for k in range(NUM_CLASSES):
            part["class_pixels"][k] += counts[k]
            part["class_images"][k] += int(counts[k] > 0)
        part["ignored_pixels"] += counts[NUM_CLASSES]
    for part in parts.values():
        part["class_pixels"] = dict(zip(CLASSES, part["class_pixels"], strict=True))
        part["class_images"] = dict(zip(CLASSES, part["class_images"], strict=True))
    sources: dict[str, dict[str, int]] = {}
    for record in records:
        entry = sources.setdefault(record["source"], {"source_images": 0, "crops": 0, "rejected": 0})
        entry["source_images"] += 1
        for crop in record["crops"]:
            entry["rejected" if crop["image"] in rejected else "crops"] += 1
    summary = {"classes": list(CLASSES), "images": len(rows), "parts": parts, "sources": sources}
    _write_text(path, json.dumps(summary, indent=2) + "\n")


def _counts_unordered(
    output: Path, pending: list[dict[str, Any]], workers: int, progress: bool
) -> dict[str, list[int]]:
    """Class counts of ``pending`` masks read in worker processes."""
    paths = [str(output / row["mask"]) for row in pending]
    by_path = dict(zip(paths, [row["image"] for row in pending], strict=True))
    results = _map(_counts_with_path, paths, workers, "count", progress)
    return {by_path[p]: counts for p, counts in results}


def _counts_with_path(path: str) -> tuple[str, list[int]]:
    return path, mask_counts(path)
