"""Supernets by name: `create_supernet("meliusnet22", num_classes=100, stem="thumbnail")`.

Each family registers its models where it is defined (`@register_model`); importing this package
imports every family, so `MODELS` lists them all.
"""

# the families register themselves
from lightnas.models import bottleneck, graph, meliusnet, resnet, resnet_e  # noqa: F401
from lightnas.models.categories import OP_CATEGORIES, op_category, register_category
from lightnas.models.init import INITS
from lightnas.models.layers import STEMS
from lightnas.models.supernet import (
    MODELS,
    Choice,
    Network,
    Supernet,
    child,
    create_supernet,
    register_model,
    space_without_weights,
    state_mismatch,
)


def list_models() -> list[str]:
    return MODELS.names()


__all__ = [
    "INITS",
    "MODELS",
    "OP_CATEGORIES",
    "STEMS",
    "Choice",
    "Network",
    "Supernet",
    "child",
    "create_supernet",
    "list_models",
    "op_category",
    "register_category",
    "register_model",
    "space_without_weights",
    "state_mismatch",
]
