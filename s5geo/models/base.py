"""``SegmentationModel``: the contract every s5geo network implements (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from s5geo.models.layers import NORM_TYPES, resize


class Encoder(nn.Module):
    """Backbone interface: ``forward(x) -> list[Tensor]`` plus layer-decay and decay metadata.

    Subclasses set ``out_channels`` (one entry per returned feature map) and ``num_layers`` (layer
    ids ``0 .. num_layers - 1`` used by :meth:`layer_id`), and may set ``stem_weight`` (name of
    the first convolution's weight, adapted when a checkpoint has another number of bands).
    """

    out_channels: list[int]
    num_layers: int
    stem_weight: str | None = None

    def layer_id(self, name: str) -> int:
        """Layer id of an encoder parameter (name relative to the encoder)."""
        raise NotImplementedError

    def no_weight_decay(self) -> set[str]:
        """Encoder parameter names (besides norms) that take no weight decay."""
        return set()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Turn activation checkpointing on or off."""
        raise NotImplementedError


class SegmentationModel(nn.Module):
    """Encoder + decoder + dropout + 1x1 classifier, with the s5geo model contract.

    ``forward(x)`` returns ``B x K x H x W`` logits at the input resolution. UniMatch perturbs
    the output of :meth:`forward_features` before :meth:`forward_decode`.

    For channels-last execution call ``model.set_channels_last(True)`` (or build with
    ``channels_last=True``): parameters are converted with
    ``model.to(memory_format=torch.channels_last)`` and inputs with ``x.contiguous(...)``.

    Args:
        encoder: backbone returning a list of feature maps.
        decoder: module mapping that list to one ``B x decoder_channels x h x w`` map.
        decoder_channels: channels of the decoder output.
        num_classes: number of classes K.
        dropout: Dropout2d probability before the classifier.
    """

    #: Final upsampling as in the S5/UniMatch reference code (bilinear, align_corners=True).
    align_corners: bool = True

    def __init__(
        self,
        encoder: Encoder,
        decoder: nn.Module,
        decoder_channels: int,
        num_classes: int,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(decoder_channels, num_classes, kernel_size=1)
        self._init_classifier(self.classifier)
        self.num_classes = num_classes
        self.channels_last = False
        self.model_name: str | None = None

    @staticmethod
    def _init_classifier(conv: nn.Conv2d) -> None:
        nn.init.normal_(conv.weight, std=0.01)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)

    # --- forward -------------------------------------------------------------------------------
    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Encoder features of a normalised ``B x C x H x W`` batch."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return list(self.encoder(x))

    def forward_decode(self, features: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        """Logits at ``size`` (H, W) from encoder features."""
        y = self.decoder(list(features))
        y = self.classifier(self.dropout(y))
        # int() of a symbolic size would fix the traced size in an exported graph
        height, width = (s if isinstance(s, torch.SymInt) else int(s) for s in size[:2])
        return resize(y, (height, width), align_corners=self.align_corners)

    def forward(self, x: Tensor) -> Tensor:
        """``B x K x H x W`` logits for a normalised ``B x C x H x W`` batch."""
        return self.forward_decode(self.forward_features(x), x.shape[-2:])

    # --- classifier ----------------------------------------------------------------------------
    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last 1x1 conv with a freshly initialised one for ``num_classes`` classes."""
        old = self.classifier
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1, bias=old.bias is not None)
        new = new.to(device=old.weight.device, dtype=old.weight.dtype)
        if old.weight.device.type != "meta":
            self._init_classifier(new)
        if self.channels_last:
            new = new.to(memory_format=torch.channels_last)
        self.classifier = new
        self.num_classes = num_classes

    # --- options -------------------------------------------------------------------------------
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing in the encoder (trades compute for memory)."""
        self.encoder.set_grad_checkpointing(enable)

    def set_channels_last(self, enable: bool = True) -> None:
        """Run in ``torch.channels_last`` memory format (parameters and inputs)."""
        fmt = torch.channels_last if enable else torch.contiguous_format
        self.to(memory_format=fmt)
        self.channels_last = enable

    # --- optimiser helpers ---------------------------------------------------------------------
    def no_weight_decay(self) -> set[str]:
        """Parameter names that take no weight decay: norms, position embeddings, tokens."""
        names = {f"encoder.{n}" for n in self.encoder.no_weight_decay()}
        for mod_name, module in self.named_modules():
            if isinstance(module, NORM_TYPES):
                prefix = f"{mod_name}." if mod_name else ""
                names.update(prefix + p for p, _ in module.named_parameters(recurse=False))
        return names & {n for n, _ in self.named_parameters()}

    @property
    def num_layers(self) -> int:
        """Number of layer-decay groups: the encoder's plus one for decoder and classifier."""
        return self.encoder.num_layers + 1

    def layer_id(self, name: str) -> int:
        """Layer-decay group of a parameter: 0 (stem) .. ``num_layers - 1`` (decoder, head).

        The learning rate of group ``i`` is usually ``lr * decay ** (num_layers - 1 - i)``.
        """
        if name.startswith("encoder."):
            return self.encoder.layer_id(name[len("encoder.") :])
        return self.num_layers - 1
