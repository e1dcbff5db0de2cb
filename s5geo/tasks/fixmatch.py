"""FixMatch for segmentation, the S5 pre-training objective."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from s5geo.errors import S5GeoError
from s5geo.tasks.losses import fixmatch_unlabeled_loss
from s5geo.tasks.supervised import SupervisedSegmentation


class FixMatch(SupervisedSegmentation):
    """FixMatch with CutMix, as in the S5 reference loop.

    For a batch ``{"labeled": {"image", "mask"}, "unlabeled": {"image", "padding"},
    "unlabeled_mix": {"image", "padding"}}`` (weak views, unlabelled ``"padding"`` boolean, True on
    padding; ``"unlabeled_mix"`` is the CutMix partner batch of the datamodule's ``partner_batch``):

    1. pseudo-labels and confidences of the weak unlabelled and partner views, without gradient,
       by the network in eval mode (``teacher_mode="eval"``, as the S5 code) or train mode, or by
       an EMA teacher; in float32 even under mixed precision (as the S5 code), unless
       ``pseudo_label_autocast``;
    2. strong views = ``StrongView`` of the weak images, then CutMix: inside each box the strong
       image, pseudo-label, confidence and padding come from the partner batch
       (``cutmix_partner="loader"``, the reference) or from the batch flipped along its first
       dimension (``"flip"``, no second stream; an odd batch mixes its middle sample with itself);
    3. one forward over ``cat(labeled, strong)`` with gradient (``joint_forward=True``, the reference),
       or one forward per stream, so that batch-norm statistics of the labeled batch are not computed
       together with strongly augmented images (``joint_forward=False``; see docs/training.md);
    4. ``loss = (L_s + unlabeled_weight * L_u) / 2`` with L_u normalised by the non-padding pixels.

    Args:
        tau: confidence threshold of the pseudo-labels.
        unlabeled_weight: lambda, the weight of L_u (1 in the reference).
        teacher_mode: network mode of the pseudo-label forward, ``"eval"`` or ``"train"``.
        cutmix_partner: where CutMix boxes come from: ``"loader"``, the batch's
            ``"unlabeled_mix"`` stream (the reference), or ``"flip"``, the batch flipped.
        pseudo_label_autocast: run the pseudo-label forward under the trainer's autocast (cheaper);
            False runs it in float32, as the reference.
        ema: EMA decay of a teacher network that makes the pseudo-labels (e.g. 0.996), None to use
            the trained network itself (FixMatch/S5). The decay at iteration ``it`` is
            ``min(1 - 1 / (it + 1), ema)``, over parameters and buffers.
        cutmix_p: probability that a sample gets a CutMix box.
        strong_kwargs: options of :class:`s5geo.transforms.StrongView`.
        joint_forward: one forward over labeled + strong images (reference) or one per stream.
        lr: peak learning rate of AdamW (betas 0.9, 0.999); by default S5's pre-training rate.
        **kwargs: the other arguments of :class:`s5geo.tasks.base.BaseSegmentationTask`.
    """

    def __init__(
        self,
        *,
        tau: float = 0.95,
        unlabeled_weight: float = 1.0,
        teacher_mode: Literal["eval", "train"] = "eval",
        cutmix_partner: Literal["loader", "flip"] = "loader",
        pseudo_label_autocast: bool = False,
        ema: float | None = None,
        cutmix_p: float = 0.5,
        strong_kwargs: dict[str, Any] | None = None,
        joint_forward: bool = True,
        lr: float = 6e-5,
        **kwargs: Any,
    ) -> None:
        if teacher_mode not in ("eval", "train"):
            raise ValueError(f"teacher_mode must be 'eval' or 'train', got {teacher_mode!r}")
        if cutmix_partner not in ("loader", "flip"):
            raise ValueError(f"cutmix_partner must be 'loader' or 'flip', got {cutmix_partner!r}")
        if ema is not None and not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {ema}")
        # Lightning hands every saved hyper-parameter to a constructor with **kwargs, including the
        # _class_path that on_save_checkpoint adds for LightningCLI.
        kwargs.pop("_class_path", None)
        super().__init__(lr=lr, **kwargs)

    def configure_models(self) -> None:
        """Build the network (see the base class), the strong view and the EMA teacher."""
        super().configure_models()
        from s5geo.transforms import StrongView

        self.strong_view = StrongView(**(self.hparams.strong_kwargs or {}))
        self.teacher: nn.Module | None = None
        if self.hparams.ema is not None:
            self.teacher = copy.deepcopy(self.model)
            self.teacher.requires_grad_(False)

    def configure_losses(self) -> None:
        """Set ``self.criterion`` (labelled, see the base class) and ``self.unlabeled_criterion``."""
        super().configure_losses()
        self.unlabeled_criterion: Callable[..., Tensor] = fixmatch_unlabeled_loss

    def setup(self, stage: str) -> None:
        """Load ``init_from`` (see the base class) and start the EMA teacher from the network."""
        super().setup(stage)
        if stage == "fit" and self.teacher is not None and self.global_step == 0:
            self.teacher.load_state_dict(self.model.state_dict())

    # ------------------------------------------------------------ pseudo-labels
    @torch.no_grad()
    def pseudo_labels(self, weak_image: Tensor, mode: str | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(label, confidence)`` (``B x H x W``) of the weak view, without gradient.

        Args:
            weak_image: ``B x C x H x W`` weak views in ``[0, 1]``.
            mode: network mode, ``"eval"`` or ``"train"`` (default ``teacher_mode``).
        """
        network = self.teacher if self.teacher is not None else self.model
        was_training = network.training
        network.train((mode or self.hparams.teacher_mode) == "train")
        try:
            if self.hparams.get("pseudo_label_autocast", False):
                logits = network(self.normalize(weak_image))
            else:
                with torch.autocast(device_type=weak_image.device.type, enabled=False):
                    logits = network(self.normalize(weak_image.float()))
        finally:
            network.train(was_training)
        confidence, label = logits.float().softmax(1).max(1)
        return label, confidence

    def partner_stream(self, batch: dict[str, Any]) -> dict[str, Tensor] | None:
        """The batch's CutMix partner stream, None when ``cutmix_partner="flip"``.

        Raises:
            S5GeoError: if ``cutmix_partner="loader"`` and the batch has no ``"unlabeled_mix"``.
        """
        if self.hparams.get("cutmix_partner", "loader") == "flip":
            return None
        partner = batch.get("unlabeled_mix")
        if partner is None:
            raise S5GeoError(
                f"{type(self).__name__}(cutmix_partner='loader') needs the CutMix partner batch "
                "'unlabeled_mix' (SemiSupervisedDataModule writes it unless partner_batch=None); "
                "pass cutmix_partner='flip' to mix each batch with itself flipped"
            )
        return partner

    def strong_cutmix(
        self,
        weak_image: Tensor,
        label: Tensor,
        confidence: Tensor,
        padding: Tensor,
        partner: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Strong view + CutMix, mixing every unlabelled tensor consistently.

        Args:
            weak_image: ``B x C x H x W`` weak views in ``[0, 1]``.
            label: ``B x H x W`` pseudo-labels.
            confidence: ``B x H x W`` pseudo-label confidences.
            padding: ``B x H x W``, True (or non-zero) on padding.
            partner: ``(weak image, label, confidence, padding)`` of the partner batch, whose own
                strong view fills the boxes; None takes the batch flipped.

        Returns:
            ``(strong image, label, confidence, padding, box)``; ``padding`` is boolean.
        """
        from s5geo.transforms import cutmix_boxes, mix

        # Photometric ops in float32 even under autocast (a bf16 blur would quantise the image).
        with torch.autocast(device_type=weak_image.device.type, enabled=False):
            strong = self.strong_view(weak_image.float())
            if partner is None:
                other = (strong.flip(0), label.flip(0), confidence.flip(0), padding.bool().flip(0))
            else:
                other = (self.strong_view(partner[0].float()), partner[1], partner[2], partner[3].bool())
        b, _, h, w = strong.shape
        box = cutmix_boxes(b, h, w, p=float(self.hparams.cutmix_p), device=strong.device)
        mine = (strong, label, confidence, padding.bool())
        mixed = [mix(box, a, o) for a, o in zip(mine, other, strict=True)]
        return mixed[0], mixed[1], mixed[2], mixed[3], box

    # ----------------------------------------------------------------- training
    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Return ``loss`` (the total), ``loss_s``, ``loss_u`` and ``mask_ratio`` for one batch."""
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        x_l, y_l = labeled["image"], labeled["mask"]
        x_w, padding = unlabeled["image"], unlabeled["padding"]
        partner = self.partner_stream(batch)
        if partner is None:
            label, confidence = self.pseudo_labels(x_w)
            mixing = None
        else:
            labels, confidences = self.pseudo_labels(torch.cat([x_w, partner["image"]]))
            n_u = x_w.shape[0]
            label, confidence = labels[:n_u], confidences[:n_u]
            mixing = (partner["image"], labels[n_u:], confidences[n_u:], partner["padding"])
        x_s, label_s, conf_s, pad_s, _ = self.strong_cutmix(x_w, label, confidence, padding, mixing)

        if self.hparams.get("joint_forward", True):
            logits = self(torch.cat([x_l, x_s]))
            logits_l, logits_s = logits[: x_l.shape[0]], logits[x_l.shape[0] :]
        else:
            logits_l, logits_s = self(x_l), self(x_s)
        tau = float(self.hparams.tau)
        loss_s = self.criterion(logits_l, y_l)
        loss_u = self.unlabeled_criterion(logits_s, label_s, conf_s, pad_s, tau)
        loss = (loss_s + float(self.hparams.unlabeled_weight) * loss_u) / 2
        return {
            "loss": loss,
            "loss_s": loss_s.detach(),
            "loss_u": loss_u.detach(),
            "mask_ratio": _confident_fraction(confidence, padding, tau),
        }

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """One S5 optimisation step; logs each loss term, the confident fraction and the lr."""
        losses = self.compute_losses(batch)
        size = batch["labeled"]["image"].shape[0] + batch["unlabeled"]["image"].shape[0]
        for name, value in losses.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=size)
        self.log("train/lr", self.current_lr(), batch_size=size)
        return losses["loss"]

    # ---------------------------------------------------------------------- EMA
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Update the EMA teacher after the optimiser step."""
        if self.teacher is not None:
            # global_step already counts this step; the reference uses the 0-based iteration.
            self.update_teacher(max(0, self.global_step - 1))

    @torch.no_grad()
    def update_teacher(self, iteration: int) -> None:
        """``teacher = d * teacher + (1 - d) * student``, ``d = min(1 - 1/(it + 1), ema)``."""
        if self.teacher is None:
            return
        decay = min(1.0 - 1.0 / (iteration + 1), float(self.hparams.ema))
        for t, s in zip(self.teacher.parameters(), self.model.parameters(), strict=True):
            t.lerp_(s.detach(), 1.0 - decay)
        for t, s in zip(self.teacher.buffers(), self.model.buffers(), strict=True):
            if t.dtype.is_floating_point:
                t.lerp_(s.detach(), 1.0 - decay)
            else:
                t.copy_(s)


def _confident_fraction(confidence: Tensor, padding: Tensor, tau: float) -> Tensor:
    """Fraction of non-padding unlabelled pixels whose weak confidence reaches ``tau``."""
    real = ~padding
    return ((confidence >= tau) & real).sum() / real.sum().clamp_min(1)
