"""Model registry: configs name a network by string, ``build_model`` makes it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from s5geo.errors import S5GeoError

if TYPE_CHECKING:
    from s5geo.models.base import Encoder, SegmentationModel

_F = TypeVar("_F", bound=Callable[..., "SegmentationModel"])
_REGISTRY: dict[str, Callable[..., SegmentationModel]] = {}


class UnknownModelError(S5GeoError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:
        # KeyError would quote the message; print it as plain text.
        return str(self.args[0]) if self.args else ""


def register_model(name: str) -> Callable[[_F], _F]:
    """Register a factory ``fn(num_classes, in_channels, **kwargs) -> SegmentationModel``.

    Args:
        name: registry name used by configs, e.g. ``"upernet_vit_b"``.

    Returns:
        A decorator that registers the factory and returns it unchanged.

    Raises:
        ValueError: if ``name`` is already registered.
    """

    def decorator(fn: _F) -> _F:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return decorator


class Variant(NamedTuple):
    """One encoder of a model family, registered by :func:`register_variants`.

    Attributes:
        encoder: encoder factory, called with ``in_channels`` and the encoder options (a class, or
            a ``functools.partial`` of one with its size fixed).
        description: what the encoder is; it ends the registered factory's docstring.
        defaults: default build options of this variant (e.g. a narrower head for tests); the
            keyword arguments of :func:`build_model` override them.
    """

    encoder: Callable[..., Encoder]
    description: str
    defaults: Mapping[str, Any] = MappingProxyType({})


def register_variants(
    prefix: str, build: Callable[..., SegmentationModel], variants: Mapping[str, Variant]
) -> None:
    """Register ``{prefix}_{key}`` as ``build(variant.encoder, num_classes, in_channels, **options)``.

    Args:
        prefix: decoder part of the names, e.g. ``"upernet"``.
        build: model builder taking the encoder factory, ``num_classes`` and ``in_channels``
            first, e.g. :func:`s5geo.models.upernet.build_upernet`.
        variants: encoder part of the names (``"vit_b"``) -> variant; ``options`` are the
            variant's defaults updated with the keyword arguments of :func:`build_model`.
    """
    for key, variant in variants.items():
        name = f"{prefix}_{key}"
        register_model(name)(_variant_factory(name, build, variant))


def _variant_factory(
    name: str, build: Callable[..., SegmentationModel], variant: Variant
) -> Callable[..., SegmentationModel]:
    def factory(num_classes: int, in_channels: int = 3, **kwargs: Any) -> SegmentationModel:
        return build(variant.encoder, num_classes, in_channels, **{**variant.defaults, **kwargs})

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"``{name}``: {variant.description}."
    return factory


def list_models() -> list[str]:
    """Return the registered model names, sorted."""
    return sorted(_REGISTRY)


def build_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    channels_last: bool = False,
    **kwargs: Any,
) -> SegmentationModel:
    """Build a registered segmentation model.

    Args:
        name: registry name (see :func:`list_models`).
        num_classes: number of output classes K.
        in_channels: number of input bands.
        channels_last: convert parameters to ``torch.channels_last`` and feed the network
            channels-last inputs (same as ``model.to(memory_format=torch.channels_last)``).
        **kwargs: model options, e.g. ``img_size``, ``grad_checkpointing``, ``drop_path_rate``.

    Returns:
        The model, randomly initialised (load weights with :func:`s5geo.models.load_pretrained`).

    Raises:
        UnknownModelError: if ``name`` is not registered; the message lists the known names.
    """
    if name not in _REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    model = _REGISTRY[name](num_classes=num_classes, in_channels=in_channels, **kwargs)
    if channels_last:
        model.set_channels_last(True)
    model.model_name = name
    return model


__all__ = [
    "UnknownModelError",
    "Variant",
    "build_model",
    "list_models",
    "register_model",
    "register_variants",
]
