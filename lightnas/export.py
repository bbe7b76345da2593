"""Export of a searched child: trainable weights (safetensors + JSON) and inference graphs.

A training's `exported_models/` holds `trainables/<name>.{safetensors,json}`, which `load_child`
turns back into a trainable `nn.Module`, and `inference_only/<name>.{pt2,onnx}`, standalone graphs
for `torch.export.load` and ONNX runtimes. Every graph has a dynamic batch dimension.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import Tensor, nn

from lightnas.fileio import atomic_write
from lightnas.models import child, create_supernet
from lightnas.search.space import Architecture

EXPORT_FORMATS = ("pt2", "onnx")
METADATA_KEY = "lightnas"  # key of the description in the .pt2 extra files and ONNX metadata
_EXAMPLE_BATCH = 2  # torch.export specializes batch sizes 0 and 1, so trace with another


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
    formats = _check_formats(formats)
    out_dir = Path(out_dir)
    description = {"architecture": arch.to_dict(), "model": dict(info), "stats": stats}
    # a CPU copy in eval mode: the caller's module keeps its device and training mode
    model = copy.deepcopy(net).cpu().eval()
    paths = _save_trainable(model, description, out_dir / "trainables", name)
    example = torch.zeros(_EXAMPLE_BATCH, *info["input_shape"])
    savers = {"pt2": _save_pt2, "onnx": _save_onnx}
    for fmt in formats:
        path = out_dir / "inference_only" / f"{name}.{fmt}"
        savers[fmt](model, example, description, path)
        paths[fmt] = path
    return paths


def load_child(path: str | Path) -> nn.Module:
    """The exported child at `path` (its .safetensors, .json or stem), in eval mode."""
    weights_path = _trainable_path(path, ".safetensors")
    description = _read_metadata(weights_path)
    arch = _architecture(description)
    net = child(_build_supernet(description["model"]), arch)
    state = load_file(weights_path)
    _check_state(net, state, weights_path)
    net.load_state_dict(state, strict=True)
    return net.eval()


def load_architecture(path: str | Path) -> Architecture:
    """The architecture in an exported .json/.safetensors (or a JSON holding the model too)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return _architecture(_read_metadata(path))
    if not path.is_file():
        path = _trainable_path(path, ".json")
    data = json.loads(path.read_text())
    if "model" not in data:
        raise ValueError(
            f"{path} holds no model description ('model'), which is needed to rebuild the search "
            "space; load an exported trainables/<name>.json, or build the supernet yourself and "
            "use Architecture.from_dict(supernet.space, data)"
        )
    return _architecture(data)


def _check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    for fmt in formats:
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}")
    return formats


def _save_trainable(
    model: nn.Module, description: dict, directory: Path, name: str
) -> dict[str, Path]:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {key: json.dumps(description[key]) for key in ("architecture", "model")}
    weights = directory / f"{name}.safetensors"
    # bytes written by us: save_file creates its files with mode 0600
    data = save(tensors, metadata=metadata)
    atomic_write(weights, lambda tmp: tmp.write_bytes(data))
    text = json.dumps(description, indent=2) + "\n"
    json_path = directory / f"{name}.json"
    atomic_write(json_path, lambda tmp: tmp.write_text(text))
    return {"safetensors": weights, "json": json_path}


def _save_pt2(model: nn.Module, example: Tensor, description: dict, path: Path) -> None:
    with torch.no_grad():
        program = torch.export.export(model, (example,), dynamic_shapes=_dynamic_batch())
    extra = {METADATA_KEY: json.dumps(description)}
    atomic_write(path, lambda tmp: torch.export.save(program, tmp, extra_files=extra))


def _save_onnx(model: nn.Module, example: Tensor, description: dict, path: Path) -> None:
    with torch.no_grad():
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


def _dynamic_batch() -> tuple[dict[int, torch.export.Dim]]:
    return ({0: torch.export.Dim("batch")},)


def _trainable_path(path: str | Path, suffix: str) -> Path:
    """The file with `suffix` for a .safetensors, .json or suffix-less `<name>` path."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    found = stem.with_name(stem.name + suffix)
    if not found.is_file():
        raise FileNotFoundError(f"no exported child at {path}: {found} does not exist")
    return found


def _read_metadata(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"no exported child at {path}")
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
    if "architecture" not in metadata or "model" not in metadata:
        raise ValueError(f"{path} has no LightNAS metadata (architecture and model)")
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
    return Architecture.from_dict(space, description.get("architecture", description))


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
        raise ValueError(f"{path}: weights do not match its architecture ({'; '.join(problems)})")
