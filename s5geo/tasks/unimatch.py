"""UniMatch: FixMatch plus feature perturbation and two strong views."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from s5geo.tasks.fixmatch import FixMatch, _confident_fraction


class UniMatch(FixMatch):
    """UniMatch (Yang et al., 2023) on the s5geo batch contract.

    One forward over ``cat(labeled, weak)`` computes the encoder features once; the clean features
    and a ``Dropout2d(fp_dropout)`` copy of them are decoded jointly. The clean labelled logits give
    L_s, the perturbed weak logits give L_fp against the pseudo-labels. Two strong views (independent
    photometric draws and CutMix boxes; partners as in :class:`FixMatch`, each box filled from a
    strong view of the partner drawn for it) go through a second forward and give L_s1 and L_s2.
    ``loss = (L_s + 0.25 L_s1 + 0.25 L_s2 + 0.5 L_fp) / 2``.

    With ``teacher_mode="train"`` (the default) and no EMA the pseudo-labels are the detached clean
    weak logits of the joint forward, and the partner batch's come from an eval-mode forward
    without gradient, as in the UniMatch reference code. ``teacher_mode="eval"`` predicts both
    with a separate eval-mode forward (an extra forward, as FixMatch); an EMA teacher predicts both.

    Args:
        fp_dropout: channel dropout probability of the feature perturbation.
        teacher_mode: ``"train"``, pseudo-labels from the joint forward (the reference), or
            ``"eval"``, from a separate eval-mode forward.
        **kwargs: the arguments of :class:`FixMatch` (``joint_forward`` is accepted but has no
            effect: UniMatch's forwards are its own).
    """

    def __init__(
        self, *, fp_dropout: float = 0.5, teacher_mode: Literal["eval", "train"] = "train", **kwargs: Any
    ) -> None:
        super().__init__(teacher_mode=teacher_mode, **kwargs)

    def configure_models(self) -> None:
        """Build the network and the FixMatch parts (see :class:`FixMatch`) and the feature dropout."""
        super().configure_models()
        for method in ("forward_features", "forward_decode"):
            if not hasattr(self.model, method):
                raise TypeError(f"UniMatch needs a model with {method}(); got {type(self.model)}")
        self.feature_dropout = nn.Dropout2d(float(self.hparams.fp_dropout))

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Return the total ``loss`` and its terms ``loss_s/s1/s2/fp/u`` and ``mask_ratio``."""
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        x_l, y_l = labeled["image"], labeled["mask"]
        x_w, padding = unlabeled["image"], unlabeled["padding"]
        n_l, n_u = x_l.shape[0], x_w.shape[0]
        from_joint = self.hparams.teacher_mode == "train" and self.teacher is None
        partner = self.partner_stream(batch)
        if partner is not None and from_joint:
            label_m, conf_m = self.pseudo_labels(partner["image"], mode="eval")
        elif partner is not None:
            labels, confidences = self.pseudo_labels(torch.cat([x_w, partner["image"]]))
            label, confidence = labels[:n_u], confidences[:n_u]
            label_m, conf_m = labels[n_u:], confidences[n_u:]
        elif not from_joint:
            label, confidence = self.pseudo_labels(x_w)

        x = self.normalize(torch.cat([x_l, x_w]))
        features = self.model.forward_features(x)
        perturbed = [self.feature_dropout(f) for f in features]
        joint = [torch.cat([f, p]) for f, p in zip(features, perturbed, strict=True)]
        clean, noisy = self.model.forward_decode(joint, x.shape[-2:]).chunk(2)
        logits_l, logits_fp = clean[:n_l], noisy[n_l:]
        if from_joint:
            confidence, label = clean[n_l:].detach().float().softmax(1).max(1)

        mixing = None if partner is None else (partner["image"], label_m, conf_m, partner["padding"])
        x_s1, label_1, conf_1, pad_1, _ = self.strong_cutmix(x_w, label, confidence, padding, mixing)
        x_s2, label_2, conf_2, pad_2, _ = self.strong_cutmix(x_w, label, confidence, padding, mixing)
        logits_s1, logits_s2 = self(torch.cat([x_s1, x_s2])).chunk(2)

        tau = float(self.hparams.tau)
        loss_s = self.criterion(logits_l, y_l)
        loss_s1 = self.unlabeled_criterion(logits_s1, label_1, conf_1, pad_1, tau)
        loss_s2 = self.unlabeled_criterion(logits_s2, label_2, conf_2, pad_2, tau)
        loss_fp = self.unlabeled_criterion(logits_fp, label, confidence, padding, tau)
        loss_u = 0.25 * loss_s1 + 0.25 * loss_s2 + 0.5 * loss_fp
        loss = (loss_s + float(self.hparams.unlabeled_weight) * loss_u) / 2
        return {
            "loss": loss,
            "loss_s": loss_s.detach(),
            "loss_u": loss_u.detach(),
            "loss_s1": loss_s1.detach(),
            "loss_s2": loss_s2.detach(),
            "loss_fp": loss_fp.detach(),
            "mask_ratio": _confident_fraction(confidence, padding, tau),
        }
