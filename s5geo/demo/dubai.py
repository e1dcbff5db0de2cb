"""S5 on real imagery: FixMatch (optionally + fine-tuning) vs supervised-only, on the Dubai sample.

The split is by tile, so held-out images come from places the models never saw. A few images of the
training tiles are labeled; the other training images are used without their masks.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer, seed_everything
from torch.utils.data import Subset

from s5geo.datamodules import SemiSupervisedDataModule
from s5geo.datasets import SegmentationFolder
from s5geo.datasets.folder import DUBAI_AERIAL
from s5geo.demo.training import fit_and_save
from s5geo.inference.loading import load_from_checkpoint
from s5geo.tasks import FixMatch, SupervisedSegmentation, UniMatch

#: Tiles whose images are never trained on (neither labeled nor unlabeled).
HELD_OUT_TILES = ("Tile 3", "Tile 7")


@dataclass
class DubaiConfig:
    """Settings of the Dubai experiment (the defaults are the demo's recipe and CPU budget).

    The defaults were chosen on a validation tile (Tile 5, the test tiles left out entirely); see
    ``benchmarks/RESULTS.md`` (semi_supervised_real) for every setting tried.

    Attributes:
        labeled_per_tile: labeled images taken from each training tile (the rest are unlabeled).
        model: registry name of the network.
        model_kwargs: network options.
        crop_size: side of the training views.
        batch_size: labeled and unlabeled samples per batch.
        pretrain_steps: FixMatch steps (labeled + unlabeled).
        finetune_steps: supervised steps on the labeled images after the FixMatch steps; 0 keeps
            the FixMatch network itself as the S5 model.
        supervised_steps: steps of the supervised-only baseline.
        lr: peak learning rate of the S5 steps (AdamW, warm-up, cosine).
        supervised_lr: peak learning rate of the supervised-only baseline.
        tau: FixMatch confidence threshold.
        joint_forward: one forward over labeled + strong images (the reference) or one per stream.
        init_from: weights the network starts from (a name of :mod:`s5geo.models.weights` or a
            file), None for a random initialisation.
        mean: per-band input mean in ``[0, 1]`` units (None: the weights' or ImageNet's).
        std: per-band input std in ``[0, 1]`` units (None: the weights' or ImageNet's).
        ema: EMA decay of the pseudo-labelling teacher, None for the network itself (S5).
        s5_start: where the S5 network starts: ``"weights"`` (``init_from``, as the paper) or
            ``"supervised"`` (the supervised baseline's trained network, so that the first
            pseudo-labels come from a trained model; its steps are not counted in ``pretrain_steps``).
        held_out_tiles: tiles used only for evaluation.
        seed: random seed.
    """

    labeled_per_tile: int = 1
    model: str = "upernet_efficientnet_lite0"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    crop_size: int = 128
    batch_size: int = 4
    pretrain_steps: int = 480
    finetune_steps: int = 0
    supervised_steps: int = 600
    lr: float = 3e-4
    supervised_lr: float = 3e-4
    tau: float = 0.95
    # From-scratch BatchNorm networks lost much of their accuracy when strongly augmented images
    # shared the labeled batch's forward (measured on the validation tile).
    joint_forward: bool = False
    init_from: str | None = "imagenet_efficientnet_lite0"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    ema: float | None = None
    s5_start: str = "supervised"
    held_out_tiles: Sequence[str] = HELD_OUT_TILES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.s5_start not in ("weights", "supervised"):
            raise ValueError(f"s5_start must be 'weights' or 'supervised', got {self.s5_start!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for step fingerprints and reports)."""
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def split_dubai(
    dataset: SegmentationFolder,
    labeled_per_tile: int,
    held_out_tiles: Sequence[str],
    seed: int = 0,
    exclude_tiles: Sequence[str] = (),
) -> dict[str, list[int]]:
    """Split the Dubai images by tile into labeled, unlabeled and held-out indices.

    Args:
        dataset: the whole Dubai set.
        labeled_per_tile: labeled images drawn (seeded) from each training tile.
        held_out_tiles: tile folder names kept for evaluation.
        seed: seed of the labeled draw.
        exclude_tiles: tiles left out entirely (e.g. the test tiles while tuning on a validation tile).
    """
    by_tile: dict[str, list[int]] = {}
    for index, record in enumerate(dataset.files):
        tile = Path(record["image"]).parent.parent.name  # type: ignore[arg-type]
        by_tile.setdefault(tile, []).append(index)
    rng = np.random.default_rng(seed)
    split: dict[str, list[int]] = {"labeled": [], "unlabeled": [], "held_out": []}
    for tile, indices in sorted(by_tile.items()):
        if tile in exclude_tiles:
            continue
        if tile in held_out_tiles:
            split["held_out"] += indices
            continue
        chosen = set(rng.choice(indices, size=min(labeled_per_tile, len(indices)), replace=False).tolist())
        split["labeled"] += [i for i in indices if i in chosen]
        split["unlabeled"] += [i for i in indices if i not in chosen]
    return split


def dubai_dataset(root: Path) -> SegmentationFolder:
    """The Dubai sample with its real colour map (other colours are ignored)."""
    return SegmentationFolder.dubai_aerial(root)


def make_datamodule(
    dataset: SegmentationFolder, split: dict[str, list[int]], config: DubaiConfig
) -> SemiSupervisedDataModule:
    """Labeled + unlabeled training streams and the held-out images for validation/test."""
    held_out = Subset(dataset, split["held_out"])
    return SemiSupervisedDataModule(
        labeled=Subset(dataset, split["labeled"]),
        unlabeled=Subset(dataset, split["unlabeled"]),
        val=held_out,
        test=held_out,
        batch_size_labeled=config.batch_size,
        batch_size_unlabeled=config.batch_size,
        crop_size=config.crop_size,
        loader_crop_size=2 * config.crop_size,
        crop_order="crop_then_rescale",
        partner_batch=None,
        seed=config.seed,
        classes=list(DUBAI_AERIAL["classes"]),
        colors=[tuple(c) for c in DUBAI_AERIAL["colors"]],
        in_channels=3,
    )


def _task_kwargs(config: DubaiConfig, num_classes: int, lr: float | None = None) -> dict[str, Any]:
    return {
        "model": config.model,
        "model_kwargs": dict(config.model_kwargs),
        "num_classes": num_classes,
        "in_channels": 3,
        "mean": config.mean,
        "std": config.std,
        "lr": config.lr if lr is None else lr,
        "warmup_steps": 10,
        "init_from": config.init_from,
    }


#: Semi-supervised pre-training methods by name.
METHODS: dict[str, type[FixMatch]] = {"fixmatch": FixMatch, "unimatch": UniMatch}

#: Method options the recorded demo and benchmark runs used (the methods now default to the reference).
PINNED_OPTIONS: dict[str, dict[str, Any]] = {
    "fixmatch": {"cutmix_partner": "flip"},
    "unimatch": {"cutmix_partner": "flip", "teacher_mode": "eval"},
}


def pretrain(
    datamodule: SemiSupervisedDataModule,
    config: DubaiConfig,
    checkpoint: Path,
    method: str = "fixmatch",
    progress: bool = True,
    val_every: int | None = None,
    init_from: Path | None = None,
) -> dict[str, Any]:
    """Semi-supervised pre-training (FixMatch by default) on labeled + unlabeled images.

    Args:
        datamodule: labeled + unlabeled streams and the held-out images.
        config: the experiment's settings.
        checkpoint: where the trained network is saved.
        method: a name of :data:`METHODS`.
        progress: show a step progress bar.
        val_every: record the validation mIoU every this many steps.
        init_from: a checkpoint to start from instead of ``config.init_from`` (the supervised
            network when ``config.s5_start == "supervised"``).

    Returns:
        The last logged training values (loss terms, fraction of pixels above tau, lr), and the
        validation curve when ``val_every`` is set.
    """
    seed_everything(config.seed, verbose=False)
    # UniMatch forwards labeled images with the weak ones and the strong views on their own already.
    options = PINNED_OPTIONS[method] | (
        {"joint_forward": config.joint_forward} if method == "fixmatch" else {}
    )
    kwargs = _task_kwargs(config, len(DUBAI_AERIAL["classes"]))
    if init_from is not None:
        kwargs["init_from"] = str(init_from)
    task = METHODS[method](**kwargs, tau=config.tau, ema=config.ema, **options)
    return fit_and_save(task, datamodule, config.pretrain_steps, checkpoint, progress, val_every)


def finetune(
    datamodule: SemiSupervisedDataModule,
    config: DubaiConfig,
    init_from: Path,
    checkpoint: Path,
    progress: bool = True,
    val_every: int | None = None,
) -> dict[str, Any]:
    """Fine-tune a pre-trained network on the labeled images (encoder, decoder and head transferred)."""
    seed_everything(config.seed, verbose=False)
    kwargs = {**_task_kwargs(config, len(DUBAI_AERIAL["classes"])), "init_from": str(init_from)}
    task = SupervisedSegmentation(**kwargs)
    return fit_and_save(task, datamodule, config.finetune_steps, checkpoint, progress, val_every)


def train_supervised(
    datamodule: SemiSupervisedDataModule,
    config: DubaiConfig,
    checkpoint: Path,
    progress: bool = True,
    steps: int | None = None,
    val_every: int | None = None,
) -> dict[str, Any]:
    """Supervised-only baseline on the labeled images (``config.supervised_steps`` unless given)."""
    seed_everything(config.seed, verbose=False)
    kwargs = _task_kwargs(config, len(DUBAI_AERIAL["classes"]), lr=config.supervised_lr)
    task = SupervisedSegmentation(**kwargs)
    total = config.supervised_steps if steps is None else steps
    return fit_and_save(task, datamodule, total, checkpoint, progress, val_every)


def s5_task_class(config: DubaiConfig, method: str = "fixmatch") -> type[LightningModule]:
    """Task class of the final S5 checkpoint: the method's, or the fine-tuning task's."""
    return SupervisedSegmentation if config.finetune_steps else METHODS[method]


def evaluate(
    task_class: type[LightningModule], checkpoint: Path, datamodule: SemiSupervisedDataModule
) -> dict[str, float]:
    """mIoU, mF1, OA and per-class IoU on the held-out images (whole images)."""
    task = load_from_checkpoint(task_class, checkpoint, map_location="cpu", init_from=None)
    trainer = Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        results = trainer.test(task, datamodule=datamodule, verbose=False)[0]
    return {key.removeprefix("test/"): float(value) for key, value in results.items()}


@torch.no_grad()
def predict_images(
    task_class: type[LightningModule], checkpoint: Path, images: Sequence[torch.Tensor]
) -> list[np.ndarray]:
    """Class maps of raw ``C x H x W`` images (scaled to [0, 1] as in training), one model load."""
    task = load_from_checkpoint(task_class, checkpoint, map_location="cpu", init_from=None)
    task.eval()
    return [task(image[None] / 255.0).argmax(1)[0].numpy().astype(np.uint8) for image in images]
