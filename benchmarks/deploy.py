"""File sizes and x86 timings of children deployed with Larq Compute Engine (needs the `deploy`
extra, in its own virtualenv: README, Deployment).

    python benchmarks/deploy.py [--models meliusnet22 resnet18] [--sizes cifar100 imagenet]
                                [--child <training folders or exported .safetensors> ...]
                                [--repeats 5 (0: sizes only)]

For each base network (every first choice) and each child given: the float .tflite (the same
network with every conv in float), the LCE .tflite (1-bit convs as LCE binary convs), the packed
safetensors and the model size in bits / 8 (binary weights at 1 bit, the rest at 32), with the
LCE file's ratio to bits / 8; the LCE file split into its weights (the constant tensors: packed
sign bits, float kernels, folded BatchNorm) and its graph structure (tensor and op descriptors,
names, options: a cost per tensor and op, whatever the weights), with the weights' ratio to
bits / 8; and each .tflite's median latency under LCE's interpreter. On
x86_64 those are LCE's portable reference kernels: a correctness run, not a deployment figure.
A JSON line closes the output.
"""

from __future__ import annotations

import argparse
import copy
import platform
import tempfile
from pathlib import Path

import torch
from deploy_exactness import report
from packed_size import SIZES
from torch import nn

from lightnas.binary import QConv2d
from lightnas.deploy.backend import lce
from lightnas.deploy.benchmark import kernels, time_tflite
from lightnas.deploy.convert import BCONV_OP, convert_child, file_parts
from lightnas.deploy.keras_model import build_keras_model
from lightnas.export import export_child, load_child, model_info, read_metadata, resolve_target
from lightnas.models import child, create_supernet
from lightnas.scoring.cost_metrics import count_costs
from lightnas.search.space import Architecture


def float_twin(net: nn.Module) -> nn.Module:
    """`net` with every quantized conv at 32 bits: the same network in float."""
    twin = copy.deepcopy(net)
    for m in twin.modules():
        if isinstance(m, QConv2d):
            m.set_bits(32)
    return twin


def row(label: str, net: nn.Module, arch: Architecture, info: dict, args, out: Path) -> dict:
    shape = info["input_shape"]
    deployment = convert_child(net, shape)
    float_tflite = lce.convert_keras_model(build_keras_model(float_twin(net), shape).model)
    packed = export_child(net, arch, info, out / label, "child", ["packed"])["packed"]
    model_bytes = count_costs(net, shape).model_bits / 8
    parts = file_parts(deployment.flatbuffer)
    result = {
        "network": label,
        "float_tflite_bytes": len(float_tflite),
        "lce_tflite_bytes": parts.total,
        "lce_weight_bytes": parts.weights,
        "lce_graph_bytes": parts.graph,
        "lce_metadata_bytes": parts.metadata,
        "packed_bytes": packed.stat().st_size,
        "model_bytes": model_bytes,
        "lce_vs_model": parts.total / model_bytes,
        "lce_weights_vs_model": parts.weights / model_bytes,
        "binary_convs": len(deployment.binary_convs),
        "lce_bconv_ops": deployment.ops.get(BCONV_OP, 0),
    }
    if args.repeats:
        for key, flatbuffer in (("lce", deployment.flatbuffer), ("float", float_tflite)):
            timing = time_tflite(flatbuffer, 1, args.warmup, args.repeats)
            result[f"{key}_ms"] = timing.median_s * 1e3
    return result


def base_rows(args, out: Path) -> list[dict]:
    rows = []
    for name in args.models:
        for size in args.sizes:
            stem, shape, classes = SIZES[size]
            torch.manual_seed(0)
            supernet = create_supernet(name, classes, stem)
            arch = supernet.space.default()
            info = model_info(name, classes, stem, None, {}, shape)
            net = child(supernet, arch).eval()
            rows.append(row(f"{name} {size}", net, arch, info, args, out))
    return rows


def child_row(target: str, args, out: Path) -> dict:
    weights = resolve_target(target, None)[0]
    description = read_metadata(weights)
    net = load_child(weights)
    arch = Architecture.from_dict(
        create_supernet(**_supernet_args(description["model"])).space,
        description["architecture"],
    )
    label = f"child {Path(target).name} ({weights.stem})"
    return row(label, net, arch, description["model"], args, out)


def _supernet_args(info: dict) -> dict:
    return {
        "name": info["name"],
        "num_classes": info["num_classes"],
        "stem": info["stem"],
        "search_space": info["search_space"],
        **info["kwargs"],
    }


def print_table(rows: list[dict]) -> None:
    print(
        f"{'network':<28} {'float tflite':>12} {'LCE tflite':>11} {'weights':>9} {'graph':>8} "
        f"{'packed':>9} {'bits/8':>9} {'LCE/bits':>8} {'w/bits':>6} {'bconv':>6} {'LCE ms':>8} "
        f"{'float ms':>9}"
    )
    for r in rows:
        times = "".join(
            f" {r[k]:{w}.2f}" if k in r else f" {'-':>{w}}"
            for k, w in (("lce_ms", 8), ("float_ms", 9))
        )
        print(
            f"{r['network']:<28} {r['float_tflite_bytes'] / 1e6:10.2f}MB "
            f"{r['lce_tflite_bytes'] / 1e6:9.3f}MB {r['lce_weight_bytes'] / 1e6:7.3f}MB "
            f"{r['lce_graph_bytes'] / 1e3:6.1f}kB {r['packed_bytes'] / 1e6:7.3f}MB "
            f"{r['model_bytes'] / 1e6:7.3f}MB {r['lce_vs_model']:8.3f} "
            f"{r['lce_weights_vs_model']:6.3f} {r['lce_bconv_ops']:>3}/{r['binary_convs']:<2}"
            + times
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=["meliusnet22", "resnet18"])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument(
        "--child", nargs="+", default=[], help="training folders or exported children to add"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (0: sizes only)")
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = base_rows(args, Path(tmp))
        rows += [child_row(target, args, Path(tmp)) for target in args.child]
    print_table(rows)
    which, figure = kernels(reference=False)
    machine = f"{platform.machine()}, {torch.get_num_threads()} torch threads, 1 LCE thread"
    print(f"timings: {which} on {machine}" + ("" if figure else ": not deployment figures"))
    return report("deploy", rows, kernels=which)


if __name__ == "__main__":
    main()
