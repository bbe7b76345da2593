"""Images/s of the search's shared-weight phase on 1 and N processes with the same per-process
batch, the scaling efficiency, and what DDP's changing parameter set costs.

    python benchmarks/distributed_scaling.py [--procs 1 2] [--batch 32] [--steps 20]
        [--warmup 3] [--model quickstart|meliusnet22|resnet18] [--device cpu|cuda]

Each process runs one thread (torch.set_num_threads(1)); on the CPU the processes talk through
gloo, with --device cuda through NCCL, one GPU each (LOCAL_RANK). Per process count, three modes,
timed over the same number of steps after the warm-up ones, synthetic batches already in memory:
- search: `Engine.shared_step` as the search runs it: rank 0's ENAS controller samples the step's
  architecture and broadcasts it, DDP averages the gradients with find_unused_parameters (the
  parameter set changes every step), the step's loss and counts are summed over the ranks;
- fixed: one architecture every step, DDP with static_graph: what a retrain runs;
- fixed+unused: the same architecture under find_unused_parameters: DDP's search setting with
  nothing changing, which separates looking for unused parameters from changing them.
One process runs no DDP (LightNAS does not wrap a single process).

img/s = processes x batch / step time (of the slowest rank); efficiency = img/s on N processes /
(N x img/s on one); ddp x = step time on N processes / step time on one for the same mode (1.0
would be free communication). The search's cost of the changing parameter set is its ddp x
against the fixed mode's. cpu s is the CPU time a process spends per step (the most of any
rank) and cpu x its ratio to one process's: DDP's own work (hooks, copies into buckets, gloo),
robust to other programs taking the cores, which inflate the wall-clock figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

from lightnas.config import Config, ExportConfig, ModelConfig, SearchConfig
from lightnas.data import DataOptions
from lightnas.run.parts import build_engine, build_parts, space_of
from lightnas.runtime import distributed
from lightnas.runtime.distributed import Dist
from lightnas.search import Architecture

NUM_CLASSES = 100
# the quick start's supernet (configs/quickstart.yml) at 32x32, or a published one
MODELS = {
    "quickstart": ModelConfig(
        "meliusnet_flex",
        "thumbnail",
        {"block_config": [2, 2, 2], "growth_rate": 16, "init_features": 32, "reduction": [0.5] * 2},
    ),
    "meliusnet22": ModelConfig("meliusnet22", "thumbnail"),
    "resnet18": ModelConfig("resnet18", "thumbnail"),
}
MODES = ("search", "fixed", "fixed+unused")


def make_config(args: argparse.Namespace, fixed: bool = False) -> Config:
    search = SearchConfig(strategy="enas")
    if fixed:  # the fixed mode trains one architecture, as a retrain does
        search = SearchConfig(strategy="fixed", num_val_samples=0)
    return Config(
        model=MODELS[args.model],
        data=DataOptions(
            dataset="mock",
            image_size=32,
            num_classes=NUM_CLASSES,
            num_samples=4 * args.batch,
            val_size=args.batch,
            batch_size=args.batch,
            augment=False,
        ),
        search=search,
        export=ExportConfig(formats=[], graph_formats=[]),
        device=args.device,
        progress=False,
    )


def time_mode(
    args: argparse.Namespace, dist: Dist, mode: str, arch: Architecture
) -> tuple[float, float]:
    """Wall-clock and CPU seconds per step of `mode` (the most of any rank)."""
    cfg = make_config(args, fixed=mode == "fixed")
    given = arch if mode == "fixed" else None
    engine = build_engine(cfg, build_parts(cfg, dist, given), dist=dist)
    gen = torch.Generator().manual_seed(dist.rank)  # every rank its own samples
    x = torch.randn(args.batch, 3, 32, 32, generator=gen).to(engine.placement.device)
    y = torch.randint(NUM_CLASSES, (args.batch,), generator=gen).to(engine.placement.device)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def step() -> None:
        if mode == "search":
            engine.shared_step(0, x, y)
        else:
            loss, correct = engine.train_step([arch], x, y)
            dist.step_totals(loss, correct, len(y))

    for _ in range(args.warmup):
        step()
    sync()
    dist.any(False)  # everybody starts together
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    sync()
    mine = (time.perf_counter() - started, time.process_time() - cpu)
    wall, cpu = (max(t) / args.steps for t in zip(*dist.all_gather_object(mine), strict=True))
    return wall, cpu


def worker(
    rank: int, world: int, port: int, args: argparse.Namespace, out: Path, arch: Architecture
) -> None:
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world))
        os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank))
    with distributed.session() as dist:
        times = {mode: time_mode(args, dist, mode, arch) for mode in MODES}
    if rank == 0:
        (out / f"procs{world}.json").write_text(json.dumps(times))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drawn_architecture(args: argparse.Namespace) -> Architecture:
    """A uniformly drawn architecture for the fixed modes (one like those the search trains)."""
    return space_of(make_config(args)).sample(torch.Generator().manual_seed(args.seed))


def rows_of(args: argparse.Namespace, times: dict[int, dict[str, float]]) -> list[dict]:
    rows = []
    for procs, by_mode in times.items():
        for mode in MODES:
            step_s, cpu_s = by_mode[mode]
            img_s = procs * args.batch / step_s
            single = times.get(1, {}).get(mode)
            row = {"mode": mode, "procs": procs, "batch_per_proc": args.batch}
            row |= {"step_s": step_s, "cpu_s": cpu_s, "img_s": img_s}
            row["efficiency"] = None if single is None else single[0] / step_s
            row["ddp_x"] = None if single is None else step_s / single[0]
            row["cpu_x"] = None if single is None else cpu_s / single[1]
            rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    head = ("step s", "cpu s", "img/s", "eff", "ddp x", "cpu x")
    print(f"{'mode':<13} {'procs':>5} {'batch':>5} " + " ".join(f"{h:>6}" for h in head))
    for r in rows:
        ratios = [r[k] for k in ("efficiency", "ddp_x", "cpu_x")]
        cells = [f"{r['step_s']:.3f}", f"{r['cpu_s']:.3f}", f"{r['img_s']:.1f}"]
        cells += ["-" if v is None else f"{v:.2f}" for v in ratios]
        print(
            f"{r['mode']:<13} {r['procs']:>5} {r['batch_per_proc']:>5} "
            + " ".join(f"{c:>6}" for c in cells)
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=32, help="per process")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--model", choices=sorted(MODELS), default="quickstart")
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        arch = drawn_architecture(args)
        for procs in args.procs:
            mp.spawn(worker, args=(procs, free_port(), args, out, arch), nprocs=procs, join=True)
        times = {p: json.loads((out / f"procs{p}.json").read_text()) for p in args.procs}
    rows = rows_of(args, times)
    print_table(rows)
    print(
        f"model {args.model}, {args.device}, 1 thread per process, torch {torch.__version__}; "
        "eff = img/s / (procs x img/s of one); ddp x, cpu x = step time, CPU time per step / "
        "one process's"
    )
    result = {
        "benchmark": "distributed_scaling",
        "model": args.model,
        "device": args.device,
        "torch": torch.__version__,
        "results": rows,
        "wall_s": time.perf_counter() - started,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
