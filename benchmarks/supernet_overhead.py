"""Forward+backward time of a supernet set to an architecture vs. the extracted child alone, and
of a supernet built from a space file vs. the built-in family on the same architecture.

    python benchmarks/supernet_overhead.py [--batch 64] [--repeats 8] [--device cpu|cuda]
                                           [--image-size 32] [--only child|graph]

Repetitions are interleaved in ABBA order (supernet, child, child, supernet, ...) so drift and
order effects hit both equally; the ratio of medians is printed (target <= 1.05) and a JSON line
closes the output. The space-file rows compare `configs/spaces/meliusnet22.yml` (the family's
blocks as nodes) with `meliusnet22`, and `bireal18_kernels.yml` at its base network (units of
plain ops: choice nodes holding qconv-bn-add sub-graphs, run by the graph body) with the
hand-written `resnet18_e` at one bit, which computes the same network. A tiny input
(`--batch 2 --image-size 16`) leaves almost only the Python and dispatch time per layer: the
regime of a launch-bound GPU step, where an interpreter's overhead would show first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lightnas.models import child, create_supernet
from lightnas.models.graph import space_kwargs

MODELS = ("meliusnet22", "resnet18")
SPACES = Path(__file__).resolve().parents[1] / "configs" / "spaces"
# space file, the built-in model computing the same network, its search space
GRAPHS = (
    ("meliusnet22", "meliusnet22", None),
    ("bireal18_kernels", "resnet18_e", {"bits": [1]}),
)


def step_time(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    sync()
    return time.perf_counter() - start


def interleaved(nets: dict[str, torch.nn.Module], x, y, repeats: int) -> dict[str, float]:
    """Median step time of each of two networks, measured in ABBA order."""
    pair = list(nets.items())
    times: dict[str, list[float]] = {key: [] for key in nets}
    for i in range(repeats + 2):
        # ABBA order: whichever runs second in a round measured a few % slower on CPU
        for key, net in pair if i % 2 == 0 else pair[::-1]:
            t = step_time(net, x, y)
            net.zero_grad(set_to_none=True)
            if i >= 2:  # the first two rounds warm up allocators and kernels
                times[key].append(t)
    return {key: statistics.median(t) for key, t in times.items()}


def inputs(batch: int, size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(batch, 3, size, size, device=device)
    return x, torch.randint(100, (batch,), device=device)


def measure(name: str, batch: int, size: int, repeats: int, device: str) -> dict:
    torch.manual_seed(0)
    supernet = create_supernet(name, 100, "thumbnail").to(device).train()
    arch = supernet.space.sample(torch.Generator().manual_seed(0))
    sub = child(supernet, arch).to(device).train()
    supernet.set_architecture(arch)
    t = interleaved({"supernet": supernet, "child": sub}, *inputs(batch, size, device), repeats)
    return row("supernet / child", name, device, batch, size, t["supernet"], t["child"])


def measure_graph(
    space: str, model: str, search_space, batch: int, size: int, repeats: int, device: str
) -> dict:
    """The space file's supernet vs. the built-in one, both set to the same architecture (the
    base network for a space whose choices the family does not have)."""
    torch.manual_seed(0)
    builtin = create_supernet(model, 100, "thumbnail", search_space).to(device).train()
    graph = create_supernet(
        "graph", 100, "thumbnail", None, **space_kwargs(SPACES / f"{space}.yml")
    )
    graph = graph.to(device).train()
    if graph.space.points == builtin.space.points:
        graph.load_state_dict(builtin.state_dict())  # the same weights, the same computation
        arch = builtin.space.sample(torch.Generator().manual_seed(0))
        builtin.set_architecture(arch)
        graph.set_architecture(arch)
    else:
        builtin.set_architecture(builtin.space.default())
        graph.set_architecture(graph.space.default())
    t = interleaved({"graph": graph, "builtin": builtin}, *inputs(batch, size, device), repeats)
    name = f"{space}.yml"
    return row("space file / built-in", name, device, batch, size, t["graph"], t["builtin"])


def row(compared: str, model: str, device: str, batch: int, size: int, a: float, b: float) -> dict:
    return {
        "compared": compared,
        "model": model,
        "device": device,
        "batch": batch,
        "image_size": size,
        "a_s": a,
        "b_s": b,
        "ratio": a / b,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--device", default=None, help="default: cpu, and cuda when available")
    parser.add_argument(
        "--only", choices=("child", "graph"), help="only the supernet/child or the space-file rows"
    )
    parser.add_argument("--image-size", type=int, default=32, help="input height and width")
    args = parser.parse_args(argv)
    devices = (
        [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    rows = []
    for d in devices:
        if args.only != "graph":
            rows += [measure(m, args.batch, args.image_size, args.repeats, d) for m in MODELS]
        if args.only != "child":
            rows += [
                measure_graph(*g, args.batch, args.image_size, args.repeats, d) for g in GRAPHS
            ]
    print(f"{'compared':<22} {'model':<22} {'device':<6} {'a s':>8} {'b s':>8} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['compared']:<22} {r['model']:<22} {r['device']:<6} {r['a_s']:>8.4f} "
            f"{r['b_s']:>8.4f} {r['ratio']:>6.3f}"
        )
    print(json.dumps({"benchmark": "supernet_overhead", "results": rows}))
    return rows


if __name__ == "__main__":
    main()
