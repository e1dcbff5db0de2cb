"""Benchmark ``s5geo.segment_raster``: overhead over bare forwards, and peak memory vs raster size.

Usage: ``.venv/bin/python benchmarks/segment.py [--sizes 4096 16384] [--sparse] [--workdir DIR]``

* overhead: total segment time on the smallest size divided by the time of the bare model forwards
  over the same number of windows at the same batch size (target <= 1.15 on CPU, small model);
* memory: peak RSS (VmHWM) of a fresh subprocess segmenting each size (target ratio <= 1.2);
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


def run_one(input_path: str, output: str, device: str = "cpu") -> dict:
    """Segment one input in this process; return timings and peak RSS."""
    import rasterio
    import torch
    from torch import nn

    from s5geo.inference.segment import segment_raster
    from s5geo.inference.tiling import WindowGrid

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    class Timed(nn.Module):
        """The model, timing its forwards inside the run (same windows, same load)."""

        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner, self.seconds, self.windows = inner, 0.0, 0

        def forward(self, x):
            sync()
            start = time.perf_counter()
            y = self.inner(x)
            sync()
            self.seconds += time.perf_counter() - start
            self.windows += x.shape[0]
            return y

    model = Timed(tiny_model())
    with rasterio.open(input_path) as src:
        grid = WindowGrid(src.height, src.width, WINDOW, OVERLAP)
    rss_before = _vm("VmRSS")
    start = time.perf_counter()
    segment_raster(
        input_path,
        model,
        output,
        metadata=metadata(),
        batch_size=BATCH,
        blend="cosine",
        device=device,
        overwrite=True,
        progress=False,
    )
    total = time.perf_counter() - start
    # Bare forwards over the windows the run predicted, same batch size (after the run: same warmth).
    x = torch.randn(BATCH, 3, WINDOW, WINDOW, device=device)
    n_batches = -(-model.windows // BATCH)
    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(n_batches):
            model.inner(x)
    sync()
    bare = time.perf_counter() - start
    return {
        "windows": len(grid),
        "predicted": model.windows,
        "total_s": total,
        "bare_s": bare,
        "ratio": total / bare,
        "forward_in_run_s": model.seconds,
        "ratio_in_run": total / model.seconds,
        "threads": torch.get_num_threads(),
        "rss_before_mb": rss_before,
        "peak_rss_mb": _vm("VmHWM"),
    }


def _windows(result: dict) -> str:
    """Windows of the grid, with those predicted when fewer."""
    if result["predicted"] < result["windows"]:
        return f"{result['predicted']} of {result['windows']}"
    return str(result["windows"])


def _vm(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--device", default="cpu", help="device of the model (cpu, cuda)")
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
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs per input (fresh subprocesses); the table shows the run with the median "
        "ratio to bare forwards",
    )
    args = parser.parse_args()
    if args.sparse and BASE not in args.sizes:
        args.sizes = [BASE, *args.sizes]
    if args.child:
        print(json.dumps(run_one(*args.child)))
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        inputs: dict[int | str, Path] = dict(make_inputs(workdir, args.sizes))
        if args.jp2:
            inputs[JP2] = make_jp2(inputs.get(BASE) or make_inputs(workdir, [BASE])[BASE])
        if args.sparse:
            inputs[SPARSE] = make_sparse(inputs[BASE])
        results = {}
        spread: dict[int | str, list[float]] = {}
        for size, path in inputs.items():
            runs = []
            for _ in range(max(1, args.repeats)):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        str(path),
                        str(workdir / f"out_{str(size).replace(' ', '_')}.tif"),
                        args.device,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(size, runs[-1], flush=True)
            runs.sort(key=lambda r: r["ratio"])
            results[size] = runs[(len(runs) - 1) // 2]
            spread[size] = [r["ratio"] for r in runs]
    sizes = [s for s in results if isinstance(s, int)]
    smallest, largest = min(sizes), max(sizes)
    rows = [
        f"| {_label(s)} | {_windows(r)} | {r['total_s']:.1f} | {r['forward_in_run_s']:.1f} | "
        f"{r['ratio_in_run']:.2f} | {r['bare_s']:.1f} | {r['ratio']:.2f} | "
        f"{r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} |"
        for s, r in results.items()
    ]
    rss_ratio = results[largest]["peak_rss_mb"] / results[smallest]["peak_rss_mb"]
    text = "\n".join(
        [
            "## segment",
            "",
            f"Command: `.venv/bin/python benchmarks/segment.py --device {args.device} --sizes "
            + " ".join(map(str, args.sizes))
            + (" --jp2" if args.jp2 else "")
            + (" --sparse" if args.sparse else "")
            + (f" --repeats {args.repeats}" if args.repeats > 1 else "")
            + "`",
            "",
            f"{args.device}, {results[smallest]['threads']} torch threads, torch "
            f"{__import__('torch').__version__}, model: Conv3x3(3->8)+ReLU+Conv1x1(8->"
            f"{CLASSES}); window {WINDOW}, overlap {OVERLAP}, batch {BATCH}, blend cosine; input uint8 "
            f"3-band tiled GeoTIFF ({BASE} px), larger sizes as VRT mosaics of it.",
            "",
            "| size | windows | segment s | forwards in run s | ratio | separate bare forwards s | "
            "ratio | RSS before MB | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"- overhead (segment / forwards in the run), {smallest} px: "
            f"**{results[smallest]['ratio_in_run']:.2f}** (target <= 1.15); against a separate "
            f"loop of bare forwards: {results[smallest]['ratio']:.2f}"
            + (
                f" (median of {len(spread[smallest])} runs; all: "
                + ", ".join(f"{v:.2f}" for v in spread[smallest])
                + ")"
                if len(spread[smallest]) > 1
                else ""
            ),
            *(
                [f"- peak RSS ratio {largest} px / {smallest} px: **{rss_ratio:.2f}** (target <= 1.2)"]
                if largest != smallest
                else []
            ),
            *(
                [
                    f"- JPEG 2000 input ({BASE} px): {results[JP2]['total_s']:.1f} s, "
                    f"{results[JP2]['total_s'] / results[BASE]['total_s']:.2f}x the tiled GeoTIFF"
                ]
                if JP2 in results and BASE in results
                else []
            ),
            *(
                [
                    f"- sparse {SPARSE_SIZE} px VRT (the {BASE} px tile, nodata elsewhere): peak RSS "
                    f"{results[SPARSE]['peak_rss_mb']:.0f} MB, "
                    f"**{results[SPARSE]['peak_rss_mb'] / results[BASE]['peak_rss_mb']:.2f}x** the "
                    f"{BASE} px run (target <= 1.2), {results[SPARSE]['total_s']:.1f} s"
                ]
                if SPARSE in results
                else []
            ),
            "",
        ]
    )
    print(text)
    if not args.no_write:
        replace_section(text)


if __name__ == "__main__":
    main()
