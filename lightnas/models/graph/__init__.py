"""Search spaces from files: a supernet described as a graph of registered layers and blocks,
with choice nodes as its decision points (docs/spaces.md).

`model: {name: graph, file: configs/spaces/my_space.yml}` builds one. The file's parsed content
travels as the model's `spec` keyword argument, so a training folder, its checkpoints and its
exports describe the space without needing the file again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lightnas.errors import ConfigError

# the ops register themselves where they are defined: every user of OPS imports this package first
from lightnas.models.graph import block_ops, layer_ops  # noqa: F401
from lightnas.models.graph.build import Analysed, analyse_space, build_supernet
from lightnas.models.graph.format import load_space, read_space, read_space_file
from lightnas.models.graph.ops import OPS, Arg, Ctx, register_op
from lightnas.models.graph.space import VERSION, Space
from lightnas.models.graph.yaml_text import SpaceError
from lightnas.models.supernet import Supernet, register_model

MODEL = "graph"


@register_model(MODEL)
def graph_supernet(
    num_classes: int = 1000,
    stem: str = "imagenet",
    search_space: Mapping | None = None,
    spec: Mapping | None = None,
    params: Mapping | None = None,
    in_channels: int = 3,
) -> Supernet:
    """The supernet of a space file's parsed content `spec` (model.file in a config), its
    `params` updated by `params` (model.kwargs.params)."""
    if spec is None:
        raise ConfigError(
            "model.name=graph needs model.file: a space file such as configs/spaces/meliusnet22.yml"
        )
    if search_space:
        raise ConfigError(
            "search_space is not used by model graph: its decision points are in its file "
            "(model.file); remove search_space"
        )
    return build_supernet(read_space(spec, params=params), num_classes, stem, in_channels)


def space_kwargs(file: str | Path | None) -> dict:
    """The model keyword arguments a config's `model.file` adds: {"spec": the file's content}."""
    if file is None:
        return {}
    data, _ = read_space_file(file)
    return {"spec": data}


def check_space_file(
    file: str | Path,
    num_classes: int = 10,
    stem: str = "thumbnail",
    params: Mapping | None = None,
) -> Analysed:
    """Read and check a space file: structure, ops, arguments and shapes (at its `input` size);
    a SpaceError (one line naming the file and the line) when it is not usable."""
    _, space = read_space_file(file, params)
    try:
        return analyse_space(space, num_classes, stem)
    except SpaceError as err:
        raise err.with_source(str(file)) from None


__all__ = [
    "MODEL",
    "OPS",
    "VERSION",
    "Analysed",
    "Arg",
    "Ctx",
    "Space",
    "SpaceError",
    "analyse_space",
    "build_supernet",
    "check_space_file",
    "graph_supernet",
    "load_space",
    "read_space",
    "read_space_file",
    "register_op",
    "space_kwargs",
]
