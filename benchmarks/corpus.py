"""Benchmark reading a corpus of small images: directory walk vs manifest vs LitData shards.

Full size (the numbers in ``benchmarks/RESULTS.md``, ``## corpus``; about 2 GB in the work folder)::

    .venv/bin/python benchmarks/corpus.py --n 100000 --workdir /path/to/scratch --write

Quick check of the script: ``.venv/bin/python benchmarks/corpus.py --n 2000``.

The script writes ``--n`` 64 x 64 RGB PNG images with 1-band PNG masks in MillionSeg's layout
(``unlabeled/RS4P-1M/{images,masks}``), their ``manifest.csv`` and their shards
(``s5geo corpus shard``), then reads one shuffled epoch with each reader:

* ``walk``: :class:`~s5geo.datasets.SegmentationFolder` finding the files by walking the folders;
* ``manifest``: :class:`~s5geo.datasets.MillionSeg` listing them from ``manifest.csv``;
* ``shards``: :class:`~s5geo.datasets.shards.ShardedSegmentation` with LitData's loader;

in 1 process, and in 2 processes (gloo process group; each reads its rank's part: a
``DistributedSampler`` for walk and manifest, LitData's own split for shards). Each measurement runs in
fresh subprocesses, so peak RSS (VmHWM) is the reader's own. "first batch s" counts from before the
dataset is built (imports excluded) to the first batch; images/s counts the rest of the epoch (all
processes together). Goal: shards give their first batch in under 1 s and read at least as many
images/s as the manifest. The files are read just after being written, so from the page cache.
Walk and manifest decode PNGs with rasterio (GDAL), shards with Pillow: part of the per-image gap is
the decoder, not the storage.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from _results import replace_section

SIZE, CLASSES = 64, 16
READERS = ("walk", "manifest", "shards")
PART = Path("unlabeled", "RS4P-1M")


def _write_range(args: tuple[str, int, int]) -> None:
    """Write samples ``start..stop-1``: smooth image with mild noise, blocky class mask."""
    from PIL import Image

    root, start, stop = args
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for k in range(start, stop):
        rng = np.random.default_rng(k)
        base = rng.integers(0, 200, 3)
        ramp = (xx * rng.integers(0, 3) + yy * rng.integers(0, 3))[..., None]
        image = base + ramp + rng.integers(0, 8, (SIZE, SIZE, 3))
        blocks = rng.integers(0, CLASSES, (SIZE // 16, SIZE // 16))
        mask = np.kron(blocks, np.ones((16, 16), np.int64))
        name = f"img{k:07d}.png"
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(Path(root, PART, "images", name))
        Image.fromarray(mask.astype(np.uint8)).save(Path(root, PART, "masks", name))


def make_corpus(workdir: Path, n: int, jobs: int) -> dict[str, float]:
    """Write images, masks, manifest and shards into ``workdir`` (kept if already there for ``n``).

    Returns:
        Seconds spent on each step (0 for a step that was already done).
    """
    from s5geo.corpus.shard import manifest_samples, write_shards
    from s5geo.datasets import MillionSeg

    root, shards, done = workdir / "corpus", workdir / "shards", workdir / "corpus.json"
    if done.is_file() and json.loads(done.read_text()).get("n") == n and (shards / "index.json").is_file():
        return {"files_s": 0.0, "manifest_s": 0.0, "shards_s": 0.0}
    if shards.exists() or root.exists():
        raise SystemExit(f"{workdir}: holds another corpus; give an empty --workdir")
    for sub in ("images", "masks"):
        (root / PART / sub).mkdir(parents=True)
    times = {}
    start = time.perf_counter()
    step = 1000
    with Pool(jobs) as pool:
        pool.map(_write_range, [(str(root), a, min(a + step, n)) for a in range(0, n, step)])
    times["files_s"] = time.perf_counter() - start
    start = time.perf_counter()
    MillionSeg.write_manifest(root, root / "manifest.csv", part="pseudo_labeled")
    times["manifest_s"] = time.perf_counter() - start
    start = time.perf_counter()
    samples = manifest_samples(root, "manifest.csv", "pseudo_labeled")
    write_shards(samples, shards, chunk_bytes="64MB", workers=jobs, progress=False)
    times["shards_s"] = time.perf_counter() - start
    done.write_text(json.dumps({"n": n}))
    return times


def _vm_mb(key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read_once(reader: str, workdir: str, world: int, rank: int, batch: int, workers: int) -> dict[str, Any]:
    """Read one shuffled epoch of this rank's part; runs in a child process."""
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

    from s5geo.datasets import MillionSeg, SegmentationFolder
    from s5geo.datasets.shards import ShardedSegmentation

    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    root = Path(workdir, "corpus")
    rss_before = _vm_mb("VmRSS")
    start = time.perf_counter()
    loader: Any
    if reader == "shards":
        from litdata import StreamingDataLoader

        dataset = ShardedSegmentation(Path(workdir, "shards"), shuffle=True, drop_last=False, seed=0)
        loader = StreamingDataLoader(dataset, batch_size=batch, num_workers=workers)
    else:
        if reader == "walk":
            dataset = SegmentationFolder(root, classes=MillionSeg.classes)
        else:
            dataset = MillionSeg(root, part="pseudo_labeled", manifest="manifest.csv")
        sampler = (
            DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=0)
            if world > 1
            else RandomSampler(dataset, generator=torch.Generator().manual_seed(0))
        )
        loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers)
    images, first = 0, 0.0
    for k, sample in enumerate(loader):
        if k == 0:
            first = time.perf_counter()
        images += len(sample["image"])
    end = time.perf_counter()
    result = {
        "first_batch_s": first - start,
        "images": images,
        "pass_s": end - first,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _vm_mb("VmHWM"),
    }
    if world > 1:
        dist.destroy_process_group()
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(reader: str, workdir: Path, world: int, batch: int, workers: int) -> dict[str, Any]:
    """Run ``world`` child processes reading with ``reader``; combine what they report."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    procs = []
    for rank in range(world):
        config = [reader, str(workdir), world, rank, batch, workers]
        command = [sys.executable, __file__, "--child", json.dumps(config)]
        procs.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    ranks = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"{reader} x{world} failed:\n{err[-3000:]}")
        ranks.append(json.loads(out.strip().splitlines()[-1]))
    images = sum(r["images"] for r in ranks)
    # images after the first batch of each rank, over the slowest rank's time
    rest = images - sum(min(batch, r["images"]) for r in ranks)
    return {
        "reader": reader,
        "processes": world,
        "first_batch_s": max(r["first_batch_s"] for r in ranks),
        "images": images,
        "images_per_s": rest / max(max(r["pass_s"] for r in ranks), 1e-9),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in ranks),
        "reader_rss_mb": max(r["peak_rss_mb"] - r["rss_before_mb"] for r in ranks),
    }


def _options(args: argparse.Namespace) -> str:
    """The command-line options of this run that change the measurement."""
    options = [f"--n {args.n}"]
    if args.batch != 64:
        options.append(f"--batch {args.batch}")
    if args.workers:
        options.append(f"--workers {args.workers}")
    if args.processes != [1, 2]:
        options.append("--processes " + " ".join(map(str, args.processes)))
    if args.readers != list(READERS):
        options.append("--readers " + " ".join(args.readers))
    return " ".join(options)


def report(results: list[dict[str, Any]], args: argparse.Namespace, setup: dict[str, float]) -> str:
    """The ``## corpus`` section: command, setup, table and the goal."""
    import litdata
    import torch

    rows = [
        f"| {r['reader']} | {r['processes']} | {r['first_batch_s']:.2f} | {r['images_per_s']:.0f} | "
        f"{r['peak_rss_mb']:.0f} | {r['reader_rss_mb']:.0f} | {r['images']} |"
        for r in results
    ]
    by = {(r["reader"], r["processes"]): r for r in results}
    goal = []
    for world in sorted({r["processes"] for r in results}):
        shards, manifest = by.get(("shards", world)), by.get(("manifest", world))
        if shards and manifest:
            ratio = shards["images_per_s"] / manifest["images_per_s"]
            goal.append(
                f"- {world} process{'es' if world > 1 else ''}: shards' first batch "
                f"**{shards['first_batch_s']:.2f} s** (goal < 1 s); shards / manifest images/s "
                f"**{ratio:.2f}** (goal >= 1)"
            )
    made = (
        ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in setup.items())
        if any(setup.values())
        else ""
    )
    return "\n".join(
        [
            "## corpus",
            "",
            f"Command: `.venv/bin/python benchmarks/corpus.py {_options(args)} --write`",
            "",
            f"{args.n} images of {SIZE} x {SIZE} RGB PNG + 1-band PNG mask; batch {args.batch}, "
            f"{args.workers} loader workers, one shuffled epoch; {os.cpu_count()} CPUs, torch "
            f"{torch.__version__}, litdata {litdata.__version__}"
            + (f"; writing the corpus took: {made}" if made else "")
            + ". First batch: from before the dataset is built; images/s: the rest of the epoch, all "
            "processes together; peak RSS: the largest process (VmHWM); over imports: peak RSS minus "
            "the RSS after the imports, before the dataset is built. walk and manifest decode the PNG "
            "files with rasterio (GDAL), shards decode the stored bytes with Pillow.",
            "",
            "| reader | processes | first batch s | images/s | peak RSS MB | over imports MB | images read |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            *goal,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of images (100000)")
    parser.add_argument(
        "--workdir", type=Path, help="folder for the corpus (kept and reused; default: temporary)"
    )
    parser.add_argument("--batch", type=int, default=64, help="batch size (64)")
    parser.add_argument("--workers", type=int, default=0, help="loader workers per process (0)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="process counts (1 2)")
    parser.add_argument("--readers", nargs="+", choices=READERS, default=list(READERS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes writing the corpus")
    parser.add_argument("--write", action="store_true", help="replace the '## corpus' section of RESULTS.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(read_once(*json.loads(args.child))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        setup = make_corpus(workdir, args.n, args.jobs)
        print(f"corpus of {args.n} images in {workdir} ({setup})", flush=True)
        results = []
        for world in args.processes:
            for reader in args.readers:
                results.append(measure(reader, workdir, world, args.batch, args.workers))
                print(json.dumps(results[-1]), flush=True)
    text = report(results, args, setup)
    print(text)
    if args.write:
        replace_section(text)


if __name__ == "__main__":
    main()
