"""`lightnas evaluate <training folder | exported model>`: accuracy, costs and latency of a child.

Prints a narrow table and writes it as JSON: `evaluation.json` in a training folder, or
`<name>.evaluation.json` next to an exported model (a folder of exports holds one per epoch).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from lightnas.config import Config, ConfigError, parse_config
from lightnas.cost import count_costs, measure_latency
from lightnas.data import DataBundle, build_data
from lightnas.errors import LightNASError
from lightnas.export import load_architecture, load_child
from lightnas.models import child, create_supernet

TRAINABLE = re.compile(r"epoch_(\d+)\.safetensors")
LATENCY_NOTE = (
    "latency: eager PyTorch forward; binary convs are simulated in floating point, so it is not "
    "the speed of an XNOR-popcount kernel"
)


class ArgParser(argparse.ArgumentParser):
    """argparse whose errors are one-line ConfigErrors (exit 2 in the caller)."""

    def error(self, message: str):
        raise ConfigError(f"{self.prog}: {message}")


# ---- finding the model -------------------------------------------------------------------
def exported_trainables(folder: Path) -> dict[int, Path]:
    """{epoch: .safetensors} of a training folder's exported children."""
    found = {}
    for path in (folder / "exported_models" / "trainables").glob("epoch_*.safetensors"):
        match = TRAINABLE.fullmatch(path.name)
        if match:
            found[int(match[1])] = path
    return found


def best_epoch(folder: Path) -> int | None:
    """The epoch (1-based, as in metrics.jsonl) of the folder's best architecture, if known."""
    path = folder / "best_architecture.json"
    if not path.is_file():
        return None
    return (json.loads(path.read_text()).get("stats") or {}).get("epoch")


def find_trainable(folder: Path, epoch: int | None = None) -> Path:
    """The folder's export of `epoch`; by default the best epoch's, else the latest."""
    found = exported_trainables(folder)
    if not found:
        raise FileNotFoundError(f"{folder}: no exported child in exported_models/trainables/")
    if epoch is None:
        return found.get(best_epoch(folder), found[max(found)])
    if epoch not in found:
        raise FileNotFoundError(
            f"{folder}: epoch {epoch} was not exported; exported epochs: {sorted(found)}"
        )
    return found[epoch]


def resolve_target(target: str, epoch: int | None) -> tuple[Path, Path | None, Path]:
    """(weights, config.yml of its training folder or None, JSON output) of a folder or model."""
    path = Path(target)
    if path.is_dir():
        if not (path / "config.yml").is_file():
            raise FileNotFoundError(f"{path} is not a training folder (no config.yml in it)")
        return find_trainable(path, epoch), path / "config.yml", path / "evaluation.json"
    if epoch is not None:
        raise ConfigError("--epoch selects an export of a training folder, not of a model file")
    if path.suffix in (".pt2", ".onnx"):
        # inference graphs hold no QConv2d to count: use their trainable twin
        path = path.parent.parent / "trainables" / path.stem
    weights = path.with_suffix(".safetensors") if path.suffix == ".json" else path
    if weights.suffix != ".safetensors":
        weights = weights.with_name(weights.name + ".safetensors")
    if not weights.is_file():
        raise FileNotFoundError(f"no training folder or exported model at {target}")
    config = weights.parent.parent.parent / "config.yml"
    out = weights.with_name(f"{weights.stem}.evaluation.json")
    return weights, config if config.is_file() else None, out


def model_description(weights: Path) -> dict:
    """The exported child's description (architecture, model info) from its metadata."""
    with safe_open(weights, framework="pt") as f:
        metadata = f.metadata() or {}
    if "architecture" not in metadata or "model" not in metadata:
        raise ValueError(f"{weights} has no LightNAS metadata (architecture and model)")
    return {key: json.loads(metadata[key]) for key in ("architecture", "model")}


# ---- data --------------------------------------------------------------------------------
def load_data_config(path: Path, data_dir: str | None) -> Config:
    argv = ["--config", str(path), "--distill.teacher", "null"]  # evaluation needs no teacher
    if data_dir:
        argv += ["--data.data_dir", data_dir]
    return parse_config(argv)[0]


def build_eval_data(cfg: Config, device: torch.device) -> DataBundle:
    """The training's dataset, split and normalised as in training."""
    return build_data(cfg.data, seed=cfg.seed, device=device)


def pick_split(data: DataBundle, split: str) -> tuple[object, str, list[str]]:
    if split == "test" and data.test is None:
        return data.val, "val", ["the dataset has no test split: evaluated on the validation split"]
    return (data.test if split == "test" else data.val), split, []


# ---- measuring ---------------------------------------------------------------------------
@torch.no_grad()
def accuracy(net: nn.Module, loader, num_classes: int) -> dict:
    """top1 (and top5 when there are more than 5 classes) of `net` over `loader`."""
    net.eval()
    device = next(net.parameters()).device
    k = min(5, num_classes)
    top1 = top5 = n = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        hits = net(x).float().topk(k, dim=1).indices == y[:, None]
        top1 += int(hits[:, 0].sum())
        top5 += int(hits.any(dim=1).sum())
        n += len(y)
    if n == 0:
        raise ValueError("the evaluation split is empty")
    return {"top1": top1 / n, "top5": top5 / n if num_classes > 5 else None, "samples": n}


def measure(
    net: nn.Module, loader, num_classes: int, input_shape, device, args: argparse.Namespace
) -> dict[str, object]:
    """Costs and latency of `net`, plus its accuracy when `loader` is given."""
    row: dict[str, object] = dict(count_costs(net, input_shape).as_dict())
    net.to(device)
    scores = accuracy(net, loader, num_classes) if loader is not None else {}
    row["top1"], row["top5"] = scores.get("top1"), scores.get("top5")
    row["samples"] = scores.get("samples")
    seconds = measure_latency(net, input_shape, args.latency_batch, args.latency_repeats)
    row["latency_ms"] = seconds * 1e3
    return row


def base_network(
    info: dict, model: nn.Module, weights: Path, base: str | None
) -> tuple[nn.Module, str | None]:
    """The base network (first choice everywhere) and its weights file; None = untrained."""
    supernet = create_supernet(
        info["name"], info["num_classes"], info["stem"], info["search_space"], **info["kwargs"]
    )
    default = dict(supernet.space.default())
    if base is not None:
        path = Path(base)
        found = find_trainable(path) if path.is_dir() else resolve_target(base, None)[0]
        if dict(load_architecture(found)) != default:
            raise ValueError(f"--base {base}: not the base network (first choice everywhere)")
        return load_child(found), str(found)
    if dict(load_architecture(weights)) == default:
        return model, str(weights)  # the evaluated model is the base network
    return child(supernet, supernet.space.default()), None


def evaluate(args: argparse.Namespace) -> tuple[dict, Path]:
    """The evaluation report of `args.target` and where to write it."""
    from lightnas.cli import resolve_device

    weights, config, out = resolve_target(args.target, args.epoch)
    config = Path(args.config) if args.config else config
    if config is None or not config.is_file():
        raise FileNotFoundError(
            f"{weights}: no config.yml of its training folder; pass --config <config.yml> "
            "so its dataset can be rebuilt"
        )
    cfg = load_data_config(config, args.data_dir)
    device = resolve_device(args.device)
    description = model_description(weights)
    info = description["model"]
    net = load_child(weights)
    data = build_eval_data(cfg, device)
    shape = tuple(info["input_shape"])
    if shape != tuple(data.input_shape) or info["num_classes"] != data.num_classes:
        raise ValueError(
            f"{weights} expects {shape} inputs and {info['num_classes']} classes, the data of "
            f"{config} gives {tuple(data.input_shape)} and {data.num_classes}"
        )
    loader, split, notes = pick_split(data, args.split)
    compare = args.compare_base or args.base is not None
    base, base_weights = base_network(info, net, weights, args.base) if compare else (None, None)
    results = {"model": measure(net, loader, data.num_classes, shape, device, args)}
    results["model"].update(trained=True, weights=str(weights))
    if base is not None:
        trained = base_weights is not None
        row = measure(base, loader if trained else None, data.num_classes, shape, device, args)
        results["base"] = {**row, "trained": trained, "weights": base_weights}
        if not trained:
            notes.append(
                "base: untrained, so costs and latency only; for its accuracy pass --base <its "
                "training folder or export>, e.g. from `lightnas retrain <search> --arch base`"
            )
    notes.append(LATENCY_NOTE)
    report = {
        "model": str(weights),
        "architecture": description["architecture"]["choices"],
        "dataset": cfg.data.dataset,
        "split": split,
        "samples": results["model"]["samples"],
        "num_classes": data.num_classes,
        "device": str(device),
        "latency_batch_size": args.latency_batch,
        "results": results,
        "notes": notes,
    }
    return report, Path(args.output) if args.output else out


# ---- output ------------------------------------------------------------------------------
def _count(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _size(bits: float) -> str:
    nbytes = bits / 8
    return f"{nbytes / 2**20:.2f} MB" if nbytes >= 2**20 else f"{nbytes / 2**10:.1f} KB"


ROWS = (
    ("top-1", "top1", lambda v: f"{100 * v:.2f}%"),
    ("top-5", "top5", lambda v: f"{100 * v:.2f}%"),
    ("params", "params", _count),
    ("size", "model_bits", _size),
    ("FLOPs", "FLOPs", _count),
    ("BOPs", "BOPs", _count),
    ("OPs", "OPs", _count),
    ("latency", "latency_ms", lambda v: f"{v:.3g} ms"),
)


def format_report(report: dict) -> str:
    """A narrow table: one row per metric, one column per model."""
    results = report["results"]
    lines = [
        f"model: {report['model']}",
        f"data:  {report['dataset']} {report['split']} split, {report['samples']} images; "
        f"device {report['device']}, latency batch {report['latency_batch_size']}",
        f"{'':<9}" + "".join(f"{name:>12}" for name in results),
    ]
    for label, key, fmt in ROWS:
        if key == "top5" and report["num_classes"] <= 5:
            continue
        cells = [("-" if r.get(key) is None else fmt(r[key])) for r in results.values()]
        lines.append(f"{label:<9}" + "".join(f"{c:>12}" for c in cells))
    lines += [
        textwrap.fill(n, 78, initial_indent="note: ", subsequent_indent="  ")
        for n in report["notes"]
    ]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = ArgParser(prog="lightnas evaluate", allow_abbrev=False, description=__doc__)
    p.add_argument("target", help="a training folder or an exported trainable (.safetensors)")
    p.add_argument("--epoch", type=int, help="a folder's export of epoch N (default: best)")
    p.add_argument("--compare-base", action="store_true", help="add the base network's column")
    p.add_argument("--base", help="trained base network (folder or export): adds its accuracy")
    p.add_argument("-c", "--config", help="config.yml for the data (default: the training's)")
    p.add_argument("--data-dir", help="override data.data_dir")
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--latency-batch", type=int, default=1)
    p.add_argument("--latency-repeats", type=int, default=20)
    p.add_argument("-o", "--output", help="JSON path (default: next to the model)")
    return p.parse_args(argv)


def evaluate_main(argv: list[str] | None = None) -> int:
    """`lightnas evaluate ...`; bad input: one line on stderr, exit 2."""
    from lightnas.fileio import write_json_atomic

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
        if args.latency_batch < 1 or args.latency_repeats < 1:
            raise ConfigError("--latency-batch and --latency-repeats must be >= 1")
        report, out = evaluate(args)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out, report)
    except (LightNASError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_report(report))
    print(f"written to {out}")
    return 0
