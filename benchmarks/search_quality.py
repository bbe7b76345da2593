"""Does the search find better networks than random search and the base network?

    python benchmarks/search_quality.py [--datasets digits mock] [--seeds 0 1 2]
        [--search-epochs 6] [--retrain-epochs 6] [--cost-weight -0.3] [--device cpu] [--jobs 2]

For every dataset and seed, the quick-start search (configs/quickstart.yml: a small MeliusNet
supernet at 16x16) runs with strategy `enas` and with `random` (uniform sampling, same weight
sharing, same budget); the best architecture of each (best_architecture.json in a real run) and
the base network (first choice everywhere) are then retrained from scratch with strategy `fixed`,
the same epochs and seed, and evaluated on the test split (BatchNorm recalibrated, eval mode, as
the engine validates). Printed per seed and as means: test accuracy, MOPs (FLOPs + BOPs/64),
accuracy per MOPs and the search's own objective, reward = acc * (OPs / base OPs) ** cost_weight.
No training folder is written: engines run without callbacks; architecture JSONs go to a temp dir.
(dataset, seed) units run in `--jobs` processes of cores // jobs torch threads each: such small
networks parallelise poorly over threads, and one thread per process suffers far less when other
work shares the cores (measured here under load: 0.2 s vs 0.76 s per forward with 2 threads).
Results depend on the seed (and, in the last bits, on the thread count).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from lightnas.config import Config, parse_config
from lightnas.engine import Engine
from lightnas.runs import build_engine, build_parts
from lightnas.search.space import Architecture

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yml"
DATASETS = {
    "digits": [],  # the quick start's own data: scikit-learn digits, 16x16
    "mock": ["--data.dataset", "mock", "--data.num_samples", "1024", "--data.num_classes", "10"],
}
METHODS = ("enas", "random", "base")
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_config(args, dataset: str, seed: int, epochs: int, *overrides: str) -> Config:
    argv = [
        "--config",
        str(QUICKSTART),
        *DATASETS[dataset],
        "--epochs",
        str(epochs),
        "--seed",
        str(seed),
        "--device",
        args.device,
        "--search.cost_weight",
        str(args.cost_weight),
        "--export.formats",
        "[]",
        "--progress",
        "false",
        "--name",
        "search_quality",
        *overrides,
    ]
    return parse_config(argv)[0]


def run_engine(cfg: Config) -> Engine:
    parts = build_parts(cfg)
    engine = build_engine(cfg, parts)
    engine.run()
    return engine


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def search(args, dataset: str, seed: int, strategy: str) -> tuple[Architecture, float, float]:
    """(best architecture, its validation accuracy with shared weights, seconds)."""
    started = time.perf_counter()
    cfg = make_config(args, dataset, seed, args.search_epochs, "--search.strategy", strategy)
    engine = run_engine(cfg)
    arch = Architecture(engine.supernet.space, engine.best.architecture)
    seconds = time.perf_counter() - started
    log(f"  {dataset} seed {seed}: {strategy} search {seconds:.0f} s")
    return arch, engine.best.val_acc, seconds


def retrain(args, dataset: str, seed: int, arch: Architecture, folder: Path) -> dict:
    """Train `arch` from scratch (strategy fixed) and evaluate it on the test split."""
    started = time.perf_counter()
    path = folder / f"{dataset}_{seed}_{''.join(map(str, arch.indices()))}.json"
    path.write_text(arch.to_json())
    cfg = make_config(
        args,
        dataset,
        seed,
        args.retrain_epochs,
        "--search.strategy",
        "fixed",
        "--search.architecture",
        str(path),
        "--search.warmup_epochs",
        "0",
        "--search.num_val_samples",
        "0",
    )
    engine = run_engine(cfg)
    data = engine.data
    split = "test" if data.test is not None else "val"
    loader = data.test if data.test is not None else data.val
    _, acc = engine.evaluator.evaluate(arch, loader, engine.epoch)
    costs = engine.evaluator.costs.costs(arch)
    mops = costs["ops"] / 1e6
    seconds = time.perf_counter() - started
    log(f"  {dataset} seed {seed}: retrain {path.stem} {seconds:.0f} s")
    return {
        "arch": "".join(map(str, arch.indices())),
        "val_acc": engine.history[-1].val_acc,
        "test_acc": acc,
        "split": split,
        "mops": mops,
        "acc_per_mops": acc / mops,
        "reward": engine.evaluator.reward(arch, acc),
        "params": costs["params"],
        "model_bits": costs["model_bits"],
        "retrain_s": seconds,
    }


def run_unit(args, dataset: str, seed: int, folder: str) -> list[dict]:
    """Both searches and the three retrains of one dataset and seed: three rows."""
    found = {m: search(args, dataset, seed, m) for m in METHODS[:2]}
    space = found["enas"][0].space
    found["base"] = (space.default(), None, 0.0)
    cache: dict[Architecture, dict] = {}  # equal architectures retrain identically
    rows = []
    for method in METHODS:
        arch, search_val, search_s = found[method]
        if arch not in cache:
            cache[arch] = retrain(args, dataset, seed, arch, Path(folder))
        rows.append(
            {
                "dataset": dataset,
                "seed": seed,
                "method": method,
                "search_val_acc": search_val,
                "search_s": search_s,
                **cache[arch],
            }
        )
    return rows


def run(args) -> list[dict]:
    units = [(d, s) for d in args.datasets for s in args.seeds]
    with tempfile.TemporaryDirectory(prefix="lightnas_quality_") as tmp:
        if args.jobs <= 1:
            threads = torch.get_num_threads()
            torch.set_num_threads(args.threads or threads)
            try:
                return [row for d, s in units for row in run_unit(args, d, s, tmp)]
            finally:
                torch.set_num_threads(threads)
        spawn = multiprocessing.get_context("spawn")
        jobs = min(args.jobs, len(units))
        init = (torch.set_num_threads, (args.threads,)) if args.threads else (None, ())
        with ProcessPoolExecutor(jobs, spawn, initializer=init[0], initargs=init[1]) as pool:
            futures = [pool.submit(run_unit, args, d, s, tmp) for d, s in units]
            return [row for f in futures for row in f.result()]


def summarise(rows: list[dict], datasets: list[str]) -> list[dict]:
    means = []
    for dataset in datasets:
        mine = [r for r in rows if r["dataset"] == dataset]
        for method in METHODS:
            picked = [r for r in mine if r["method"] == method]
            entry = {"dataset": dataset, "method": method, "seeds": len(picked)}
            for key in ("test_acc", "mops", "acc_per_mops", "reward"):
                entry[key] = statistics.fmean(r[key] for r in picked)
            if method == "enas":
                for other in ("random", "base"):
                    rivals = {r["seed"]: r["reward"] for r in mine if r["method"] == other}
                    entry[f"beats_{other}"] = sum(r["reward"] > rivals[r["seed"]] for r in picked)
            means.append(entry)
    return means


def print_table(rows: list[dict], means: list[dict]) -> None:
    print(
        f"{'dataset':<7} {'seed':>4} {'method':<6} {'arch':<12} {'test acc':>8} {'MOPs':>6} "
        f"{'acc/MOPs':>8} {'reward':>6}"
    )
    line = "{:<7} {:>4} {:<6} {:<12} {:>8.4f} {:>6.3f} {:>8.3f} {:>6.4f}"
    for r in rows:
        print(
            line.format(
                r["dataset"], r["seed"], r["method"], r["arch"], r["test_acc"], r["mops"],
                r["acc_per_mops"], r["reward"],
            )
        )  # fmt: skip
    for m in means:
        print(
            line.format(
                m["dataset"], "mean", m["method"], "", m["test_acc"], m["mops"],
                m["acc_per_mops"], m["reward"],
            )
        )  # fmt: skip
    for m in means:
        if m["method"] == "enas":
            print(
                f"{m['dataset']}: enas beats random on reward in {m['beats_random']}/{m['seeds']} "
                f"seeds, the base network in {m['beats_base']}/{m['seeds']}"
            )
    print("arch: choice index per decision point (0 = the base network's choice)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--search-epochs", type=int, default=6)
    parser.add_argument("--retrain-epochs", type=int, default=6)
    parser.add_argument(
        "--cost-weight", type=float, default=-0.3, help="w <= 0 of the reward (OPs)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, CORES),
        help="(dataset, seed) units run in parallel processes (default: min(2, cores))",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per job (default: cores // jobs when jobs > 1, else torch's)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads is None and args.jobs > 1:
        args.threads = max(1, CORES // args.jobs)
    started = time.perf_counter()
    rows = run(args)
    means = summarise(rows, args.datasets)
    print_table(rows, means)
    result = {
        "benchmark": "search_quality",
        "config": {
            "datasets": args.datasets,
            "seeds": args.seeds,
            "search_epochs": args.search_epochs,
            "retrain_epochs": args.retrain_epochs,
            "cost_weight": args.cost_weight,
            "device": args.device,
            "jobs": args.jobs,
            "threads": args.threads or torch.get_num_threads(),
        },
        "results": rows,
        "means": means,
        "wall_s": time.perf_counter() - started,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
