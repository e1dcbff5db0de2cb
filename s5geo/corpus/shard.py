"""Write a corpus into streaming shards (LitData chunks) that each DDP rank reads its part of.

LitData (Lightning AI) is the shard format: ``optimize`` packs samples into chunk files with an
``index.json``, and ``StreamingDataset`` gives each rank and loader worker its own chunks, streams
them from a local folder or an object store (``s3://``, ``gs://``, ``azure://``) through a local
cache, and its ``StreamingDataLoader`` saves and restores its position, so a run resumes
mid-epoch. WebDataset offers the same streaming, but leaves rank splitting, resumption and the
sample count to the user; LitData is built for Lightning's DDP, which is how s5geo trains.

Samples are stored as the files' encoded bytes (PNG, JPEG, TIFF as they are on disk): shards are
as small as the corpus and decoding happens in the loader workers
(:class:`~s5geo.datasets.shards.ShardedSegmentation`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from s5geo.datasets.millionseg import MillionSeg
from s5geo.datasets.shards import INFO_FILE
from s5geo.errors import OutputExistsError, S5GeoError


def manifest_samples(
    root: str | Path, manifest: str | Path | None = None, part: str = "labeled", split: str = "train"
) -> list[tuple[Path, Path | None]]:
    """``(image, mask)`` paths of one MillionSeg part, from a manifest or the folder layout.

    Args:
        root: the corpus folder (paths in the manifest are relative to it).
        manifest: ``manifest.csv`` of ``s5geo corpus build``, a CSV with an ``image,mask`` header or
            the authors' split files; None walks the layout.
        part: ``"labeled"``, ``"unlabeled"`` or ``"pseudo_labeled"``.
        split: ``"train"`` or ``"val"`` for the labeled part.
    """
    dataset = MillionSeg(root, part=part, manifest=manifest, split=split)  # type: ignore[arg-type]
    return [(Path(f["image"]), None if f["mask"] is None else Path(f["mask"])) for f in dataset.files]


def _chunk_bytes(value: str | int) -> int:
    """``chunk_bytes`` as a number of bytes: an int, or a size such as ``"128MB"`` or ``"2000"``."""
    if isinstance(value, int) and value > 0:
        return value
    found = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)b?\s*", str(value), re.IGNORECASE)
    size = int(float(found[1]) * 1000 ** " kmgt".index(found[2].lower() or " ")) if found else 0
    if size <= 0:
        raise S5GeoError(f"chunk size {value!r}: give a positive size such as 128MB, 1.5GB or 2000 (bytes)")
    return size


def _read_sample(item: tuple[int, str, str | None]) -> dict[str, Any]:
    """One shard sample: the encoded bytes of the image and mask files (run by LitData's workers)."""
    index, image, mask = item
    try:
        with open(image, "rb") as f:
            image_bytes = f.read()
        mask_bytes = b""
        if mask is not None:
            with open(mask, "rb") as f:
                mask_bytes = f.read()
    except OSError as error:
        raise S5GeoError(f"{error.filename}: cannot read ({error.strerror})") from error
    return {
        "index": index,
        "name": os.path.basename(image),
        "image": image_bytes,
        "mask": mask_bytes,
    }


def write_shards(
    samples: Iterable[tuple[str | Path, str | Path | None]],
    output: str | Path,
    *,
    chunk_bytes: str | int = "128MB",
    workers: int = 1,
    classes: Sequence[str] = MillionSeg.classes,
    colors: Sequence[Sequence[int]] = MillionSeg.colors,
    progress: bool = True,
) -> int:
    """Write ``(image, mask)`` files into LitData shards in ``output``.

    The shards are written into ``<output>.partial`` and renamed to ``output`` when complete, so
    ``output`` either holds finished shards or does not exist; an existing ``output`` is refused.
    An interrupted run leaves ``<output>.partial``, which the next run replaces.

    Args:
        samples: ``(image, mask)`` paths; mask None for unlabeled samples.
        output: local folder for the shards (new).
        chunk_bytes: target size of one chunk file (e.g. ``"128MB"``, or bytes).
        workers: LitData worker processes.
        classes: class names stored with the shards.
        colors: class colours stored with the shards.
        progress: let LitData print its progress bar.

    Returns:
        Number of samples written.

    Raises:
        OutputExistsError: if ``output`` exists.
        S5GeoError: if there is no sample, a file is missing, the chunk size is not a size, or
            LitData is not installed.
    """
    try:
        from litdata import optimize
    except ImportError as error:
        raise S5GeoError("writing shards needs LitData: pip install 's5geo[corpus]' (or litdata)") from error
    size = _chunk_bytes(chunk_bytes)
    output = Path(output)
    if output.exists():
        raise OutputExistsError(f"{output}: exists; shards are written into a new folder")
    items = [(k, str(image), None if mask is None else str(mask)) for k, (image, mask) in enumerate(samples)]
    if not items:
        raise S5GeoError(f"{output}: no sample to write")
    missing = next(
        (p for _, image, mask in items for p in (image, mask) if p and not os.path.isfile(p)), None
    )
    if missing:
        raise S5GeoError(f"{missing}: file does not exist (listed for the shards)")
    partial = output.with_name(output.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    optimize(
        fn=_read_sample,
        inputs=items,
        output_dir=str(partial.resolve()),
        chunk_bytes=size,
        num_workers=max(1, workers),
        verbose=progress,
    )
    info = {
        "samples": len(items),
        "labeled": sum(mask is not None for _, _, mask in items),
        "classes": list(classes),
        "colors": [list(c) for c in colors],
    }
    (partial / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    os.replace(partial, output)
    return len(items)
