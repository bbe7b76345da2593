"""Reading exports back: an exported child as a network (`load_child`, packed 1-bit files
unpacked), its architecture and description, and a training folder's exports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

from lightnas.binary.packing import PackedConv2d, is_packable, unpack_signs
from lightnas.errors import ArchitectureError, CheckpointError, ConfigError
from lightnas.export.writing import EXPORT_FORMATS, PACKED, PACKED_KEY
from lightnas.layout import FINAL_NAME, TrainingFolder, epoch_of, trainables_dir
from lightnas.models import (
    Supernet,
    child,
    create_supernet,
    space_without_weights,
    state_mismatch,
)
from lightnas.search.space import Architecture, architecture_of


def load_child(path: str | Path) -> nn.Module:
    """The exported child at `path` (its .safetensors, .json or stem, or a packed 1-bit
    .packed.safetensors), in eval mode."""
    weights_path = _trainable_path(path, ".safetensors")
    description = read_metadata(weights_path)
    arch = _architecture(description)
    net = child(supernet_of(description["model"]), arch)
    state = load_file(weights_path)
    packed = _packed_entries(weights_path)
    if packed is not None:
        _unpack_into(net, state, packed)
    wrong = state_mismatch(net.state_dict(), state)
    if wrong:
        raise CheckpointError(f"{weights_path}: weights do not match its architecture ({wrong})")
    net.load_state_dict(state, strict=True)
    return net.eval()


def load_architecture(path: str | Path) -> Architecture:
    """The architecture in an exported .json/.safetensors (or a JSON holding the model too)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return _architecture(read_metadata(path))
    if not path.is_file():
        path = _trainable_path(path, ".json")
    data = json.loads(path.read_text())
    if "model" not in data:
        raise ArchitectureError(
            f"{path} holds no model description ('model'), which is needed to rebuild the search "
            "space; load an exported trainables/<name>.json, or build the supernet yourself and "
            "use Architecture.from_dict(supernet.space, data)"
        )
    return _architecture(data)


def _packed_entries(path: Path) -> dict | None:
    """The packed weights' descriptions of a .safetensors (None: not a packed file)."""
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
    return json.loads(metadata[PACKED_KEY]) if PACKED_KEY in metadata else None


def _unpack_into(net: nn.Module, state: dict[str, Tensor], packed: Mapping) -> None:
    """Replace `net`'s binary convs by PackedConv2d and `state`'s bits by their weights."""
    modules = dict(net.named_modules())
    for key, entry in packed.items():
        name = key.removesuffix(".weight")
        conv = modules.get(name)
        if not is_packable(conv) or list(conv.weight.shape) != entry["shape"]:
            raise CheckpointError(f"packed weight {key} does not fit its architecture")
        signs = unpack_signs(state[key], entry["shape"])
        scale = state.pop(entry["scale"]) if entry["scale"] else None
        deployed = PackedConv2d.from_signs(conv, signs, scale)
        parent, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, attr, deployed)
        state[key] = deployed.weight.detach().clone()


def _trainable_path(path: str | Path, suffix: str) -> Path:
    """The file with `suffix` for a .safetensors, .json or suffix-less `<name>` path."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    found = stem.with_name(stem.name + suffix)
    if not found.is_file():
        raise CheckpointError(f"no exported child at {path}: {found} does not exist")
    return found


def read_metadata(path: Path) -> dict:
    """The description ({"architecture", "model"}) stored in an exported .safetensors."""
    if not path.is_file():
        raise CheckpointError(f"no exported child at {path}")
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for a damaged file
        raise CheckpointError(f"{path} is not a readable safetensors file ({err})") from None
    if "architecture" not in metadata or "model" not in metadata:
        raise CheckpointError(f"{path} has no LightNAS metadata (architecture and model)")
    return {key: json.loads(metadata[key]) for key in ("architecture", "model")}


def supernet_of(info: Mapping) -> Supernet:
    """The supernet that the model description `info` (lightnas.export.model_info) describes."""
    return create_supernet(
        info["name"], info["num_classes"], info["stem"], info["search_space"], **info["kwargs"]
    )


def _architecture(description: Mapping) -> Architecture:
    """The architecture of an export description, validated against its rebuilt space."""
    space = space_without_weights(lambda: supernet_of(description["model"]))
    return Architecture.from_dict(space, architecture_of(description))


def exported_trainables(folder: Path) -> dict[int, Path]:
    """{epoch: .safetensors} of a training folder's exported children."""
    found = {}
    for path in trainables_dir(TrainingFolder(folder).exports).glob("epoch_*.safetensors"):
        epoch = epoch_of(path.stem)
        if epoch is not None:
            found[epoch] = path
    return found


def best_epoch(folder: Path) -> int | None:
    """The epoch (1-based, as in metrics.jsonl) of the folder's best architecture, if known."""
    path = TrainingFolder(folder).best_architecture
    if not path.is_file():
        return None
    return (json.loads(path.read_text()).get("stats") or {}).get("epoch")


def find_trainable(folder: Path, epoch: int | None = None) -> Path:
    """The folder's export of `epoch`; by default the final selection's winner, else the best
    epoch's, else the latest."""
    final = trainables_dir(TrainingFolder(folder).exports) / f"{FINAL_NAME}.safetensors"
    if epoch is None and final.is_file():
        return final
    found = exported_trainables(folder)
    if not found:
        raise CheckpointError(f"{folder}: no exported child in exported_models/trainables/")
    if epoch is None:
        return found.get(best_epoch(folder), found[max(found)])
    if epoch not in found:
        raise CheckpointError(
            f"{folder}: epoch {epoch} was not exported; exported epochs: {sorted(found)}"
        )
    return found[epoch]


def resolve_target(target: str, epoch: int | None) -> tuple[Path, Path | None, Path]:
    """(weights, config.yml of its training folder or None, evaluation JSON) of a training
    folder or an exported model."""
    path = Path(target)
    if path.is_dir():
        folder = TrainingFolder(path).checked()
        return find_trainable(path, epoch), folder.config, folder.evaluation
    if epoch is not None:
        raise ConfigError("--epoch selects an export of a training folder, not of a model file")
    if path.suffix in tuple(f".{f}" for f in EXPORT_FORMATS if f != PACKED):
        # inference graphs hold no QConv2d to count: use their trainable twin
        path = trainables_dir(path.parent.parent) / path.stem
    weights = path.with_suffix(".safetensors") if path.suffix == ".json" else path
    if weights.suffix != ".safetensors":
        weights = weights.with_name(weights.name + ".safetensors")
    if not weights.is_file():
        raise CheckpointError(f"no training folder or exported model at {target}")
    config = TrainingFolder(weights.parent.parent.parent).config
    out = weights.with_name(f"{weights.stem}.evaluation.json")
    return weights, config if config.is_file() else None, out
