"""``s5geo demo``: the main job on the sample data shipped with s5geo.

1. S5 on real imagery (Dubai aerial): an ImageNet-initialised network trained with FixMatch on a few labeled
   + many unlabeled images, against a supervised-only model from the same start and labeled images, each
   trained for the length chosen on a validation tile; mIoU of both on held-out tiles and a figure.
2. Georeferenced output (NC Landsat): a FixMatch model trained from sparse labels segments the whole scene
   into a GeoTIFF in the scene's CRS, scored against the dense land-cover map, then turned into polygons.
3. A Markdown report linking everything.

Every step writes its outputs atomically and is skipped on a re-run unless ``force`` is set.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from s5geo._version import __version__
from s5geo.demo.steps import StepRunner, folder_lock


def sample_data_root() -> Path:
    """Folder of the sample data shipped inside the package."""
    return Path(str(resources.files("s5geo") / "sample_data"))


def _dubai_steps(runner: StepRunner, data: Path, out: Path, quick: bool, progress: bool) -> dict[str, Any]:
    import torch

    from s5geo.demo import dubai
    from s5geo.tasks import SupervisedSegmentation

    config = dubai.DubaiConfig()
    if quick:
        config = replace(
            config, pretrain_steps=2, supervised_steps=2, finetune_steps=0, crop_size=64, batch_size=2
        )
    dataset = dubai.dubai_dataset(data / "dubai_aerial")
    split = dubai.split_dubai(dataset, config.labeled_per_tile, config.held_out_tiles, config.seed)
    datamodule = dubai.make_datamodule(dataset, split, config)
    cfg = config.to_dict()
    s5_ckpt, sup_ckpt = out / "dubai_s5.ckpt", out / "dubai_supervised.ckpt"
    s5_class = dubai.s5_task_class(config)
    figure = out / "dubai_comparison.png"

    runner.run(
        "dubai_supervised",
        cfg,
        [sup_ckpt],
        lambda: dubai.train_supervised(datamodule, config, sup_ckpt, progress),
    )
    start = sup_ckpt if config.s5_start == "supervised" else None
    if config.finetune_steps:
        s5_pre = out / "dubai_s5_pretrain.ckpt"
        runner.run(
            "dubai_s5_pretrain",
            cfg,
            [s5_pre],
            lambda: dubai.pretrain(datamodule, config, s5_pre, progress=progress, init_from=start),
        )
        runner.run(
            "dubai_s5_finetune",
            cfg,
            [s5_ckpt],
            lambda: dubai.finetune(datamodule, config, s5_pre, s5_ckpt, progress),
        )
    else:
        runner.run(
            "dubai_s5",
            cfg,
            [s5_ckpt],
            lambda: dubai.pretrain(datamodule, config, s5_ckpt, progress=progress, init_from=start),
        )

    def evaluate() -> dict[str, Any]:
        metrics = {
            "supervised": dubai.evaluate(SupervisedSegmentation, sup_ckpt, datamodule),
            "s5": dubai.evaluate(s5_class, s5_ckpt, datamodule),
        }
        shown = split["held_out"][:: max(1, len(split["held_out"]) // 3)][:3]
        samples = [dataset[index] for index in shown]
        images = [sample["image"] for sample in samples]
        predictions = {
            "supervised": dubai.predict_images(SupervisedSegmentation, sup_ckpt, images),
            "s5": dubai.predict_images(s5_class, s5_ckpt, images),
        }
        rows = [
            {
                "name": "/".join(Path(dataset.files[index]["image"]).parts[-3::2]),  # type: ignore[arg-type]
                "image": sample["image"],
                "mask": sample["mask"].numpy(),
                "supervised": predictions["supervised"][i],
                "s5": predictions["s5"][i],
            }
            for i, (index, sample) in enumerate(zip(shown, samples, strict=True))
        ]
        from s5geo.demo.report import comparison_figure

        comparison_figure(rows, dataset.colors, dataset.classes, figure)
        return metrics

    torch.manual_seed(config.seed)
    metrics = runner.run("dubai_evaluate", cfg, [figure], evaluate)
    return {
        "config": cfg,
        "classes": list(dataset.classes),
        "split": {k: len(v) for k, v in split.items()},
        "metrics": metrics,
    }


def _landsat_steps(runner: StepRunner, data: Path, out: Path, quick: bool, progress: bool) -> dict[str, Any]:
    from s5geo.demo import landsat
    from s5geo.inference import segment_raster
    from s5geo.vector import vectorize

    config = landsat.LandsatConfig()
    if quick:
        config = replace(config, steps=2, labeled_chips=40, unlabeled_chips=40, batch_size=2)
    root = data / "nc_landsat"
    cfg = config.to_dict()
    ckpt, stack = out / "landsat.ckpt", out / "landsat_bands.tif"
    classmap, polygons = out / "landsat_landcover.tif", out / "landsat_landcover.gpkg"

    runner.run("landsat_train", cfg, [ckpt], lambda: landsat.train(root, config, ckpt, progress) or {})

    def segment() -> dict[str, Any]:
        import numpy as np
        import rasterio

        landsat.stack_bands(root, stack)
        segment_raster(
            stack,
            ckpt,
            classmap,
            window_size=config.window_size,
            overlap=config.overlap,
            device="cpu",
            overwrite=True,
            progress=progress,
        )
        with rasterio.open(classmap) as src:
            prediction = src.read(1)
        reference = landsat.reference_on_grid(root / "strata.tif", classmap)
        return landsat.score(prediction, np.asarray(reference), len(landsat.NC_LANDSAT_CLASSES))

    metrics = runner.run("landsat_segment", cfg, [stack, classmap], segment)

    def polygonise() -> dict[str, Any]:
        frame = vectorize(
            classmap, output=polygons, min_area=4 * 28.5**2, simplify=14.25, overwrite=True, progress=progress
        )
        return {"polygons": len(frame)}

    count = runner.run("landsat_vectorize", cfg, [polygons], polygonise)
    return {
        "config": cfg,
        "metrics": metrics,
        "polygons": count["polygons"],
        "labeled_chips": config.labeled_chips,
        "unlabeled_chips": config.unlabeled_chips,
    }


def run_demo(
    output: Path,
    *,
    force: bool = False,
    quick: bool = False,
    data: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo into ``output`` and return its summary (also written to ``report.md``).

    Args:
        output: folder for checkpoints, maps, polygons, figure and report.
        force: redo steps that an earlier run finished.
        quick: a smoke run with a handful of steps (for tests; the numbers mean nothing).
        data: sample data folder (default: the one shipped in the package).
        progress: show progress bars.
        log: function used to print progress lines.
    """
    from s5geo.demo.report import write_report

    # The demo prints its own step lines; Lightning's per-fit banners and tips would drown them.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # Lightning's notice for training without a validation loader.
    warnings.filterwarnings("ignore", message=".*Total length of .* across ranks is zero.*")
    data = data or sample_data_root()
    output = Path(output)
    start = time.perf_counter()
    with folder_lock(output):
        runner = StepRunner(output, force=force, log=log)
        summary: dict[str, Any] = {"version": __version__}
        summary["dubai"] = _dubai_steps(runner, data, output, quick, progress)
        summary["landsat"] = _landsat_steps(runner, data, output, quick, progress)
        summary["seconds"] = time.perf_counter() - start
        summary["outputs"] = [
            "dubai_comparison.png",
            "dubai_s5.ckpt",
            "dubai_supervised.ckpt",
            "landsat_landcover.tif",
            "landsat_landcover.gpkg",
            "landsat.ckpt",
        ]
        write_report(output, summary)
    return summary
