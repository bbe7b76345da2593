"""Writing the export of a searched child: trainable weights (safetensors + JSON), inference
graphs and the packed 1-bit deployment file (`load_child`, in reading.py, reads them back).

A training's `exported_models/` holds `trainables/<name>.{safetensors,json}`, which `load_child`
turns back into a trainable `nn.Module`, `inference_only/<name>.{pt2,onnx}`, standalone graphs
for `torch.export.load` and ONNX runtimes (every graph has a dynamic batch dimension), and with
the `packed` format `deploy/<name>.packed.safetensors`: the 1-bit deployment file, binary conv
weights packed eight to a byte (`lightnas.binary.packing`), which `load_child` unpacks into a
network computing exactly what the float child computes.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from safetensors.torch import save
from torch import Tensor, nn

from lightnas.binary.packing import (
    is_packable,
    pack_signs,
    weight_scale,
)
from lightnas.errors import ConfigError
from lightnas.layout import (
    deploy_dir,
    inference_dir,
    trainables_dir,
)
from lightnas.registry import Registry
from lightnas.runtime.fileio import write_atomic
from lightnas.search.space import Architecture

METADATA_KEY = "lightnas"  # key of the description in the .pt2 extra files and ONNX metadata
_EXAMPLE_BATCH = 2  # torch.export specializes batch sizes 0 and 1, so trace with another

# inference formats: name -> save(model, example, description, path); the file is
# inference_only/<name>.<format>, deploy/<name>.packed.safetensors for `packed` (format_path)
Saver = Callable[[nn.Module, Tensor, dict, Path], None]
EXPORT_FORMATS: Registry[Saver] = Registry("export format", "export.formats")
# formats that need an optional extra: format -> (the extra, the modules it imports); a format
# defined in a module of its own registers its extra there (tflite.py)
FORMAT_EXTRAS = {"onnx": ("onnx", ("onnx", "onnxscript"))}
PACKED = "packed"
PACKED_SUFFIX = ".packed.safetensors"
PACKED_KEY = "packed"  # metadata: {weight key: {"shape": [...], "scale": scale key or null}}


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


def _missing_modules(fmt: str) -> list[str]:
    modules = FORMAT_EXTRAS.get(fmt, ("", ()))[1]
    return [m for m in modules if importlib.util.find_spec(m) is None]


def check_formats_installed(formats: Sequence[str]) -> None:
    """Every format in `formats` can be written here: one whose extra is not installed is a
    ConfigError naming the extra (checked before any training, not at the first export)."""
    for fmt in formats:
        missing = _missing_modules(fmt)
        if missing:
            extra = FORMAT_EXTRAS[fmt][0]
            here = [f for f in EXPORT_FORMATS if not _missing_modules(f)]
            raise ConfigError(
                f"export.formats: {fmt!r} needs the `{extra}` extra ({missing[0]} is not "
                f'installed): pip install -e ".[{extra}]"; valid without it: {", ".join(here)}'
            )


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
    write_atomic(path, lambda tmp: program.save(tmp, external_data=False))


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
