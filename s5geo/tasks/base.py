"""The s5geo segmentation task: network, normalisation, fine-tuning start and checkpoint metadata.

Tasks follow TorchGeo's trainers: ``__init__`` saves the hyper-parameters and calls
``configure_models``, ``configure_losses`` and ``configure_metrics``; a method (see
``docs/architecture.md``) overrides those hooks and ``compute_losses``. The optimiser and schedule
live in :mod:`s5geo.tasks.optim`, sliding-window/flip evaluation and metric logging in
:mod:`s5geo.tasks.evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn

from s5geo.constants import IGNORE_INDEX
from s5geo.errors import S5GeoError
from s5geo.metadata import CHECKPOINT_METADATA_KEY, ModelMetadata, datamodule_metadata, default_colors
from s5geo.tasks import evaluation, optim
from s5geo.tasks.losses import supervised_loss
from s5geo.tasks.metrics import SegmentationMetrics

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Names of encoder sub-modules in s5geo models, used by ``freeze_encoder``.
ENCODER_PREFIXES = ("encoder.", "backbone.")


class BaseSegmentationTask(LightningModule):
    """Network, normalisation, optimiser, evaluation and checkpoint metadata of every s5geo task.

    Subclasses implement ``compute_losses`` and ``training_step``. ``task(x)`` maps a ``[0, 1]``
    batch to logits.

    Args:
        model: registry name (see ``s5geo.models.list_models``) or a ready ``nn.Module`` mapping a
            normalised batch to logits.
        model_kwargs: options passed to ``build_model`` (e.g. ``grad_checkpointing``,
            ``channels_last``, ``img_size``).
        num_classes: number of classes.
        in_channels: number of input bands.
        mean: per-band mean in ``[0, 1]`` units (default: that of the ``init_from`` weights when
            they are registered, else ImageNet's for 3 bands and 0 otherwise).
        std: per-band std in ``[0, 1]`` units (default: as ``mean``; ImageNet's or 1).
        lr: peak learning rate of AdamW (betas 0.9, 0.999).
        weight_decay: AdamW weight decay.
        layer_decay: layer-wise lr decay factor (e.g. 0.9), None to disable; needs a model with
            ``layer_id`` and ``num_layers``.
        no_weight_decay_norm_pos: no weight decay on norms, biases and the model's
            ``no_weight_decay()`` parameters (position embeddings, class token).
        warmup_steps: linear warm-up length in optimiser steps.
        min_lr_ratio: final lr of the cosine schedule as a fraction of ``lr``.
        ignore_index: mask value that is never trained on nor evaluated.
        init_from: weights to initialise the network from at the start of ``fit``: a name of
            :mod:`s5geo.models.weights` (e.g. ``imagenet_efficientnet_lite0``, ``mae_vit_b``) or any
            file :func:`s5geo.models.load_pretrained` reads (MAE, S5, mmseg, EfficientNet-Lite,
            s5geo checkpoints); the classifier is re-initialised when the class count differs.
        excluded_classes: class indices left out of mIoU/mF1 (e.g. iSAID background).
        sliding_window: ``(window, stride)`` of ``eval_mode="sliding"``; also the window that
            checkpoints record for inference on large rasters.
        flip_tta: average the softmax over the input and its horizontal and vertical flips at
            validation/test.
        freeze_encoder: train only the decoder and classifier.
        eval_mode: how validation/test/predict inputs are run: ``"sliding"`` (windows of
            ``sliding_window``), ``"whole"`` (the whole input at once) or ``"resize"`` (resized to
            ``eval_size`` and the logits resized back; use batch 1 for inputs of different sizes).
            None: ``"sliding"`` when ``sliding_window`` is set, else ``"whole"``. The S5 code
            evaluates Vaihingen/Potsdam whole (512 px crops) and LoveDA/OpenEarthMap resized to 512.
        eval_size: side of the inputs of ``eval_mode="resize"``.
    """

    def __init__(
        self,
        model: str | nn.Module = "upernet_resnet18",
        model_kwargs: dict[str, Any] | None = None,
        num_classes: int = 16,
        in_channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        layer_decay: float | None = None,
        no_weight_decay_norm_pos: bool = True,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
        init_from: str | None = None,
        excluded_classes: Sequence[int] | None = None,
        sliding_window: tuple[int, int] | None = None,
        flip_tta: bool = False,
        freeze_encoder: bool = False,
        eval_mode: Literal["sliding", "whole", "resize"] | None = None,
        eval_size: int = 512,
    ) -> None:
        if eval_mode not in (None, "sliding", "whole", "resize"):
            raise ValueError(f"eval_mode must be 'sliding', 'whole', 'resize' or None, got {eval_mode!r}")
        if eval_mode == "sliding" and not sliding_window:
            raise ValueError("eval_mode='sliding' needs sliding_window=(window, stride)")
        super().__init__()
        self.save_hyperparameters(ignore=["model"] if isinstance(model, nn.Module) else None)
        # A given network is used as it is; a registry name is built by configure_models.
        self.model = model if isinstance(model, nn.Module) else None
        self.init_report: dict[str, list[str]] | None = None
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    # ------------------------------------------------------------------- hooks
    def configure_models(self) -> None:
        """Build ``self.model``, the input normalisation buffers and the encoder freeze."""
        hp = self.hparams
        in_channels = int(hp.in_channels)
        if self.model is None:
            from s5geo.models import build_model

            self.model = build_model(
                hp.model, num_classes=int(hp.num_classes), in_channels=in_channels, **(hp.model_kwargs or {})
            )
        mean, std = _normalisation(hp.mean, hp.std, in_channels, hp.init_from)
        # Recorded as resolved: a checkpoint loaded back without init_from (inference, export)
        # must normalise as the network was trained, not fall back to the defaults.
        hp.mean, hp.std = [float(v) for v in mean], [float(v) for v in std]
        # Not persistent: checkpoints hold the network under ``model.`` only (see architecture.md).
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape), False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape), False)
        if hp.freeze_encoder:
            for name, param in self.model.named_parameters():
                if self._is_encoder_param(name):
                    param.requires_grad_(False)

    def configure_losses(self) -> None:
        """Set ``self.criterion``, the pixel-wise cross-entropy of labelled batches."""
        self.criterion: Callable[[Tensor, Tensor], Tensor] = partial(
            supervised_loss, ignore_index=int(self.hparams.ignore_index)
        )

    def configure_metrics(self) -> None:
        """Set ``self.val_metrics`` and ``self.test_metrics`` (mIoU, mF1, OA over a split)."""
        hp = self.hparams
        excluded = list(hp.excluded_classes or [])
        self.val_metrics = SegmentationMetrics(int(hp.num_classes), int(hp.ignore_index), excluded)
        self.test_metrics = SegmentationMetrics(int(hp.num_classes), int(hp.ignore_index), excluded)

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Return ``{"loss": total, ...}`` (further scalar terms are logged) for a training batch."""
        raise NotImplementedError

    # ------------------------------------------------------------------ network
    def normalize(self, image: Tensor) -> Tensor:
        """Map a ``[0, 1]`` batch to the network's normalised input."""
        return (image - self.mean) / self.std

    def forward(self, image: Tensor) -> Tensor:
        """Return logits ``B x K x H x W`` for a ``[0, 1]`` batch ``B x C x H x W``."""
        return self.model(self.normalize(image))

    def _is_encoder_param(self, name: str) -> bool:
        model = self.model
        if hasattr(model, "is_encoder_param"):
            return bool(model.is_encoder_param(name))
        return name.startswith(ENCODER_PREFIXES)

    # ---------------------------------------------------------------- optimiser
    def parameter_groups(self) -> list[dict[str, Any]]:
        """Group trainable parameters by (lr scale, weight decay) for AdamW."""
        hp = self.hparams
        return optim.parameter_groups(
            self.model,
            lr=float(hp.lr),
            weight_decay=float(hp.weight_decay),
            layer_decay=hp.layer_decay,
            no_weight_decay_norm_pos=bool(hp.no_weight_decay_norm_pos),
        )

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW (betas 0.9/0.999) with a warm-up + cosine schedule stepped every iteration."""
        hp = self.hparams
        total = float(self.trainer.estimated_stepping_batches) if self._trainer else math.inf
        return optim.adamw_warmup_cosine(
            self.parameter_groups(),
            lr=float(hp.lr),
            weight_decay=float(hp.weight_decay),
            warmup_steps=int(hp.warmup_steps),
            total_steps=total,
            min_lr_ratio=float(hp.min_lr_ratio),
        )

    def current_lr(self) -> float:
        """Peak learning rate over the parameter groups (the decoder's under layer decay)."""
        if self._trainer is None or not self.trainer.optimizers:
            return float(self.hparams.lr)
        return max(g["lr"] for g in self.trainer.optimizers[0].param_groups)

    # --------------------------------------------------------------- fine-tuning
    def setup(self, stage: str) -> None:
        """Load ``init_from`` once, at the start of ``fit`` (a resumed ``ckpt_path`` then wins)."""
        if stage == "fit" and self.hparams.get("init_from") and self.init_report is None:
            self.load_pretrained(self.hparams.init_from)

    def load_pretrained(self, source: str | Path) -> dict[str, list[str]]:
        """Transfer pre-trained weights into ``self.model`` through :func:`s5geo.models.load_pretrained`.

        Every layout that function knows is accepted (MAE, the S5 authors' S4P and fine-tuned
        models, mmseg, EfficientNet-Lite ImageNet weights, s5geo checkpoints and plain state dicts),
        as a file or as a name of :mod:`s5geo.models.weights`. Every tensor whose converted name
        and shape fit is copied; a classifier for another class count is re-initialised.

        Args:
            source: a registered weights name (e.g. ``imagenet_efficientnet_lite0``) or a
                checkpoint file, read with ``weights_only=True``.

        Returns:
            ``{"transferred": [...], "skipped": [...], "missing": [...]}``: loaded network keys,
            checkpoint keys not loaded (no such key or another shape), and network keys left as
            initialised.

        Raises:
            S5GeoError: if the file or name is unknown, unreadable, or nothing of it fits the network.
        """
        from s5geo.models.checkpoints import ENCODER_ONLY_KINDS, CheckpointError

        path, layout = _resolve_init_from(source)
        try:
            report = self._load_weights(path, layout)
        except CheckpointError as error:
            raise S5GeoError(f"init_from: {error}") from error
        if not report.loaded:
            raise S5GeoError(
                f"{path}: no tensor of the checkpoint matches the network ({report.kind} layout)"
            )
        mismatched = [k for k, _, _ in report.mismatched]
        missing = sorted({*report.missing, *mismatched})
        classifier_names = self._classifier_keys()
        if any(k in missing for k in classifier_names) and hasattr(self.model, "reset_classifier"):
            self.model.reset_classifier(int(self.hparams.num_classes))
        self.init_report = {
            "transferred": report.loaded,
            "skipped": [*report.unexpected, *mismatched],
            "missing": missing,
        }
        not_transferred = [k for k in missing if k not in classifier_names]
        if report.kind in ENCODER_ONLY_KINDS:
            not_transferred = [k for k in not_transferred if self._is_encoder_param(k)]
        if not_transferred:
            # Fine-tuning should transfer everything but the classifier (the encoder for
            # encoder-only weights): anything else usually means another architecture.
            rank_zero_warn(
                f"init_from {path}: {len(not_transferred)} of {len(self.model.state_dict())} network "
                f"tensors were not in the checkpoint (e.g. {not_transferred[:4]}); is it the same "
                f"model ({self.hparams.get('model')})?"
            )
        rank_zero_info(
            f"init_from {path} ({report.kind}): loaded {len(report.loaded)} tensors, "
            f"{len(report.adapted)} adapted, {len(report.dropped)} dropped, "
            f"{len(self.init_report['skipped'])} skipped, {len(missing)} left as initialised"
        )
        return self.init_report

    def _load_weights(self, path: str | Path, layout: str | None) -> Any:
        """Load a checkpoint file into the network; return the :class:`LoadReport`."""
        from s5geo.models.checkpoints import load_pretrained as load_into

        return load_into(self.model, path, kind=layout)

    def _classifier_keys(self) -> list[str]:
        """Network keys of the classifier (left out of the transfer check; re-initialised)."""
        classifier = getattr(self.model, "classifier", None)
        if not isinstance(classifier, nn.Module):
            return []
        ids = {id(t) for t in classifier.state_dict(keep_vars=True).values()}
        return [k for k, t in self.model.state_dict(keep_vars=True).items() if id(t) in ids]

    # --------------------------------------------------------------- evaluation
    def evaluation_mode(self) -> str:
        """The evaluation mode in use: ``eval_mode``, else from ``sliding_window``."""
        mode = self.hparams.get("eval_mode")
        if mode is None:
            return "sliding" if self.hparams.get("sliding_window") else "whole"
        return str(mode)

    @torch.no_grad()
    def predict_probabilities(self, image: Tensor) -> Tensor:
        """Softmax ``B x K x H x W`` of a ``[0, 1]`` batch (see ``eval_mode``; flip TTA if set)."""
        mode = self.evaluation_mode()
        return evaluation.predict_probabilities(
            self.model,
            self.normalize(image),
            self.hparams.get("sliding_window") if mode == "sliding" else None,
            bool(self.hparams.get("flip_tta")),
            resize_to=int(self.hparams.get("eval_size", 512)) if mode == "resize" else None,
        )

    def _eval_step(self, batch: dict[str, Tensor], metrics: SegmentationMetrics, prefix: str) -> None:
        image, mask = batch["image"], batch["mask"]
        probs = self.predict_probabilities(image)
        metrics.update(probs.argmax(1), mask)
        loss = evaluation.probability_loss(probs, mask, int(self.hparams.ignore_index))
        if loss is not None:
            self.log(f"{prefix}/loss", loss, batch_size=image.shape[0], sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Accumulate the validation confusion matrix."""
        self._eval_step(batch, self.val_metrics, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Accumulate the test confusion matrix."""
        self._eval_step(batch, self.test_metrics, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Return class indices ``B x H x W``."""
        image = batch["image"] if isinstance(batch, dict) else batch
        return self.predict_probabilities(image).argmax(1)

    def on_validation_epoch_end(self) -> None:
        """Log mIoU/mF1/OA and per-class IoU over the split; print the class table."""
        self._log_metrics(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        """Log mIoU/mF1/OA and per-class IoU over the split; print the class table."""
        self._log_metrics(self.test_metrics, "test")

    def _log_metrics(self, metrics: SegmentationMetrics, prefix: str) -> None:
        values = evaluation.log_metrics(self, metrics, prefix, self.class_names())
        if values is not None:
            self.last_metrics = {prefix: values}

    def class_names(self) -> list[str]:
        """Class names from the datamodule when it has them, else ``class_<i>``."""
        n = int(self.hparams.num_classes)
        classes = datamodule_metadata(self._datamodule())["classes"]
        if classes is not None and len(classes) == n:
            return [str(c) for c in classes]
        return [f"class_{i}" for i in range(n)]

    # --------------------------------------------------------------- checkpoints
    def _datamodule(self) -> Any:
        if self._trainer is None:
            return None
        return getattr(self.trainer, "datamodule", None)

    def model_metadata(self) -> ModelMetadata:
        """Build the :class:`s5geo.metadata.ModelMetadata` of the network, in raw raster units.

        Classes, colours, bands, band names, gsd and the value scale come from the datamodule
        (:class:`s5geo.metadata.DataModuleMetadata`); the window from ``sliding_window`` or the
        datamodule's ``crop_size``.
        """
        hp = self.hparams
        dm = self._datamodule()
        data = datamodule_metadata(dm)
        n, c = int(hp.num_classes), int(hp.in_channels)
        colors = data["colors"]
        if colors is None or len(colors) != n:
            colors = default_colors(n)
        scale_t = torch.as_tensor(data["scale"], dtype=torch.float64).flatten()
        if scale_t.numel() not in (1, c):
            scale_t = torch.full((1,), 255.0, dtype=torch.float64)
        scale_t = scale_t.expand(c) if scale_t.numel() == 1 else scale_t
        mean = (self.mean.flatten().double().cpu() * scale_t).tolist()
        std = (self.std.flatten().double().cpu() * scale_t).tolist()
        bands = data["bands"]
        if bands is None or len(bands) != c:
            bands = list(range(1, c + 1))
        band_names = data["band_names"]
        if not band_names or len(band_names) != c:
            band_names = None
        window = hp.get("sliding_window")
        if window:
            window_size, overlap = int(window[0]), max(0.0, 1.0 - int(window[1]) / int(window[0]))
        else:
            crop = getattr(dm, "crop_size", None) or 512
            window_size, overlap = int(crop if isinstance(crop, int) else crop[0]), 0.25
        model_name = hp.get("model")
        if not isinstance(model_name, str):
            model_name = type(self.model).__name__
        return ModelMetadata(
            classes=self.class_names(),
            colors=list(colors),
            bands=[int(b) for b in bands],
            mean=mean,
            std=std,
            window_size=window_size,
            overlap=overlap,
            gsd=data["gsd"],
            ignore_index=int(hp.ignore_index),
            model=str(model_name),
            scale=float(scale_t[0]) if bool((scale_t == scale_t[0]).all()) else scale_t.tolist(),
            band_names=list(band_names) if band_names else None,
        )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Normalise inputs as the checkpoint's network was trained.

        Checkpoints written before the resolved mean/std were kept in the hyper-parameters hold
        ``mean=None``; loaded without their ``init_from`` they would fall back to the defaults.
        Their ``s5geo_metadata`` records what the network was trained with.
        """
        hparams = checkpoint.get("hyper_parameters") or {}
        recorded = checkpoint.get(CHECKPOINT_METADATA_KEY)
        if hparams.get("mean") is not None or not isinstance(recorded, dict):
            return
        stats = _recorded_normalisation(recorded)
        if stats is None or len(stats[0]) != self.mean.numel():
            return
        self.mean.copy_(torch.tensor(stats[0]).view_as(self.mean))
        self.std.copy_(torch.tensor(stats[1]).view_as(self.std))
        self.hparams.mean, self.hparams.std = stats

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the model metadata (raw raster units) and make the checkpoint name its task class.

        LightningCLI (``s5geo predict/test --ckpt_path``) rebuilds the task from ``_class_path`` in the
        hyper-parameters; ``s5geo fit`` writes it, and this adds it for checkpoints saved from Python.
        """
        checkpoint[CHECKPOINT_METADATA_KEY] = self.model_metadata().to_dict()
        hparams = checkpoint.get("hyper_parameters")
        if isinstance(hparams, dict):
            hparams.setdefault("_class_path", f"{type(self).__module__}.{type(self).__qualname__}")


def _normalisation(
    mean: Sequence[float] | None, std: Sequence[float] | None, in_channels: int, init_from: str | None
) -> tuple[Sequence[float], Sequence[float]]:
    """Per-band mean/std in ``[0, 1]`` units: as given, else the ``init_from`` weights', else defaults.

    The weights' normalisation is that of their registry entry, or the one an s5geo checkpoint
    recorded (e.g. fine-tuning from a pre-training checkpoint keeps its input statistics).
    """
    # Inputs are normalised as the weights were trained, unless the user says otherwise.
    source = _weights_normalisation(init_from) if mean is None or std is None else None
    if source is not None and len(source[0]) == in_channels:
        mean = source[0] if mean is None else mean
        std = source[1] if std is None else std
    if mean is None:
        mean = IMAGENET_MEAN if in_channels == 3 else (0.0,) * in_channels
    if std is None:
        std = IMAGENET_STD if in_channels == 3 else (1.0,) * in_channels
    if len(mean) != in_channels or len(std) != in_channels:
        raise S5GeoError(
            f"mean/std have {len(mean)}/{len(std)} values but the model takes {in_channels} bands"
        )
    return mean, std


def _weights_normalisation(init_from: str | None) -> tuple[list[float], list[float]] | None:
    """Mean/std in ``[0, 1]`` units of a registry entry or an s5geo checkpoint, None if unknown."""
    entry = _registered_weights(init_from)
    if entry is not None:
        return list(entry.mean), list(entry.std)
    if not init_from or not Path(init_from).is_file():
        return None
    from s5geo.inference.loading import read_checkpoint_metadata

    recorded = read_checkpoint_metadata(init_from)
    return None if recorded is None else _recorded_normalisation(recorded)


def _recorded_normalisation(recorded: dict[str, Any]) -> tuple[list[float], list[float]] | None:
    """Mean/std in ``[0, 1]`` units of a checkpoint's ``s5geo_metadata``, None if unusable."""
    from s5geo.runtime.bands import model_scale

    try:
        metadata = ModelMetadata.from_dict(recorded)
        scale = model_scale(metadata)
        return (
            [m / s for m, s in zip(metadata.mean, scale, strict=True)],
            [v / s for v, s in zip(metadata.std, scale, strict=True)],
        )
    except (TypeError, ValueError):  # metadata of another version: fall back to the defaults
        return None


def _registered_weights(name: str | None) -> Any:
    """The :class:`s5geo.models.weights.WeightsEntry` called ``name``, None for files and None."""
    if not name or Path(name).is_file():
        return None
    from s5geo.models.weights import list_weights

    return next((w for w in list_weights() if w.name == name), None)


def _resolve_init_from(source: str | Path) -> tuple[Path, str]:
    """Return the file and the layout (``"auto"`` unless a registry entry names it) of ``init_from``."""
    from s5geo.models.weights import resolve_weights

    text = str(source)
    if Path(text).is_file():
        return Path(text), "auto"
    entry = _registered_weights(text)
    if entry is None:
        raise S5GeoError(
            f"init_from {text}: not found (neither a file nor one of the weights that "
            "`s5geo weights list` shows)"
        )
    path, _ = resolve_weights(text)
    return Path(path), entry.layout
