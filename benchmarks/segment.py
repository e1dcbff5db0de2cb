"""Benchmark ``s5geo.segment_raster``: overhead over bare forwards, and peak memory vs raster size.

Usage: ``.venv/bin/python benchmarks/segment.py [--sizes 4096 16384] [--sparse] [--jp2] [--workdir DIR]``
(GPU: ``--device cuda --model upernet_resnet50 --precision bf16 --channels-last``).

* overhead: segment time on the smallest size divided by the time of bare model forwards over the
  same number of windows at the same batch size and precision (target <= 1.10 on CPU). Each process
  runs ``--rounds`` pairs (segment, bare loop), alternating which goes first; the headline is the
  median of the paired ratios of all rounds of all ``--repeats`` processes, since a shared machine's
  speed drifts more between runs than the overhead being measured;
* memory: peak RSS (VmHWM) after the first run of a fresh subprocess per size (target ratio <= 1.2);
* throughput: windows/s and km²/s of the run, and the windows/s of the pipeline alone (read,
  normalise, blend, encode, write) with a predictor that answers at once: the most a GPU can get;
* GPU busy (``--device cuda``): forward time on the GPU (CUDA events) / wall time of the run;
* ``--sparse``: also a 2,000,000 x 2,000,000 VRT holding only the 4096 px tile (nodata elsewhere);
  its peak RSS against the 4096 px run's (target ratio <= 1.2) and its wall time.

The 4096 px input is a tiled GeoTIFF; larger sizes are VRT mosaics of it, so nothing large is
written to disk except the output maps. Results go to ``benchmarks/RESULTS.md`` (``## segment``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import replace_section

WINDOW, OVERLAP, BATCH, CLASSES = 512, 0.25, 4, 4
BASE = 4096
JP2 = f"{BASE} x {BASE} JPEG 2000"
SPARSE_SIZE = 2_000_000
SPARSE = f"{SPARSE_SIZE} x {SPARSE_SIZE} sparse VRT"


def tiny_model():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, CLASSES, 1)).eval()


def metadata():
    from s5geo.metadata import ModelMetadata

    return ModelMetadata(
        classes=[f"c{i}" for i in range(CLASSES)],
        colors=[(60 * i, 40, 200 - 40 * i) for i in range(CLASSES)],
        bands=[1, 2, 3],
        mean=[120.0] * 3,
        std=[60.0] * 3,
        window_size=WINDOW,
        overlap=OVERLAP,
    )


def make_inputs(workdir: Path, sizes: list[int]) -> dict[int, Path]:
    import rasterio
    from rasterio.transform import from_origin

    base = workdir / f"base_{BASE}.tif"
    transform = from_origin(600_000.0, 250_000.0, 1.0, 1.0)
    if not base.exists():
        rng = np.random.default_rng(0)
        with rasterio.open(
            base,
            "w",
            driver="GTiff",
            width=BASE,
            height=BASE,
            count=3,
            dtype="uint8",
            crs="EPSG:32119",
            transform=transform,
            tiled=True,
            blockxsize=512,
            blockysize=512,
            compress="deflate",
        ) as dst:
            yy, xx = np.mgrid[0:512, 0:BASE]
            for row in range(0, BASE, 512):
                pattern = (np.sin((yy + row) / 37.0) + np.cos(xx / 53.0)) * 60 + 120
                noise = rng.integers(0, 30, size=(3, 512, BASE))
                dst.write(
                    (pattern[None] + noise).clip(0, 255).astype("uint8"), window=((row, row + 512), (0, BASE))
                )
    paths = {}
    for size in sizes:
        if size == BASE:
            paths[size] = base
            continue
        n = size // BASE
        vrt = workdir / f"mosaic_{size}.vrt"
        sources = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="1">{base.name}</SourceFilename>'
            f'<SourceBand>{{band}}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{BASE}" '
            f'ySize="{BASE}"/><DstRect xOff="{c * BASE}" yOff="{r * BASE}" xSize="{BASE}" '
            f'ySize="{BASE}"/></SimpleSource>'
            for r in range(n)
            for c in range(n)
        )
        bands = "".join(
            f'<VRTRasterBand dataType="Byte" band="{b}">{sources.format(band=b)}</VRTRasterBand>'
            for b in (1, 2, 3)
        )
        with rasterio.open(base) as src:
            srs, gt = src.crs.to_wkt(), src.transform.to_gdal()
        vrt.write_text(
            f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>{srs}</SRS>'
            f"<GeoTransform>{', '.join(map(str, gt))}</GeoTransform>{bands}</VRTDataset>"
        )
        paths[size] = vrt
    return paths


def make_sparse(base: Path, size: int = SPARSE_SIZE) -> Path:
    """A ``size`` px square VRT holding ``base`` near its centre; its bands' nodata (0) elsewhere."""
    import rasterio

    vrt = base.with_name(f"sparse_{size}.vrt")
    offset = size // 2 + 123  # not on the window grid
    with rasterio.open(base) as src:
        srs = src.crs.to_wkt()
        gt = (src.transform @ src.transform.translation(-offset, -offset)).to_gdal()
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}"><NoDataValue>0</NoDataValue>'
        f'<SimpleSource><SourceFilename relativeToVRT="1">{base.name}</SourceFilename>'
        f'<SourceBand>{b}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{BASE}" ySize="{BASE}"/>'
        f'<DstRect xOff="{offset}" yOff="{offset}" xSize="{BASE}" ySize="{BASE}"/></SimpleSource>'
        "</VRTRasterBand>"
        for b in (1, 2, 3)
    )
    vrt.write_text(
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>{srs}</SRS>'
        f"<GeoTransform>{', '.join(map(str, gt))}</GeoTransform>{bands}</VRTDataset>"
    )
    return vrt


def make_jp2(base: Path) -> Path:
    """Copy the base GeoTIFF to JPEG 2000 (GDAL's OpenJPEG driver, 512 px tiles, lossy as orthophotos are)."""
    import rasterio
    from rasterio.shutil import copy as copy_raster

    path = base.with_suffix(".jp2")
    if not path.exists():
        with rasterio.open(base) as src:
            copy_raster(src, path, driver="JP2OpenJPEG", BLOCKXSIZE=512, BLOCKYSIZE=512, QUALITY=25)
    return path


def _label(size: int | str) -> str:
    return f"{size} x {size}" if isinstance(size, int) else str(size)


def build(name: str, channels_last: bool = False):
    """The benchmark model: ``tiny`` (above) or a registered s5geo model, randomly initialised."""
    if name == "tiny":
        return tiny_model()
    import torch

    from s5geo.models.registry import build_model

    torch.manual_seed(0)
    return build_model(name, num_classes=CLASSES, in_channels=3, channels_last=channels_last).eval()


class InstantPredictor:
    """Returns fixed logits at once: what the read/blend/write pipeline alone can sustain."""

    device_name = "none"
    returns_logits = True

    def __init__(self, batch: int) -> None:
        self.metadata = metadata()
        self.scores = (
            np.random.default_rng(0).normal(size=(batch, CLASSES, WINDOW, WINDOW)).astype(np.float32)
        )

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.scores[: len(x)]


def run_one(input_path: str, output: str, options: dict) -> dict:
    """Segment one input ``rounds`` times in this process, each paired with a loop of bare forwards.

    Rounds alternate the order (segment first, then bare forwards first) so that neither gets the
    warmer machine; round 0 is the cold run (peak RSS is read after it).
    """
    import rasterio
    import torch
    from torch import nn

    from s5geo.inference.segment import segment_raster
    from s5geo.inference.tiling import WindowGrid

    device, batch, rounds = options["device"], options["batch"], options["rounds"]
    cuda = device.startswith("cuda")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[options["precision"]]

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    class Timed(nn.Module):
        """The model, timing its forwards inside the run (CUDA events on a GPU: no extra syncs)."""

        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner, self.seconds, self.windows, self.events = inner, 0.0, 0, []

        def forward(self, x):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                y = self.inner(x)
                end.record()
                self.events.append((start, end))
            else:
                begin = time.perf_counter()
                y = self.inner(x)
                self.seconds += time.perf_counter() - begin
            self.windows += x.shape[0]
            return y

        def forward_seconds(self) -> float:
            sync()
            return self.seconds + sum(s.elapsed_time(e) for s, e in self.events) / 1000

    model = Timed(build(options["model"], options["channels_last"]))
    with rasterio.open(input_path) as src:
        grid = WindowGrid(src.height, src.width, WINDOW, OVERLAP)
        area_km2 = src.width * src.height * abs(src.res[0] * src.res[1]) / 1e6

    def segment(predictor=None) -> float:
        start = time.perf_counter()
        segment_raster(
            input_path,
            predictor or model,
            output,
            metadata=None if predictor else metadata(),
            batch_size=batch,
            blend="cosine",
            device=device,
            precision="fp32" if predictor else options["precision"],
            overwrite=True,
            progress=False,
        )
        return time.perf_counter() - start

    def bare(n_batches: int) -> float:
        """Forwards on a random batch on the device, same batch size and precision as the run."""
        x = torch.randn(batch, 3, WINDOW, WINDOW, device=device)
        sync()
        start = time.perf_counter()
        with (
            torch.inference_mode(),
            torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None),
        ):
            for _ in range(n_batches):
                model.inner(x)
        sync()
        return time.perf_counter() - start

    rss_before = _vm("VmRSS")
    segment_s, bare_s = [], []
    for k in range(rounds):
        model.seconds, model.windows, model.events = 0.0, 0, []
        if k % 2 == 0:
            segment_s.append(segment())
            if k == 0:
                peak, forwards, predicted = _vm("VmHWM"), model.forward_seconds(), model.windows
            bare_s.append(bare(-(-predicted // batch)))
        else:
            bare_s.append(bare(-(-predicted // batch)))
            segment_s.append(segment())
    alone = segment(InstantPredictor(batch))
    return {
        "windows": len(grid),
        "predicted": predicted,
        "segment_s": segment_s,
        "bare_s": bare_s,
        "ratios": [s / b for s, b in zip(segment_s, bare_s, strict=True)],
        "forward_in_run_s": forwards,
        "alone_s": alone,
        "area_km2": area_km2,
        "threads": torch.get_num_threads(),
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
    }


def _windows(result: dict) -> str:
    """Windows of the grid, with those predicted when fewer."""
    if result["predicted"] < result["windows"]:
        return f"{result['predicted']} of {result['windows']}"
    return str(result["windows"])


def _join(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _vm(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summarise(runs: list[dict]) -> dict:
    """Medians over the processes (``runs``) of one input; paired ratios pooled over all rounds."""
    first = [r["segment_s"][0] for r in runs]
    pick = runs[sorted(range(len(runs)), key=lambda k: first[k])[(len(runs) - 1) // 2]]
    ratios = [v for r in runs for v in r["ratios"]]
    segment_s = float(np.median([v for r in runs for v in r["segment_s"]]))
    return {
        **pick,
        "segment_median_s": segment_s,
        "bare_median_s": float(np.median([v for r in runs for v in r["bare_s"]])),
        "ratio": float(np.median(ratios)),
        "ratios": ratios,
        "cold_ratio": float(np.median([r["ratios"][0] for r in runs])),
        "ratio_in_run": pick["segment_s"][0] / pick["forward_in_run_s"],
        "busy": pick["forward_in_run_s"] / pick["segment_s"][0],
        "windows_per_s": pick["predicted"] / segment_s,
        "alone_windows_per_s": float(np.median([r["predicted"] / r["alone_s"] for r in runs])),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--device", default="cpu", help="device of the model (cpu, cuda)")
    parser.add_argument("--model", default="tiny", help="tiny, or a registered model (upernet_resnet50)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--batch", type=int, default=BATCH, help="windows per forward")
    parser.add_argument("--channels-last", action="store_true", help="channels-last model (GPU convs)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help=f"segment + bare-forward pairs per process on the {BASE} px input (other inputs: 1)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="processes per input; medians are over all of them"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--jp2", action="store_true", help=f"add a row for the {BASE} px input stored as JPEG 2000"
    )
    parser.add_argument(
        "--sparse",
        action="store_true",
        help=f"add a row for a {SPARSE_SIZE} px square VRT holding only the {BASE} px tile",
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], args.child[1], json.loads(args.child[2]))))
        return
    if args.sparse and BASE not in args.sizes:
        args.sizes = [BASE, *args.sizes]
    options = {
        "device": args.device,
        "model": args.model,
        "precision": args.precision,
        "batch": args.batch,
        "channels_last": args.channels_last,
    }
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        inputs: dict[int | str, Path] = dict(make_inputs(workdir, args.sizes))
        if args.jp2:
            inputs[JP2] = make_jp2(inputs.get(BASE) or make_inputs(workdir, [BASE])[BASE])
        if args.sparse:
            inputs[SPARSE] = make_sparse(inputs[BASE])
        results = {}
        for size, path in inputs.items():
            runs = []
            child = {**options, "rounds": max(1, args.rounds) if size == BASE else 1}
            for _ in range(max(1, args.repeats)):
                name = f"out_{str(size).replace(' ', '_')}.tif"
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), str(workdir / name), json.dumps(child)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(size, runs[-1], flush=True)
            results[size] = summarise(runs)
    print(report(results, args))
    if not args.no_write:
        replace_section(report(results, args))


def report(results: dict, args: argparse.Namespace) -> str:
    """The ``## segment`` section: command, table and the derived figures."""
    cuda = args.device.startswith("cuda")
    sizes = [s for s in results if isinstance(s, int)]
    smallest, largest = min(sizes), max(sizes)
    base = results[smallest]
    rows = [
        f"| {_label(s)} | {_windows(r)} | {r['segment_median_s']:.1f} | {r['forward_in_run_s']:.1f} | "
        f"{r['ratio_in_run']:.2f} | {r['bare_median_s']:.1f} | {r['ratio']:.2f} | "
        f"{r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['windows_per_s']:.0f} | "
        + (f"{r['area_km2'] / r['segment_median_s']:.1f}" if s != SPARSE else "-")
        + f" | {r['alone_windows_per_s']:.0f} |"
        + (f" {100 * r['busy']:.0f}% |" if cuda else "")
        for s, r in results.items()
    ]
    command = (
        f"`.venv/bin/python benchmarks/segment.py --device {args.device} --sizes "
        + " ".join(map(str, args.sizes))
        + (f" --model {args.model}" if args.model != "tiny" else "")
        + (f" --precision {args.precision}" if args.precision != "fp32" else "")
        + (f" --batch {args.batch}" if args.batch != BATCH else "")
        + (" --channels-last" if args.channels_last else "")
        + (" --jp2" if args.jp2 else "")
        + (" --sparse" if args.sparse else "")
        + f" --rounds {args.rounds} --repeats {args.repeats}`"
    )
    model = (
        f"Conv3x3(3->8)+ReLU+Conv1x1(8->{CLASSES})"
        if args.model == "tiny"
        else f"{args.model}, {CLASSES} classes"
    )
    header = (
        "| size | windows | segment s | forwards in run s | ratio | bare forwards s | paired ratio | "
        "RSS before MB | peak RSS MB | windows/s | km²/s | pipeline alone windows/s |"
        + (" GPU busy |" if cuda else "")
    )
    lines = [
        "## segment",
        "",
        f"Command: {command}",
        "",
        f"{args.device}, {base['threads']} torch threads, torch {__import__('torch').__version__}; model: "
        f"{model}, {args.precision}; window {WINDOW}, overlap {OVERLAP}, batch {args.batch}, blend cosine; "
        f"input uint8 3-band tiled GeoTIFF ({BASE} px, 1 m pixels), larger sizes as VRT mosaics of it.",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
        *rows,
        "",
        f"- overhead at {smallest} px against bare forwards: **{base['ratio']:.2f}**, the median of "
        f"{len(base['ratios'])} paired rounds (all: {_join(sorted(base['ratios']))}); "
        f"first (cold) run of each process: {base['cold_ratio']:.2f}; against the forwards inside the "
        f"run: {base['ratio_in_run']:.2f}",
    ]
    if largest != smallest:
        ratio = results[largest]["peak_rss_mb"] / base["peak_rss_mb"]
        lines.append(f"- peak RSS ratio {largest} px / {smallest} px: **{ratio:.2f}** (target <= 1.2)")
    if JP2 in results and BASE in results:
        ratio = results[JP2]["segment_median_s"] / results[BASE]["segment_median_s"]
        lines.append(
            f"- JPEG 2000 input ({BASE} px): {results[JP2]['segment_median_s']:.1f} s, "
            f"{ratio:.2f}x the GeoTIFF"
        )
    if SPARSE in results:
        sparse = results[SPARSE]
        lines.append(
            f"- sparse {SPARSE_SIZE} px VRT (the {BASE} px tile, nodata elsewhere): peak RSS "
            f"{sparse['peak_rss_mb']:.0f} MB, "
            f"**{sparse['peak_rss_mb'] / results[BASE]['peak_rss_mb']:.2f}x** "
            f"the {BASE} px run (target <= 1.2), {sparse['segment_median_s']:.1f} s"
        )
    if cuda:
        lines.append(
            f"- GPU busy = forward time on the GPU (CUDA events) / wall time of the run: "
            f"**{100 * base['busy']:.0f}%** at {smallest} px (target >= 90%)"
        )
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    main()
