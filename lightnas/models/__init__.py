"""Supernets by name: `create_supernet("meliusnet22", num_classes=100, stem="thumbnail")`.

Each family registers its models where it is defined (`@register_model`); importing this package
imports every family, so `MODELS` lists them all.
"""

from lightnas.models import meliusnet, resnet  # noqa: F401  (the families register themselves)
from lightnas.models.layers import STEMS
from lightnas.models.supernet import (
    MODELS,
    Choice,
    Network,
    Supernet,
    child,
    create_supernet,
    register_model,
)


def list_models() -> list[str]:
    return MODELS.names()


__all__ = [
    "MODELS",
    "STEMS",
    "Choice",
    "Network",
    "Supernet",
    "child",
    "create_supernet",
    "list_models",
    "register_model",
]
