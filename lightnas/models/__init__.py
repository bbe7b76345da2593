"""Supernets by name: `create_supernet("meliusnet22", num_classes=100, stem="thumbnail")`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lightnas.models.meliusnet import MELIUSNET_SPECS, MeliusNet
from lightnas.models.resnet import RESNET_LAYERS, BinaryResNet
from lightnas.models.supernet import Choice, Network, Supernet, child

_REGISTRY: dict[str, Callable[..., Supernet]] = {}


def register(name: str, factory: Callable[..., Supernet]) -> None:
    _REGISTRY[name] = factory


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_supernet(
    name: str,
    num_classes: int = 1000,
    stem: str = "imagenet",
    search_space: Mapping | None = None,
    **kwargs,
) -> Supernet:
    """Build the named supernet; `kwargs` override the family's spec (widths, blocks, ...)."""
    if name not in _REGISTRY:
        raise ValueError(f"model.name={name!r} is not known; valid: {', '.join(list_models())}")
    return _REGISTRY[name](num_classes=num_classes, stem=stem, search_space=search_space, **kwargs)


def _melius(key: str) -> Callable[..., Supernet]:
    blocks, reduction, groups = MELIUSNET_SPECS[key]

    def factory(**kwargs) -> Supernet:
        kwargs.setdefault("block_config", blocks)
        kwargs.setdefault("reduction", reduction)
        kwargs.setdefault("transition_groups", groups)
        return MeliusNet(f"meliusnet{key}", **kwargs)

    return factory


def _melius_flex(**kwargs) -> Supernet:
    """MeliusNet with a free block config; reductions default to 1/2 (the spec's flex default)."""
    blocks = kwargs.setdefault("block_config", [4, 5, 4, 4])
    kwargs.setdefault("reduction", [0.5] * (len(blocks) - 1))
    return MeliusNet("meliusnet_flex", **kwargs)


def _resnet(depth: str, version: int) -> Callable[..., Supernet]:
    suffix = "" if version == 1 else "_v2"

    def factory(**kwargs) -> Supernet:
        kwargs.setdefault("layers", RESNET_LAYERS[depth])
        return BinaryResNet(f"resnet{depth}{suffix}", version=version, **kwargs)

    return factory


for _key in MELIUSNET_SPECS:
    register(f"meliusnet{_key}", _melius(_key))
register("meliusnet_flex", _melius_flex)
for _depth in RESNET_LAYERS:
    register(f"resnet{_depth}", _resnet(_depth, 1))
    register(f"resnet{_depth}_v2", _resnet(_depth, 2))

__all__ = [
    "Choice",
    "Network",
    "Supernet",
    "child",
    "create_supernet",
    "list_models",
    "register",
]
