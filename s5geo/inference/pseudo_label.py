"""Pseudo-label a folder or manifest of images (the MillionSeg recipe).

Each image ``DIR/a/b.jpg`` gets a palette PNG class mask ``OUT/a/b.png`` (pixel value = class id,
colours from the metadata). Runs are resumable (finished masks are skipped; masks are written to
a temporary file and renamed, so an interrupted run never leaves a truncated PNG), can be split
over processes/GPUs with ``shard=(i, n)`` (image ``k`` of the sorted list goes to shard ``k % n``),
and can write the list of images whose mask holds at least ``min_foreground`` foreground pixels.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from s5geo.errors import S5GeoError
from s5geo.imagefile import read_image_file
from s5geo.inference.arrays import normalise, pad_to, predict_array
from s5geo.inference.files import check_image_complete, remove_stale_temps_under
from s5geo.inference.predictor import Predictor, make_predictor
from s5geo.inference.tiling import BlendMode, argmax, softmax
from s5geo.metadata import ModelMetadata

logger = logging.getLogger("s5geo.inference")

#: File name endings treated as images when a folder is given.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".jp2", ".bmp", ".webp")


@dataclass
class PseudoLabelStats:
    """Summary of a pseudo-labelling run."""

    total: int
    labelled: int
    skipped: int
    foreground: int | None
    seconds: float
    #: ``(image, reason)`` for images that could not be read (no mask was written for them).
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        """Throughput over the images labelled in this run."""
        return self.labelled / self.seconds if self.seconds > 0 else 0.0


def list_images(images: str | Path) -> list[tuple[Path, Path]]:
    """Return sorted ``(path, relative path)`` pairs for a folder or a manifest file.

    A manifest holds one image path per line (blank lines and ``#`` comments ignored); relative
    entries are relative to the manifest's folder.
    """
    images = Path(images)
    if images.is_dir():
        found = [p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        return sorted((p, p.relative_to(images)) for p in found)
    if images.is_file():
        base = images.parent
        pairs = []
        for line in images.read_text().splitlines():
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            path = Path(entry)
            full = path if path.is_absolute() else base / path
            try:
                rel = full.relative_to(base)
            except ValueError:
                rel = Path(*full.parts[1:]) if full.is_absolute() else path
            pairs.append((full, rel))
        return sorted(pairs)
    raise S5GeoError(f"images {str(images)!r} is neither a folder nor a manifest file")


def pseudo_label(
    model: Predictor | nn.Module | str | Path,
    images: str | Path,
    output_dir: str | Path,
    *,
    metadata: ModelMetadata | None = None,
    confidence: bool = False,
    confidence_dir: str | Path | None = None,
    shard: tuple[int, int] = (0, 1),
    min_foreground: int | None = None,
    foreground_list: str | Path | None = None,
    background: int = 0,
    batch_size: int = 8,
    device: str = "auto",
    precision: str = "fp32",
    window_size: int | None = None,
    overlap: float | None = None,
    blend: BlendMode = "cosine",
    progress: bool = True,
) -> PseudoLabelStats:
    """Write a class-mask PNG (and optionally a confidence PNG) for every image of a shard.

    Args:
        model: checkpoint path, ``nn.Module`` (with ``metadata``) or :class:`Predictor`.
        images: folder (searched recursively) or manifest file.
        output_dir: folder for the masks (same relative paths, ``.png``).
        metadata: model metadata (overrides the stored one).
        confidence: also write top-class probability PNGs (uint8, 255 = 1.0).
        confidence_dir: where (default ``output_dir/confidence``).
        shard: ``(i, n)``: label the images whose index in the sorted list is ``i`` mod ``n``.
        min_foreground: if set, write the list of images with at least this many pixels that are
            not ``background``.
        foreground_list: where (default ``output_dir/foreground_<i>of<n>.txt``).
        background: class id that does not count as foreground.
        batch_size: images (or windows of large images) per forward pass.
        device: ``auto``, ``cpu``, ``cuda``...
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast (PyTorch models).
        window_size: window for images larger than it (default: metadata).
        overlap: overlap for large images (default: metadata).
        blend: blend mode for large images.
        progress: show a progress bar.

    Returns:
        Counts and timing; ``images_per_second`` is the throughput.
    """
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise S5GeoError(f"shard must be (i, n) with 0 <= i < n, got {shard}")
    if batch_size < 1:
        raise S5GeoError(f"batch size must be positive, got {batch_size}")
    if window_size is not None and window_size < 1:
        raise S5GeoError(f"window size must be positive, got {window_size}")
    output_dir = Path(output_dir)
    conf_dir = Path(confidence_dir) if confidence_dir else output_dir / "confidence"
    everything = list_images(images)
    if not everything:
        raise S5GeoError(
            f"no images found in {str(images)!r} (looked for {', '.join(IMAGE_SUFFIXES)})"
            if Path(images).is_dir()
            else f"manifest {str(images)!r} lists no images"
        )
    _check_outputs(everything, output_dir, conf_dir if confidence else None, foreground_list)
    todo = [pair for k, pair in enumerate(everything) if k % count == index]
    removed = remove_stale_temps_under(output_dir)
    if removed:
        logger.info("removed %d temporary files left by an interrupted run", removed)
    predictor = make_predictor(model, metadata, device=device, precision=precision)
    meta = predictor.metadata
    window = int(meta.window_size if window_size is None else window_size)
    palette = [v for color in meta.colors for v in color]
    logger.info(
        "pseudo-labelling %d images (shard %d/%d) on %s", len(todo), index, count, predictor.device_name
    )

    foreground: list[str] = []
    failed: list[tuple[str, str]] = []
    labelled = skipped = 0
    start = time.perf_counter()
    pending: list[tuple[Path, Path, np.ndarray]] = []

    def finish(rel: Path, classes: np.ndarray) -> None:
        if min_foreground is not None and int((classes != background).sum()) >= min_foreground:
            foreground.append(rel.as_posix())

    def flush() -> None:
        nonlocal labelled
        for (_, rel, _), scores in zip(pending, _predict(pending), strict=True):
            classes = argmax(scores)
            _save_png(output_dir / rel.with_suffix(".png"), classes, palette)
            if confidence:
                probs = softmax(scores) if predictor.returns_logits else scores
                conf = np.clip(np.rint(probs.max(axis=0) * 255), 0, 255).astype(np.uint8)
                _save_png(conf_dir / rel.with_suffix(".png"), conf, None)
            finish(rel, classes)
            labelled += 1
        pending.clear()

    def _predict(batch: list[tuple[Path, Path, np.ndarray]]) -> list[np.ndarray]:
        shapes = {img.shape for _, _, img in batch}
        if len(shapes) == 1 and max(next(iter(shapes))[1:]) <= window:
            raw = np.stack([img for _, _, img in batch]).astype(np.float32)
            h, w = raw.shape[2:]
            x = pad_to(normalise(raw, np.ones((len(batch), h, w), bool), meta), window, window)
            return list(predictor.predict(x)[:, :, :h, :w].astype(np.float32))
        return [
            predict_array(
                img,
                predictor.predict,
                meta,
                window_size=window,
                overlap=overlap,
                blend=blend,
                batch_size=batch_size,
            )
            for _, _, img in batch
        ]

    for src, rel in tqdm(todo, desc="pseudo-label", unit="img", disable=not progress):
        out = output_dir / rel.with_suffix(".png")
        if out.exists() and (not confidence or (conf_dir / rel.with_suffix(".png")).exists()):
            skipped += 1
            if min_foreground is not None:
                finish(rel, np.asarray(Image.open(out)))
            continue
        try:
            image = _read_image(src, meta.bands)
        except S5GeoError as error:
            logger.warning("skipped %s", error)
            failed.append((str(src), str(error)))
            continue
        pending.append((src, rel, image))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    seconds = time.perf_counter() - start

    if min_foreground is not None:
        list_path = Path(foreground_list or output_dir / f"foreground_{index}of{count}.txt")
        list_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = list_path.with_name(f".{list_path.name}.{os.getpid()}.part")
        tmp.write_text("".join(f"{name}\n" for name in sorted(foreground)))
        os.replace(tmp, list_path)
    stats = PseudoLabelStats(
        len(todo), labelled, skipped, len(foreground) if min_foreground is not None else None, seconds, failed
    )
    logger.info(
        "labelled %d images, skipped %d finished ones, %.2f images/s",
        labelled,
        skipped,
        stats.images_per_second,
    )
    return stats


def _check_outputs(
    pairs: list[tuple[Path, Path]],
    output_dir: Path,
    conf_dir: Path | None,
    foreground_list: str | Path | None,
) -> None:
    """Refuse, before any inference, outputs that are files or that would replace an input image."""
    for folder, what in ((output_dir, "output"), (conf_dir, "confidence folder")):
        if folder is None:
            continue
        if folder.exists() and not folder.is_dir():
            raise S5GeoError(f"{what} {str(folder)!r} exists and is not a folder")
        existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise S5GeoError(f"{what} {str(existing)!r} is not writable")
    inputs = {os.path.abspath(src) for src, _ in pairs}
    folders = [(output_dir, "mask")] + ([(conf_dir, "confidence")] if conf_dir is not None else [])
    for src, rel in pairs:
        for folder, what in folders:
            out = os.path.abspath(folder / rel.with_suffix(".png"))
            if out in inputs:
                raise S5GeoError(
                    f"the {what} of {str(src)!r} would replace the input image {out!r}; "
                    "choose an output folder outside the images"
                )
    if foreground_list is not None and os.path.abspath(foreground_list) in inputs:
        raise S5GeoError(f"foreground list {str(foreground_list)!r} is an input image")


def _read_image(path: Path, bands: list[int]) -> np.ndarray:
    check_image_complete(path)
    return read_image_file(path, bands)


def _save_png(path: Path, array: np.ndarray, palette: list[int] | None) -> None:
    """Write a PNG atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array.astype(np.uint8), mode="P" if palette else "L")
    if palette:
        image.putpalette(palette)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
