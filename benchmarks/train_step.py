"""Cost of one S5 training step relative to the bare network passes it needs.

FixMatch step = strong view + CutMix + eval-mode pseudo-label forward (no grad) + one
forward/backward over labeled+strong + losses. Its bare passes = the same weak forward without gradient + one
forward/backward over the same labeled+strong batch (mean of the logits as the loss). The ratio
step / bare is the overhead of s5geo's implementation; the target is <= 1.25 on CPU.

Also timed: the supervised step (vs one bare forward/backward over the labeled batch) and the
UniMatch step (vs the FixMatch bare passes, i.e. its cost relative to FixMatch's minimum).
Variants are timed in rotation (warm-up first, median of N) so that load changes hit all alike.

    python benchmarks/train_step.py                      # CPU, upernet_resnet18, 256 px, 4+4
    python benchmarks/train_step.py --device cuda --model deeplabv3plus_resnet101 \
        --size 512 --batch 6 --amp bf16 --repeats 20      # paper Table 5 setting, peak memory
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch

from s5geo.tasks import FixMatch, SupervisedSegmentation, UniMatch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="upernet_resnet18")
    parser.add_argument("--model-kwargs", default="{}", help="JSON dict for build_model")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4, help="labeled = unlabeled batch size")
    parser.add_argument("--num-classes", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    parser.add_argument("--tasks", default="fixmatch,supervised,unimatch")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    kwargs = json.loads(args.model_kwargs)
    b, s, k = args.batch, args.size, args.num_classes
    x_l = torch.rand(b, 3, s, s, device=device)
    y_l = torch.randint(0, k, (b, s, s), device=device)
    x_u = torch.rand(b, 3, s, s, device=device)
    pad = torch.zeros(b, s, s, dtype=torch.bool, device=device)
    pad[:, :, -s // 8 :] = True
    x_mix = torch.rand(b, 3, s, s, device=device)  # the CutMix partner batch the datamodule writes
    batch = {
        "labeled": {"image": x_l, "mask": y_l},
        "unlabeled": {"image": x_u, "padding": pad},
        "unlabeled_mix": {"image": x_mix, "padding": pad},
    }

    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)

    def autocast() -> torch.autocast | nullcontext:
        if amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    scaler = torch.amp.GradScaler(device.type) if args.amp == "fp16" else None

    def backward(loss: torch.Tensor) -> None:
        (scaler.scale(loss) if scaler is not None else loss).backward()

    # One network shared by every variant, so all run the same weights and kernels.
    fixmatch = FixMatch(model=args.model, model_kwargs=kwargs, num_classes=k).to(device)
    fixmatch.train()
    net = fixmatch.model
    supervised = SupervisedSegmentation(model=net, num_classes=k).to(device).train()
    unimatch = UniMatch(model=net, num_classes=k).to(device).train()
    strong_once = fixmatch.strong_view(x_u)  # a fixed strong batch for the bare passes

    def bare_fixmatch() -> None:
        with torch.no_grad(), autocast():
            net.eval()
            net(fixmatch.normalize(x_u))
            net.train()
        with autocast():
            logits = net(fixmatch.normalize(torch.cat([x_l, strong_once])))
        backward(logits.float().mean())

    def bare_supervised() -> None:
        with autocast():
            logits = net(fixmatch.normalize(x_l))
        backward(logits.float().mean())

    def step(task: SupervisedSegmentation) -> Callable[[], None]:
        def run() -> None:
            with autocast():
                loss = task.compute_losses(batch)["loss"]
            backward(loss)

        return run

    variants: dict[str, Callable[[], None]] = {}
    wanted = set(args.tasks.split(","))
    if wanted & {"fixmatch", "unimatch"}:
        variants["bare_fixmatch"] = bare_fixmatch
    if "fixmatch" in wanted:
        variants["fixmatch"] = step(fixmatch)
    if "supervised" in wanted:
        variants["bare_supervised"] = bare_supervised
        variants["supervised"] = step(supervised)
    if "unimatch" in wanted:
        variants["unimatch"] = step(unimatch)

    times: dict[str, list[float]] = {name: [] for name in variants}
    peak: dict[str, float] = {}
    for i in range(args.warmup + args.repeats):
        for name, fn in variants.items():
            net.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            elapsed = time.perf_counter() - start
            if i >= args.warmup:
                times[name].append(elapsed)
            if device.type == "cuda":
                used = torch.cuda.max_memory_allocated(device) / 2**30
                peak[name] = max(peak.get(name, 0.0), used)

    med = {name: statistics.median(v) for name, v in times.items()}
    desc = (
        f"{args.model} {kwargs or ''} | {b}+{b} x {s}px | {device.type}"
        f"{' ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}"
        f" | amp {args.amp} | torch {torch.__version__} | threads {torch.get_num_threads()}"
        f" | {platform.processor() or platform.machine()} | median of {args.repeats}"
    )
    print(desc)
    low = {name: min(v) for name, v in times.items()}
    print("| variant | median s | ratio (median) | min s | ratio (min) | peak GPU GiB |")
    print("|---|---|---|---|---|---|")
    ref = {
        "fixmatch": "bare_fixmatch",
        "unimatch": "bare_fixmatch",
        "supervised": "bare_supervised",
    }
    for name, value in med.items():
        ratio = f"{value / med[ref[name]]:.3f} (vs {ref[name]})" if name in ref else "1 (bare)"
        ratio_min = f"{low[name] / low[ref[name]]:.3f}" if name in ref else "1"
        mem = f"{peak[name]:.2f}" if name in peak else "-"
        print(f"| {name} | {value:.4f} | {ratio} | {low[name]:.4f} | {ratio_min} | {mem} |")


if __name__ == "__main__":
    main()
