"""`lightnas evaluate <training folder | exported model>`: accuracy, costs and latency of a child.

Prints a narrow table and writes it as JSON: `evaluation.json` in a training folder, or
`<name>.evaluation.json` next to an exported model (a folder of exports holds one per epoch).
Under torchrun the ranks share the evaluated split; rank 0 measures the costs and writes.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from lightnas.config import ArgParser, Config, parse_config
from lightnas.data import DataBundle, build_data
from lightnas.errors import ArchitectureError, ConfigError, DataError
from lightnas.export import (
    find_trainable,
    load_architecture,
    load_child,
    read_metadata,
    resolve_target,
    supernet_of,
)
from lightnas.layout import TrainingFolder
from lightnas.models import child
from lightnas.runtime.distributed import LOCAL, Dist, session
from lightnas.runtime.fileio import make_folder, write_json_atomic
from lightnas.runtime.placement import resolve_device
from lightnas.scoring.cost_metrics import COSTS, LATENCY_TABLE, measure_costs
from lightnas.scoring.latency import LatencyTable, format_rows

LATENCY_NOTE = (
    "latency: eager PyTorch forward; binary convs are simulated in floating point, so it is not "
    "the speed of an XNOR-popcount kernel"
)


# ---- data --------------------------------------------------------------------------------
def load_data_config(path: Path, data_dir: str | None) -> Config:
    """A training's config, read for its data and model: its teacher and its export formats
    (whose extras, onnx or deploy, need not be installed where a child is evaluated) are off."""
    argv = ["--config", str(path), "--distill.teacher", "null", "--export.formats", "[]"]
    if data_dir:
        argv += ["--data.data_dir", data_dir]
    return parse_config(argv)[0]


def build_eval_data(cfg: Config, device) -> DataBundle:
    """The training's dataset, split and normalised as in training."""
    return build_data(cfg.data, seed=cfg.seed, device=device)


def pick_split(data: DataBundle, split: str) -> tuple[object, str, list[str]]:
    if split == "test" and data.test is None:
        return data.val, "val", ["the dataset has no test split: evaluated on the validation split"]
    return (data.test if split == "test" else data.val), split, []


# ---- a stand-alone child -----------------------------------------------------------------
@torch.no_grad()
def accuracy(net: nn.Module, loader, num_classes: int, dist: Dist = LOCAL) -> dict:
    """top1 (and top5 when there are more than 5 classes) of `net` over `loader` (its batches
    shared by the ranks of `dist`)."""
    net.eval()
    device = next(net.parameters()).device
    k = min(5, num_classes)
    top1 = top5 = n = 0
    for x, y in dist.split(loader):
        x, y = x.to(device), y.to(device)
        hits = net(x).float().topk(k, dim=1).indices == y[:, None]
        top1 += int(hits[:, 0].sum())
        top5 += int(hits.any(dim=1).sum())
        n += len(y)
    top1, top5, n = (int(v) for v in dist.sum_floats([top1, top5, n]))
    if n == 0:
        raise DataError("the evaluation split is empty")
    return {"top1": top1 / n, "top5": top5 / n if num_classes > 5 else None, "samples": n}


def measure(
    net: nn.Module,
    loader,
    num_classes: int,
    input_shape: Sequence[int],
    device: torch.device,
    latency_batch: int = 1,
    latency_repeats: int = 20,
    dist: Dist = LOCAL,
) -> dict[str, object]:
    """Every registered cost of `net` (latency on `device`), plus its accuracy if `loader`.
    In a distributed run the ranks share the accuracy and rank 0 alone measures the costs (the
    others' rows have none): its latency is timed without the others competing."""
    net.to(device)
    row: dict[str, object] = {}
    if dist.is_main:
        timing = {"latency_batch": latency_batch, "latency_repeats": latency_repeats}
        row.update(measure_costs(net, input_shape, **timing))
    scores = accuracy(net, loader, num_classes, dist) if loader is not None else {}
    row["top1"], row["top5"] = scores.get("top1"), scores.get("top5")
    row["samples"] = scores.get("samples")
    return row


def base_network(
    info: dict, model: nn.Module, weights: Path, base: str | None
) -> tuple[nn.Module, str | None]:
    """The base network (first choice everywhere) of an exported child's family, and its
    weights file; None = untrained (costs only). `base` is a trained base network's folder or
    export."""
    supernet = supernet_of(info)
    default = dict(supernet.space.default())
    if base is not None:
        path = Path(base)
        found = find_trainable(path) if path.is_dir() else resolve_target(base, None)[0]
        if dict(load_architecture(found)) != default:
            raise ArchitectureError(
                f"--base {base}: not the base network (first choice everywhere)"
            )
        return load_child(found), str(found)
    if dict(load_architecture(weights)) == default:
        return model, str(weights)  # the evaluated model is the base network
    return child(supernet, supernet.space.default()), None


# ---- the report --------------------------------------------------------------------------
@dataclass
class Inputs:
    """What an evaluation measures, loaded and checked."""

    weights: Path
    folder_config: Path | None
    out: Path
    cfg: Config
    device: object
    description: dict
    net: nn.Module
    data: DataBundle
    loader: object
    split: str
    base: nn.Module | None = None
    base_weights: str | None = None
    notes: list[str] = field(default_factory=list)


def load_inputs(args: argparse.Namespace, dist: Dist = LOCAL) -> Inputs:
    """The model, its data and the base network to compare with; bad input raises."""
    weights, folder_config, out = resolve_target(args.target, args.epoch)
    config = Path(args.config) if args.config else folder_config
    if config is None or not config.is_file():
        raise ConfigError(
            f"{weights}: no config.yml of its training folder; pass --config <config.yml> "
            "so its dataset can be rebuilt"
        )
    cfg = load_data_config(config, args.data_dir)
    device = dist.place(resolve_device(args.device))
    description = read_metadata(weights)
    info = description["model"]
    net = load_child(weights)
    data = build_eval_data(cfg, device)
    shape = tuple(info["input_shape"])
    if shape != tuple(data.input_shape) or info["num_classes"] != data.num_classes:
        raise DataError(
            f"{weights} expects {shape} inputs and {info['num_classes']} classes, the data of "
            f"{config} gives {tuple(data.input_shape)} and {data.num_classes}"
        )
    loader, split, notes = pick_split(data, args.split)
    found = Inputs(weights, folder_config, out, cfg, device, description, net, data, loader, split)
    found.notes = notes
    if args.compare_base or args.base is not None:
        found.base, found.base_weights = base_network(info, net, weights, args.base)
    return found


def evaluate(args: argparse.Namespace, dist: Dist = LOCAL) -> tuple[dict, Path]:
    """The evaluation report of `args.target` and where to write it (complete on rank 0)."""
    job = dist.agree(lambda: load_inputs(args, dist))
    data, notes = job.data, job.notes
    shape = tuple(job.description["model"]["input_shape"])
    timing = {"latency_batch": args.latency_batch, "latency_repeats": args.latency_repeats}
    timing |= {"dist": dist}  # the ranks share the accuracy, rank 0 measures the costs
    model = measure(job.net, job.loader, data.num_classes, shape, job.device, **timing)
    results = {"model": {**model, "trained": True, "weights": str(job.weights)}}
    if job.base is not None:
        trained = job.base_weights is not None
        loader = job.loader if trained else None
        row = measure(job.base, loader, data.num_classes, shape, job.device, **timing)
        results["base"] = {**row, "trained": trained, "weights": job.base_weights}
        if not trained:
            notes.append(
                "base: untrained, so costs and latency only; for its accuracy pass --base <its "
                "training folder or export>, e.g. from `lightnas retrain <search> --arch base`"
            )
    notes.append(LATENCY_NOTE)
    latency_rows = add_latency_table(results, job.folder_config, job.weights)
    report = {
        "model": str(job.weights),
        "architecture": job.description["architecture"]["choices"],
        "dataset": job.cfg.data.dataset,
        "split": job.split,
        "samples": results["model"]["samples"],
        "num_classes": data.num_classes,
        "device": str(job.device),
        "latency_batch_size": args.latency_batch,
        "results": results,
        "notes": notes,
    }
    if latency_rows is not None:
        report["latency_table"] = latency_rows
    return report, Path(args.output) if args.output else job.out


def add_latency_table(results: dict, config: Path | None, weights: Path) -> list[dict] | None:
    """When the training folder of `weights` searched with a latency table: the table's latency
    of each evaluated architecture into `results`, and the table's rows (one per block)."""
    if config is None or not TrainingFolder(config.parent).latency_table.is_file():
        return None
    arch = load_architecture(weights)
    table = LatencyTable.read_csv(TrainingFolder(config.parent).latency_table, arch.space)
    results["model"][LATENCY_TABLE] = table.latency(arch)
    if "base" in results:
        results["base"][LATENCY_TABLE] = table.latency(arch.space.default())
    return table.rows(arch)


def report_rows(num_classes: int) -> list[tuple[str, str, object]]:
    """(label, key, formatter) of the table's rows: accuracies, then every cost metric."""
    rows = [("top-1", "top1", lambda v: f"{100 * v:.2f}%")]
    if num_classes > 5:
        rows.append(("top-5", "top5", lambda v: f"{100 * v:.2f}%"))
    return rows + [(COSTS[k].label, k, COSTS[k].fmt) for k in COSTS.names()]


def format_report(report: dict) -> str:
    """A narrow table: one row per metric, one column per model."""
    results = report["results"]
    lines = [
        f"model: {report['model']}",
        f"data:  {report['dataset']} {report['split']} split, {report['samples']} images; "
        f"device {report['device']}, latency batch {report['latency_batch_size']}",
        f"{'':<11}" + "".join(f"{name:>12}" for name in results),
    ]
    for label, key, fmt in report_rows(report["num_classes"]):
        if all(r.get(key) is None for r in results.values()):
            continue  # e.g. the table latency of a search without a latency table
        cells = [("-" if r.get(key) is None else fmt(r[key])) for r in results.values()]
        lines.append(f"{label:<11}" + "".join(f"{c:>12}" for c in cells))
    if report.get("latency_table"):
        lines += ["latency table of the search (per block, measured once):"]
        lines += [format_rows(report["latency_table"])]
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


def checked_args(argv: list[str]) -> argparse.Namespace:
    args = parse_args(argv)
    if args.latency_batch < 1 or args.latency_repeats < 1:
        raise ConfigError("--latency-batch and --latency-repeats must be >= 1")
    if args.output and Path(args.output).is_dir():
        raise ConfigError(f"--output {args.output} is a folder; give a JSON file path")
    return args


def main(argv: list[str]) -> int:
    """`lightnas evaluate ...`; bad input raises a LightNASError (one line, exit 2 in the CLI)."""
    with session() as dist:
        args = dist.agree(lambda: checked_args(argv))
        report, out = evaluate(args, dist)
        if dist.is_main:
            make_folder(out.parent, "--output")
            write_json_atomic(out, report)
            print(format_report(report))
            print(f"written to {out}")
        return 0
