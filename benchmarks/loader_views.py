"""Padding in the labeled training views: crop-then-rescale against the reference rescale-then-crop.

Writes 1024 px iSAID-layout fixtures (the palette and block pattern of the seeded generator in
``tests/data/isaid/data.py``; every mask pixel is a class, none is ignored), then draws labeled views
of ``--crop`` px with the ``SemiSupervisedDataModule`` loader and weak view in both ``crop_order`` modes:
``crop_then_rescale`` (a ``--crop`` crop in the loader, rescaled by 0.5-2 on the device) and
``rescale_then_crop`` (the whole image rescaled by 0.5-2 in the loader, then cropped; the reference).
Reports the share of views that contain padding and the share of labeled pixels ignored because of
padding, and rewrites the ``loader views`` section of ``benchmarks/RESULTS.md`` unless ``--no-write``.

    python benchmarks/loader_views.py --views 2000
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _results import replace_section
from PIL import Image
from torch.utils.data import Dataset

from s5geo.datamodules import SemiSupervisedDataModule
from s5geo.datasets import ISAIDSegmentation

GENERATOR = Path(__file__).resolve().parents[1] / "tests" / "data" / "isaid" / "data.py"
MODES = ("crop_then_rescale", "rescale_then_crop")


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("isaid_fixtures", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_fixtures(root: Path, count: int, side: int, seed: int = 0) -> None:
    """``count`` iSAID training images of ``side`` px (official layout), masks in the devkit palette."""
    fixtures = _generator()
    rng = np.random.default_rng(seed)
    images, masks = root / "train" / "images", root / "train" / "Semantic_masks" / "images"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for index in range(count):
        classes = fixtures.blocks(rng, len(fixtures.PALETTE), side, side, size=32)
        value = (10 * classes + 5).astype(np.uint8)
        Image.fromarray(np.stack([value] * 3, -1), "RGB").save(images / f"P{index:04d}.png")
        Image.fromarray(fixtures.PALETTE[classes], "RGB").save(masks / f"P{index:04d}_instance_color_RGB.png")


class _Blank(Dataset):
    """A cheap unlabeled stream: only its length matters here (it sets the number of batches)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": torch.ones(3, 8, 8)}


def measure(labeled: Dataset, mode: str, views: int, crop: int, batch: int, seed: int) -> dict[str, float]:
    """Draw ``views`` labeled views in ``mode`` and count padding (255 in masks that have none)."""
    datamodule = SemiSupervisedDataModule(
        labeled,
        _Blank(-(-views // batch)),
        batch_size_labeled=batch,
        batch_size_unlabeled=1,
        crop_size=crop,
        crop_order=mode,
        partner_batch=None,
        seed=seed,
    )
    torch.manual_seed(seed)
    padded_views, ignored, total, start = 0, 0.0, 0, time.perf_counter()
    for raw in datamodule.train_dataloader():
        mask = datamodule.transform_batch(raw, "train")["labeled"]["mask"]
        padding = (mask == 255).flatten(1)
        padded_views += int(padding.any(1).sum())
        ignored += float(padding.float().mean(1).sum())
        total += mask.shape[0]
    return {
        "views": total,
        "padded_views": 100 * padded_views / total,
        "ignored": 100 * ignored / total,
        "seconds": time.perf_counter() - start,
    }


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    """The Markdown section."""
    lines = [
        "## loader views",
        "",
        f"Command: `.venv/bin/python benchmarks/loader_views.py --views {args.views} --images {args.images}`",
        f"(development machine, 2 shared cores). {args.images} iSAID-layout fixtures of {args.side} px (the",
        "seeded generator's palette, no ignored pixels), labeled views of "
        f"{args.crop} px from `SemiSupervisedDataModule`,",
        "rescale 0.5-2, after the device-side weak view; padding = mask 255.",
        "",
        "| `crop_order` | views | views with padding % | labeled pixels ignored (padding) % | seconds |",
        "|---|---|---|---|---|",
    ]
    for mode, r in results.items():
        lines.append(
            f"| `{mode}` | {r['views']} | {r['padded_views']:.1f} | {r['ignored']:.1f} | {r['seconds']:.0f} |"
        )
    lines += [
        "",
        "`crop_then_rescale` is the former default (a factor below 1 shrinks the 512 px crop, which is",
        "padded back); `rescale_then_crop`, the reference order and the default now, pads only images",
        "smaller than the crop after rescaling, which a 1024 px image never is at a factor of 0.5 or more.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write the fixtures, measure both modes, print (and record) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=2000, help="labeled views per mode")
    parser.add_argument("--images", type=int, default=16, help="fixture images")
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_fixtures(root, args.images, args.side, args.seed)
        labeled = ISAIDSegmentation(root, split="train", tile_size=args.side)
        assert all(int((labeled[i]["mask"] == 255).sum()) == 0 for i in range(len(labeled)))
        results = {
            mode: measure(labeled, mode, args.views, args.crop, args.batch, args.seed) for mode in MODES
        }
    text = report(results, args)
    print(text)
    if not args.no_write:
        replace_section(text)


if __name__ == "__main__":
    main()
