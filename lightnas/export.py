"""Export of a searched child: trainable weights (safetensors + JSON) and inference graphs.

A training's `exported_models/` holds `trainables/<name>.{safetensors,json}`, which `load_child`
turns back into a trainable `nn.Module`, `inference_only/<name>.{pt2,onnx}`, standalone graphs
for `torch.export.load` and ONNX runtimes (every graph has a dynamic batch dimension), and with
the `packed` format `deploy/<name>.packed.safetensors`: the 1-bit deployment file, binary conv
weights packed eight to a byte (`lightnas.binary.packing`), which `load_child` unpacks into a
network computing exactly what the float child computes.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import Tensor, nn

from lightnas import deploy
from lightnas.binary.packing import (
    PackedConv2d,
    is_packable,
    pack_signs,
    unpack_signs,
    weight_scale,
)
from lightnas.errors import ArchitectureError, CheckpointError, ConfigError
from lightnas.fileio import atomic_write, write_atomic
from lightnas.layout import (
    FINAL_NAME,
    TrainingFolder,
    deploy_dir,
    epoch_of,
    inference_dir,
    trainables_dir,
)
from lightnas.models import child, create_supernet
from lightnas.registry import Registry
from lightnas.search.space import Architecture, architecture_of

METADATA_KEY = "lightnas"  # key of the description in the .pt2 extra files and ONNX metadata
_EXAMPLE_BATCH = 2  # torch.export specializes batch sizes 0 and 1, so trace with another

# inference formats: name -> save(model, example, description, path); the file is
# inference_only/<name>.<format>, deploy/<name>.packed.safetensors for `packed` (format_path)
Saver = Callable[[nn.Module, Tensor, dict, Path], None]
EXPORT_FORMATS: Registry[Saver] = Registry("export format", "export.formats")
PACKED = "packed"
PACKED_SUFFIX = ".packed.safetensors"
PACKED_KEY = "packed"  # metadata: {weight key: {"shape": [...], "scale": scale key or null}}
TFLITE = "tflite"


def model_info(
    model_name: str,
    num_classes: int,
    stem: str,
    search_space: Mapping | None,
    model_kwargs: Mapping,
    input_shape: Sequence[int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict:
    """Plain-JSON description that rebuilds the supernet (and so any child) and feeds it."""
    info = {
        "name": model_name,
        "num_classes": num_classes,
        "stem": stem,
        "search_space": search_space,
        "kwargs": model_kwargs,
        "input_shape": input_shape,
        "mean": mean,
        "std": std,
    }
    try:
        # the round trip turns tuples into lists and rejects what JSON cannot hold
        return json.loads(json.dumps(info))
    except TypeError as err:
        raise ValueError(f"model description is not plain JSON: {err}") from None


def export_child(
    net: nn.Module,
    arch: Architecture,
    info: Mapping,
    out_dir: str | Path,
    name: str,
    formats: Sequence[str] = EXPORT_FORMATS,
    stats: Mapping | None = None,
) -> dict[str, Path]:
    """Write the child `net` (of architecture `arch`) under `out_dir`; returns the paths by kind."""
    savers = {
        fmt: EXPORT_FORMATS[fmt] for fmt in ([formats] if isinstance(formats, str) else formats)
    }
    out_dir = Path(out_dir)
    description = {"architecture": arch.to_dict(), "model": dict(info), "stats": stats}
    # a CPU copy in eval mode: the caller's module keeps its device and training mode
    model = copy.deepcopy(net).cpu().eval()
    paths = _save_trainable(model, description, trainables_dir(out_dir), name)
    example = torch.zeros(_EXAMPLE_BATCH, *info["input_shape"])
    for fmt, save_as in savers.items():
        path = format_path(out_dir, name, fmt)
        save_as(model, example, description, path)
        paths[fmt] = path
    return paths


def format_path(out_dir: str | Path, name: str, fmt: str) -> Path:
    """Where the export format `fmt` writes the child `name` in an `exported_models` folder."""
    if fmt == PACKED:
        return deploy_dir(Path(out_dir)) / f"{name}{PACKED_SUFFIX}"
    return inference_dir(Path(out_dir)) / f"{name}.{fmt}"


def load_child(path: str | Path) -> nn.Module:
    """The exported child at `path` (its .safetensors, .json or stem, or a packed 1-bit
    .packed.safetensors), in eval mode."""
    weights_path = _trainable_path(path, ".safetensors")
    description = read_metadata(weights_path)
    arch = _architecture(description)
    net = child(_build_supernet(description["model"]), arch)
    state = load_file(weights_path)
    packed = _packed_entries(weights_path)
    if packed is not None:
        _unpack_into(net, state, packed)
    _check_state(net, state, weights_path)
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


def safetensors_bytes(tensors: Mapping[str, Tensor], metadata: Mapping[str, str]) -> bytes:
    """The safetensors file of `tensors` and `metadata`, the same bytes for the same content.

    The library writes the metadata keys in a random order (safetensors issue 584), so two saves
    of one model differed; the header is rewritten with its metadata sorted, at the same length.
    """
    data = save(dict(tensors), metadata=dict(metadata))
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    if "__metadata__" not in header:
        return data
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > size:  # not the library's compact JSON: its bytes are still a valid file
        return data
    return data[:8] + text.ljust(size) + data[8 + size :]


def _save_trainable(
    model: nn.Module, description: dict, directory: Path, name: str
) -> dict[str, Path]:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {key: json.dumps(description[key]) for key in ("architecture", "model")}
    weights = directory / f"{name}.safetensors"
    # bytes written by us: save_file creates its files with mode 0600
    write_atomic(weights, safetensors_bytes(tensors, metadata))
    json_path = directory / f"{name}.json"
    write_atomic(json_path, json.dumps(description, indent=2) + "\n")
    return {"safetensors": weights, "json": json_path}


@EXPORT_FORMATS.register("pt2")
def _save_pt2(model: nn.Module, example: Tensor, description: dict, path: Path) -> None:
    with torch.no_grad(), _quiet_exporter():
        program = torch.export.export(model, (example,), dynamic_shapes=_dynamic_batch())
    extra = {METADATA_KEY: json.dumps(description)}
    # saved to memory first: saved to a file, the archive's folder inside is named after the
    # file, here the random temporary name of the atomic write
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files=extra)
    write_atomic(path, buffer.getvalue())


@EXPORT_FORMATS.register("onnx")
def _save_onnx(model: nn.Module, example: Tensor, description: dict, path: Path) -> None:
    with torch.no_grad(), _quiet_exporter():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            dynamic_shapes=_dynamic_batch(),
            input_names=["input"],
            output_names=["logits"],
            verbose=False,
        )
    program.model.metadata_props[METADATA_KEY] = json.dumps(description)
    # one self-contained file: children stay far below protobuf's 2 GB limit
    atomic_write(path, lambda tmp: program.save(tmp, external_data=False))


@EXPORT_FORMATS.register(PACKED)
def _save_packed(model: nn.Module, example: Tensor, description: dict, path: Path) -> None:
    """The 1-bit deployment file: binary conv weights as sign bits (+ scales), the rest as is."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    packed: dict[str, dict] = {}
    for name, module in model.named_modules():
        if not is_packable(module):
            continue
        key = f"{name}.weight"
        tensors[key] = pack_signs(module.weight).cpu()
        scale = weight_scale(module)
        if scale is not None:
            tensors[f"{key}_scale"] = scale.cpu().contiguous()
        packed[key] = {
            "shape": list(module.weight.shape),
            "scale": None if scale is None else f"{key}_scale",
        }
    metadata = {key: json.dumps(description[key]) for key in ("architecture", "model")}
    metadata[PACKED_KEY] = json.dumps(packed)
    write_atomic(path, safetensors_bytes(tensors, metadata))


@EXPORT_FORMATS.register(TFLITE)
def _save_tflite(model: nn.Module, example: Tensor, description: dict, path: Path) -> None:
    """A Larq Compute Engine .tflite, 1-bit convs as LCE binary convs (the `deploy` extra,
    lightnas.deploy). k-bit convs, which have no LCE kernel, stay float convs over their
    quantized values (a warning and the file's metadata name them) rather than stop a search:
    `lightnas deploy` refuses them unless asked."""
    convert = deploy.load("convert")
    shape = list(example.shape[1:])
    deployment = convert.convert_child(model, shape, description, fallback="float")
    if deployment.float_fallback:
        warnings.warn(
            f"{path.name}: k-bit convs kept as float convs: {', '.join(deployment.float_fallback)}",
            stacklevel=2,
        )
    write_atomic(path, deployment.flatbuffer)


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


class _quiet_exporter:  # noqa: N801  (a context manager used like a function)
    """Silence what torch's exporters print about the environment rather than the model: that
    torchvision (whose ops LightNAS never uses) is missing, and torch's own deprecations."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("torch.onnx._internal.exporter._registration")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)

    def __exit__(self, *exc) -> None:
        self._warnings.__exit__(*exc)
        self._logger.setLevel(self._level)


def _dynamic_batch() -> tuple[dict[int, torch.export.Dim]]:
    return ({0: torch.export.Dim("batch")},)


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


def _build_supernet(info: Mapping) -> nn.Module:
    return create_supernet(
        info["name"], info["num_classes"], info["stem"], info["search_space"], **info["kwargs"]
    )


def _architecture(description: Mapping) -> Architecture:
    """The architecture of an export description, validated against its rebuilt space."""
    # the space needs only the supernet's structure, so skip allocating its weights
    with torch.device("meta"):
        space = _build_supernet(description["model"]).space
    return Architecture.from_dict(space, architecture_of(description))


def _check_state(net: nn.Module, state: Mapping[str, Tensor], path: Path) -> None:
    """One-line error when `state` does not fit `net` (load_state_dict's is many lines)."""
    expected = net.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape)
    problems = [
        f"{label}: {keys[0]}" + (f" (+{len(keys) - 1} more)" if len(keys) > 1 else "")
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
        if keys
    ]
    if problems:
        raise CheckpointError(
            f"{path}: weights do not match its architecture ({'; '.join(problems)})"
        )


# ---- finding a training folder's exports ------------------------------------------------------
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
        folder = TrainingFolder(path)
        if not folder.is_training():
            raise CheckpointError(f"{path} is not a training folder (no config.yml in it)")
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
