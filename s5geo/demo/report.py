"""The demo's figure and Markdown report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from s5geo.datasets._base import colorize, image_for_display
from s5geo.demo.steps import atomic_path, publish


def comparison_figure(
    rows: Sequence[dict[str, Any]],
    colors: Sequence[Sequence[int]],
    classes: Sequence[str],
    output: Path,
) -> Path:
    """Save a PNG grid: image, ground truth, supervised-only and S5 prediction per row.

    Args:
        rows: dicts with ``image`` (C x H x W raw), ``mask``, ``supervised``, ``s5`` (H x W) and ``name``.
        colors: class colours.
        classes: class names (for the legend).
        output: PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    titles = ("Image", "Ground truth", "Supervised only", "S5 (FixMatch)")
    fig, axes = plt.subplots(len(rows), 4, figsize=(13, 3.3 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows, strict=True):
        panels = [image_for_display(row["image"])] + [
            colorize(np.asarray(row[key]), colors) for key in ("mask", "supervised", "s5")
        ]
        for col, (ax, panel) in enumerate(zip(ax_row, panels, strict=True)):
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(titles[col] if col else f"{titles[0]}: {row['name']}", fontsize=9)
    legend = [Patch(color=np.asarray(c) / 255, label=n) for n, c in zip(classes, colors, strict=True)]
    legend.append(Patch(color="black", label="ignored"))
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    tmp = atomic_path(output)
    fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return publish(tmp, output)


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{100 * value:.1f}"


def write_report(output: Path, summary: dict[str, Any]) -> Path:
    """Write ``report.md`` linking the demo's outputs and giving its numbers."""
    dubai, landsat = summary["dubai"], summary["landsat"]
    cfg = dubai["config"]
    start = f"from `{cfg['init_from']}`" if cfg.get("init_from") else "from a random initialisation"
    s5_name = (
        "S5: FixMatch pre-training + fine-tuning"
        if cfg.get("finetune_steps")
        else "S5: FixMatch (labeled + unlabeled)"
    )
    lines = [
        "# s5geo demo report",
        "",
        f"s5geo {summary['version']}, total time {summary['seconds']:.0f} s.",
        "",
        "## S5 on real imagery (Dubai aerial sample)",
        "",
        f"Split by tile: held-out tiles {', '.join(dubai['config']['held_out_tiles'])} "
        f"({dubai['split']['held_out']} images) are never trained on; "
        f"{dubai['split']['labeled']} labeled and {dubai['split']['unlabeled']} unlabeled training images. "
        f"Both models are `{cfg['model']}` {start} and get the same labeled images; each is trained for "
        f"the length chosen on a validation tile: S5 {cfg['pretrain_steps']} FixMatch steps"
        + (
            " starting from the supervised model (its first pseudo-labels come from a trained network)"
            if cfg.get("s5_start") == "supervised"
            else ""
        )
        + (f" + {cfg['finetune_steps']} fine-tuning steps" if cfg.get("finetune_steps") else "")
        + f" (lr {cfg['lr']:g}, tau {cfg['tau']:g}), supervised only {cfg.get('supervised_steps')} steps "
        f"(lr {cfg.get('supervised_lr', cfg['lr']):g}). This is one seed; the verdict on S5 against "
        "supervised training is the benchmark's, over paired seeds (benchmarks/RESULTS.md, "
        "semi_supervised_real).",
        "",
        "| model | mIoU | mF1 | OA |",
        "|---|---|---|---|",
    ]
    for key, name in (("supervised", "supervised only"), ("s5", s5_name)):
        m = dubai["metrics"][key]
        lines.append(f"| {name} | {_pct(m.get('mIoU'))} | {_pct(m.get('mF1'))} | {_pct(m.get('OA'))} |")
    lines += [
        "",
        "Per-class IoU (held-out tiles):",
        "",
        "| class | supervised | S5 |",
        "|---|---|---|",
    ]
    for name in dubai["classes"]:
        sup = dubai["metrics"]["supervised"].get(f"IoU_{name}")
        s5 = dubai["metrics"]["s5"].get(f"IoU_{name}")
        lines.append(f"| {name} | {_pct(sup)} | {_pct(s5)} |")
    lines += [
        "",
        "![comparison](dubai_comparison.png)",
        "",
        "## Georeferenced output (NC Landsat sample)",
        "",
        f"FixMatch on {landsat['labeled_chips']} labeled chips "
        "(sparse labelled pixels and training polygons) "
        f"and {landsat['unlabeled_chips']} unlabeled chips; the whole scene segmented with "
        "`segment_raster` and compared with the dense 1996 land-cover map `strata.tif` "
        f"({landsat['metrics']['pixels']} pixels).",
        "",
        f"mIoU {_pct(landsat['metrics']['mIoU'])}, mF1 {_pct(landsat['metrics']['mF1'])}, "
        f"OA {_pct(landsat['metrics']['OA'])}.",
        "",
        "| class | IoU |",
        "|---|---|",
    ]
    lines += [f"| {name} | {_pct(v)} |" for name, v in landsat["metrics"]["IoU"].items()]
    lines += [
        "",
        f"{landsat['polygons']} polygons written.",
        "",
        "## Outputs",
        "",
    ]
    lines += [f"- [{name}]({name})" for name in summary["outputs"]]
    lines.append("")
    path = output / "report.md"
    tmp = atomic_path(path)
    tmp.write_text("\n".join(lines))
    return publish(tmp, path)
