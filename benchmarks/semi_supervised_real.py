"""S5 vs supervised-only on real imagery: the Dubai aerial set split by tile.

For each labeled fraction (labeled images per training tile), method and seed, trains with the same
labeled images from the same initial weights and scores mIoU on held-out tiles. Each method runs for its
own length and learning rate (chosen on a validation tile, see ``--tune`` and ``--val-every``): S5
methods (FixMatch, UniMatch) train on labeled + unlabeled images, optionally followed by fine-tuning on
the labeled ones (``--finetune-steps``); the supervised baseline trains on the labeled ones only.
The defaults are the demo's recipe (``s5geo.demo.dubai.DubaiConfig``).

Runs are appended to ``<out>/runs.jsonl`` as they finish and skipped when the script is re-run, so a long
sweep can be interrupted. ``--tune`` evaluates on a validation tile taken from the training tiles (the test
tiles are left out entirely): use it to choose settings, never the test tiles.

    python benchmarks/semi_supervised_real.py --labeled-per-tile 1 3 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from s5geo.demo import dubai, sample_data_root
from s5geo.tasks import SupervisedSegmentation


def run_one(
    dataset: Any,
    config: dubai.DubaiConfig,
    method: str,
    held_out: list[str],
    exclude: list[str],
    val_every: int | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Train one model and return its held-out metrics and training log.

    S5 methods pre-train on labeled + unlabeled images, then fine-tune on the labeled ones; with
    ``config.finetune_steps == 0`` the semi-supervised model itself is evaluated (S4 directly). With
    ``config.s5_start == "supervised"`` they start from the supervised run's network, kept in
    ``cache`` by the supervised run (trained there when missing); a supervised run whose network is
    in ``cache`` is only evaluated.
    """
    split = dubai.split_dubai(dataset, config.labeled_per_tile, held_out, config.seed, exclude)
    datamodule = dubai.make_datamodule(dataset, split, config)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        final = Path(tmp) / "final.ckpt"
        sup = (cache or Path(tmp)) / f"supervised-{_supervised_key(config, held_out, exclude)}.ckpt"
        task_class = SupervisedSegmentation if method == "supervised" else dubai.s5_task_class(config, method)
        start_from = None
        if method != "supervised" and config.s5_start == "supervised":
            if not sup.exists():
                dubai.train_supervised(datamodule, config, sup, progress=False)
            start_from = sup
        if method == "supervised" and sup.exists() and not val_every:
            log, final = {"trained": "earlier (cached checkpoint)"}, sup
        elif method == "supervised":
            log = dubai.train_supervised(datamodule, config, final, progress=False, val_every=val_every)
            if cache is not None:
                shutil.copyfile(final, sup)
        elif config.finetune_steps == 0:
            log = dubai.pretrain(
                datamodule,
                config,
                final,
                method=method,
                progress=False,
                val_every=val_every,
                init_from=start_from,
            )
        else:
            pre = Path(tmp) / "pretrain.ckpt"
            log = dubai.pretrain(
                datamodule,
                config,
                pre,
                method=method,
                progress=False,
                val_every=val_every,
                init_from=start_from,
            )
            dubai.finetune(datamodule, config, pre, final, progress=False)
        metrics = dubai.evaluate(task_class, final, datamodule)
    return {
        "metrics": metrics,
        "train_log": log,
        "seconds": time.perf_counter() - start,
        "split": {k: len(v) for k, v in split.items()},
    }


def _supervised_key(config: dubai.DubaiConfig, held_out: list[str], exclude: list[str]) -> str:
    """Short hash of everything that defines a supervised run (its checkpoint's name in the cache)."""
    fields = [
        "labeled_per_tile",
        "seed",
        "model",
        "model_kwargs",
        "init_from",
        "mean",
        "std",
        "crop_size",
        "batch_size",
        "supervised_steps",
        "supervised_lr",
    ]
    c = config.to_dict()
    text = json.dumps({**{k: c[k] for k in fields}, "held_out": held_out, "exclude": exclude}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def summarise(rows: list[dict[str, Any]]) -> str:
    """Markdown table: mean and standard deviation of mIoU per fraction and method, paired gains."""
    lines = [
        "| labeled / tile | labeled images | method | mIoU mean | std | seeds "
        "| gain vs supervised (paired) |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {(r["labeled_per_tile"], r["method"]) for r in rows}, key=lambda k: (k[0], k[1] != "supervised", k[1])
    )
    for fraction, method in keys:
        runs = {r["seed"]: r for r in rows if r["labeled_per_tile"] == fraction and r["method"] == method}
        values = [100 * r["metrics"]["mIoU"] for r in runs.values()]
        base = {
            r["seed"]: 100 * r["metrics"]["mIoU"]
            for r in rows
            if r["labeled_per_tile"] == fraction and r["method"] == "supervised"
        }
        gains = [100 * runs[s]["metrics"]["mIoU"] - base[s] for s in runs if s in base]
        gain = (
            "-"
            if method == "supervised" or not gains
            else (f"{statistics.mean(gains):+.1f} ({', '.join(f'{g:+.1f}' for g in gains)})")
        )
        spread = f"{statistics.stdev(values):.1f}" if len(values) > 1 else "-"
        n_labeled = next(iter(runs.values()))["split"]["labeled"]
        lines.append(
            f"| {fraction} | {n_labeled} | {method} | {statistics.mean(values):.1f} | {spread} | "
            f"{len(values)} | {gain} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the sweep and print the results table."""
    defaults = dubai.DubaiConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=sample_data_root() / "dubai_aerial")
    parser.add_argument("--labeled-per-tile", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--methods", nargs="+", default=["supervised", "fixmatch"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default=defaults.model)
    parser.add_argument(
        "--init-from", default=defaults.init_from, help='weights name or file ("none": random start)'
    )
    parser.add_argument("--mean", type=float, nargs="+", default=None, help="default: the weights'")
    parser.add_argument("--std", type=float, nargs="+", default=None, help="default: the weights'")
    parser.add_argument("--pretrain-steps", type=int, default=defaults.pretrain_steps, help="FixMatch steps")
    parser.add_argument(
        "--finetune-steps", type=int, default=defaults.finetune_steps, help="0: evaluate the FixMatch model"
    )
    parser.add_argument("--supervised-steps", type=int, default=defaults.supervised_steps)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="S5 learning rate")
    parser.add_argument("--supervised-lr", type=float, default=defaults.supervised_lr)
    parser.add_argument("--tau", type=float, default=defaults.tau)
    parser.add_argument("--ema", type=float, default=None, help="EMA teacher decay (default: none)")
    parser.add_argument(
        "--s5-start",
        choices=["weights", "supervised"],
        default=defaults.s5_start,
        help="S5 starts from --init-from, or from the supervised run's network",
    )
    parser.add_argument(
        "--joint-forward",
        action="store_true",
        help="one forward over labeled + strong images, as the reference (default: one per stream)",
    )
    parser.add_argument("--crop", type=int, default=defaults.crop_size)
    parser.add_argument("--batch", type=int, default=defaults.batch_size)
    parser.add_argument("--test-tiles", nargs="+", default=list(dubai.HELD_OUT_TILES))
    parser.add_argument(
        "--tune",
        metavar="VAL_TILE",
        default=None,
        help="evaluate on this training tile instead of the test tiles (which are left out)",
    )
    parser.add_argument("--val-every", type=int, default=None, help="record a validation curve (steps)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--summary-only", action="store_true", help="print the table of the runs recorded")
    parser.add_argument("--out", type=Path, default=Path("runs/semi_supervised_real"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    held_out = [args.tune] if args.tune else args.test_tiles
    exclude = args.test_tiles if args.tune else []
    (args.out / "checkpoints").mkdir(parents=True, exist_ok=True)
    log_path = args.out / "runs.jsonl"
    rows = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.exists() else []
    dataset = dubai.dubai_dataset(args.data)
    base = dubai.DubaiConfig(
        model=args.model,
        init_from=None if args.init_from == "none" else args.init_from,
        mean=tuple(args.mean) if args.mean else None,
        std=tuple(args.std) if args.std else None,
        pretrain_steps=args.pretrain_steps,
        finetune_steps=args.finetune_steps,
        supervised_steps=args.supervised_steps,
        lr=args.lr,
        supervised_lr=args.supervised_lr,
        tau=args.tau,
        ema=args.ema,
        s5_start=args.s5_start,
        joint_forward=args.joint_forward,
        crop_size=args.crop,
        batch_size=args.batch,
    )
    for fraction in [] if args.summary_only else args.labeled_per_tile:
        for seed in args.seeds:
            for method in args.methods:
                config = replace(base, labeled_per_tile=fraction, seed=seed)
                key = {
                    "labeled_per_tile": fraction,
                    "seed": seed,
                    "method": method,
                    "held_out": held_out,
                    "config": config.to_dict(),
                }
                if any(_same_run(r, key) for r in rows):
                    continue
                result = run_one(
                    dataset, config, method, held_out, exclude, args.val_every, args.out / "checkpoints"
                )
                row = {**key, **result}
                rows.append(row)
                with log_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                curve = result["train_log"].get("val_curve")
                print(
                    f"labeled/tile {fraction} seed {seed} {method:<10} "
                    f"mIoU {100 * result['metrics']['mIoU']:.1f} "
                    f"({result['seconds']:.0f} s)"
                    + (" curve " + " ".join(f"{s}:{100 * v:.1f}" for s, v in curve) if curve else ""),
                    flush=True,
                )
    # The last run recorded for each (fraction, seed, method) on these tiles with this network.
    latest: dict[tuple[int, int, str], dict[str, Any]] = {}
    for r in rows:
        if (
            r["held_out"] == held_out
            and r["labeled_per_tile"] in args.labeled_per_tile
            and r["seed"] in args.seeds
            and r["method"] in args.methods
            and r["config"]["model"] == base.model
        ):
            latest[(r["labeled_per_tile"], r["seed"], r["method"])] = r
    print(f"\nheld-out tiles: {', '.join(held_out)}; model {base.model} from {base.init_from or 'scratch'}")
    for method in args.methods:
        configs = {
            json.dumps(_recipe(r, method), sort_keys=True) for k, r in latest.items() if k[2] == method
        }
        for recipe in sorted(configs):
            print(f"  {method}: {recipe}")
    print()
    print(summarise(list(latest.values())))


#: Settings that only S5 runs use: a supervised run recorded with other values is the same run.
_S5_ONLY = {"pretrain_steps", "finetune_steps", "lr", "tau", "ema", "s5_start", "joint_forward"}


def _same_run(row: dict[str, Any], key: dict[str, Any]) -> bool:
    """Whether ``row`` already holds the run ``key`` describes (rows from older versions included)."""
    if any(row.get(k) != v for k, v in key.items() if k != "config"):
        return False
    recorded = {"s5_start": "weights", **row["config"]}  # rows written before s5_start existed
    ignored = _S5_ONLY if key["method"] == "supervised" else set()
    return all(recorded.get(k) == v for k, v in key["config"].items() if k not in ignored)


def _recipe(row: dict[str, Any], method: str) -> dict[str, Any]:
    """The settings that define a method's runs (seed and fraction left out)."""
    c = row["config"]
    if method == "supervised":
        keys = ["supervised_steps", "supervised_lr", "crop_size", "batch_size"]
        if "supervised_lr" not in c:  # rows written before the supervised settings had their own fields
            return {"steps": row.get("supervised_steps"), "lr": c["lr"], "crop": c["crop_size"]}
    else:
        keys = [
            "pretrain_steps",
            "finetune_steps",
            "lr",
            "tau",
            "ema",
            "s5_start",
            "joint_forward",
            "crop_size",
            "batch_size",
        ]
    return {k: c.get(k) for k in keys}


if __name__ == "__main__":
    main()
