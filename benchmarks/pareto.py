"""Does a two-objective sweep find a better accuracy / OPs front than random architectures?

    python benchmarks/pareto.py [--trials 8] [--search-epochs 6] [--retrain-epochs 6]
        [--seed 0] [--workers 2] [--sampler tpe]

Sweep: `lightnas.sweep` over the quick-start search (configs/quickstart.yml: digits, a small
MeliusNet space at 16x16) with two parameters, search.cost_weight in [-3, 0] and
search.target_cost in [0.6, 1.0] x the base network's OPs (log scale), and two objectives
(validation accuracy up, OPs down; multi-objective TPE), `--trials` trials in `--workers`
processes. Random: as many architectures drawn uniformly from the same space (seeded).
Each architecture of either arm (a trial's best_architecture.json, or a random draw) is then
retrained from scratch with the same budget (strategy fixed with the defaults of `lightnas
retrain`: that architecture alone every step; `--retrain-epochs`, the same seed) and scored on
the test split; the base network (first choice everywhere) too, for reference.

Front: the non-dominated (test accuracy, OPs / base OPs) points of an arm. Hypervolume: the
area those points dominate inside the reference point (accuracy 0, OPs / base 1.1), i.e. the
area of {(acc, r): acc <= a_i, r >= r_i for some front point i, r <= 1.1}; higher is better, at
most 1.1. The sweep's search cost is not charged: both arms get the same retraining budget.
Everything runs in a temporary folder; nothing is written here. About 17 minutes of CPU time on
2 cores (45 minutes wall on a shared, loaded machine: see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from jobs import CORES, executor

import lightnas
from lightnas.config import parse_config
from lightnas.run.parts import build_engine, build_parts, space_of
from lightnas.run.retrain import RETRAIN_DEFAULTS
from lightnas.search.space import Architecture, load_architecture_file

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yml"
REFERENCE = (0.0, 1.1)  # (test accuracy, OPs / base OPs): worse than the base network in both
OVERRIDES: dict[str, object] = {}  # config values on top of the quick start (tests shrink it)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quickstart(*overrides: str):
    argv = ["--config", str(QUICKSTART), "--export.formats", "[]", "--progress", "false"]
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in OVERRIDES.items()}
    argv += [a for k, v in values.items() for a in (f"--{k}", v)]
    return parse_config([*argv, "--device", "cpu", *overrides])[0]


def base_ops() -> float:
    cfg = quickstart()
    parts = build_parts(cfg)
    return build_engine(cfg, parts).evaluator.costs.costs(parts.supernet.space.default())["ops"]


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """The sweep's own output (its worker processes' too) to stderr: stdout is the table and
    the JSON line."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# ---- the two arms ---------------------------------------------------------------------------
def run_sweep(args, folder: Path, ops: float) -> list[Architecture]:
    """The sweep's trials' best architectures (one per complete trial)."""
    space = space_of(quickstart())
    sweep = {
        "name": "pareto",
        "base": str(QUICKSTART),
        "output_dir": str(folder),
        "overrides": {
            "epochs": args.search_epochs,
            "seed": args.seed,
            "export.formats": [],
            "export.graph_formats": [],
            "search.warmup_epochs": 1,
            "device": "cpu",
        }
        | OVERRIDES,
        "parameters": {
            "search.cost_weight": {"type": "float", "low": -3.0, "high": 0.0},
            "search.target_cost": {"type": "float", "low": 0.6 * ops, "high": ops, "log": True},
        },
        "objectives": {"val_acc": "maximize", "ops": "minimize"},
        "n_trials": args.trials,
        "sampler": {"name": args.sampler}
        | ({"n_startup_trials": max(2, args.trials // 2)} if args.sampler == "tpe" else {}),
        "seed": args.seed,
    }
    started = time.perf_counter()
    with stdout_to_stderr():
        study = lightnas.sweep(sweep, workers=args.workers)
    log(f"sweep: {len(study.trials)} trials in {time.perf_counter() - started:.0f} s")
    trials = folder / "pareto"
    return [
        load_architecture_file(trials / t.user_attrs["folder"] / "best_architecture.json", space)
        for t in study.trials
        if t.values is not None
    ]


def random_architectures(args) -> list[Architecture]:
    space = space_of(quickstart())
    generator = torch.Generator().manual_seed(args.seed)
    return [space.sample(generator) for _ in range(args.trials)]


def retrain(args, arch: Architecture, ops: float) -> dict:
    """Train one architecture from scratch (strategy fixed, the retrain defaults of `lightnas
    retrain`) and score it on the test split."""
    started = time.perf_counter()
    cfg = quickstart(
        *RETRAIN_DEFAULTS,
        "--epochs",
        str(args.retrain_epochs),
        "--seed",
        str(args.seed),
        "--search.strategy",
        "fixed",
        "--search.warmup_epochs",
        "0",
    )
    engine = build_engine(cfg, build_parts(cfg, architecture=arch))
    engine.run()
    _, acc = engine.evaluator.evaluate(arch, engine.data.test, engine.epoch)
    cost = engine.evaluator.costs.costs(arch)["ops"]
    return {
        "arch": key(arch),
        "test_acc": acc,
        "mops": cost / 1e6,
        "rel_ops": cost / ops,
        "retrain_s": time.perf_counter() - started,
    }


def retrain_all(args, archs: dict[str, Architecture], ops: float) -> dict:
    """Retrain each distinct architecture once, `--workers` at a time; by its index string."""
    with executor(args.workers) as pool:
        futures = {k: pool.submit(retrain, args, a, ops) for k, a in archs.items()}
        return {k: f.result() for k, f in futures.items()}


# ---- fronts ---------------------------------------------------------------------------------
def front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated (accuracy up, cost down) points, by cost."""
    best: list[tuple[float, float]] = []
    for acc, cost in sorted(set(points), key=lambda p: (p[1], -p[0])):
        if not best or acc > best[-1][0]:
            best.append((acc, cost))
    return best


def hypervolume(points: list[tuple[float, float]], reference=REFERENCE) -> float:
    """Area dominated by `points` (accuracy up, cost down) inside `reference`."""
    ref_acc, ref_cost = reference
    inside = front([(a, c) for a, c in points if a > ref_acc and c < ref_cost])
    area = 0.0
    for i, (acc, cost) in enumerate(inside):
        right = inside[i + 1][1] if i + 1 < len(inside) else ref_cost
        area += (right - cost) * (acc - ref_acc)
    return area


def arm_summary(name: str, rows: list[dict]) -> dict:
    points = [(r["test_acc"], r["rel_ops"]) for r in rows]
    best = front(points)
    return {
        "arm": name,
        "architectures": len(rows),
        "distinct": len({r["arch"] for r in rows}),
        "front": len(best),
        "hypervolume": hypervolume(points),
        "best_acc": max(a for a, _ in points),
        "min_rel_ops": min(c for _, c in points),
    }


def print_table(rows: list[dict], summaries: list[dict], base: dict) -> None:
    print(f"{'arm':<6} {'#':>2} {'arch':<12} {'test acc':>8} {'MOPs':>6} {'OPs/base':>8}")
    for r in rows:
        print(
            f"{r['arm']:<6} {r['index']:>2} {r['arch']:<12} {r['test_acc']:>8.4f} "
            f"{r['mops']:>6.3f} {r['rel_ops']:>8.3f}"
        )
    print(
        f"{'base':<6} {'':>2} {base['arch']:<12} {base['test_acc']:>8.4f} {base['mops']:>6.3f} "
        f"{base['rel_ops']:>8.3f}"
    )
    print(f"{'arm':<6} {'archs':>5} {'distinct':>8} {'front':>5} {'HV':>7} {'best acc':>8}")
    for s in summaries:
        print(
            f"{s['arm']:<6} {s['architectures']:>5} {s['distinct']:>8} {s['front']:>5} "
            f"{s['hypervolume']:>7.4f} {s['best_acc']:>8.4f}"
        )
    print(f"HV: area dominated in (test acc, OPs/base), reference point {REFERENCE}")


def key(arch: Architecture) -> str:
    """An architecture as its choice indices, e.g. 010011 (0 = the base network's choice)."""
    return "".join(map(str, arch.indices()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="sweep trials = random archs")
    parser.add_argument("--search-epochs", type=int, default=6)
    parser.add_argument("--retrain-epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(2, CORES))
    parser.add_argument("--sampler", default="tpe", choices=["tpe", "nsga2", "random"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    ops = base_ops()
    with tempfile.TemporaryDirectory(prefix="lightnas_pareto_") as tmp:
        found = run_sweep(args, Path(tmp), ops)
        drawn = random_architectures(args)
        base = space_of(quickstart()).default()
        archs = {key(a): a for a in [*found, *drawn, base]}
        log(f"retraining {len(archs)} distinct architectures")
        scores = retrain_all(args, archs, ops)
    rows = [
        {"arm": arm, "index": i} | scores[key(a)]
        for arm, group in (("sweep", found), ("random", drawn))
        for i, a in enumerate(group)
    ]
    summaries = [
        arm_summary(arm, [r for r in rows if r["arm"] == arm]) for arm in ("sweep", "random")
    ]
    print_table(rows, summaries, scores[key(base)])
    result = {
        "benchmark": "pareto",
        "config": vars(args) | {"reference": REFERENCE, "base_ops": ops},
        "results": rows,
        "base": scores[key(base)],
        "summary": summaries,
        "wall_s": time.perf_counter() - started,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
