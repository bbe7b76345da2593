"""Does the search find better networks than random search and the base network? A fair protocol.

    python benchmarks/search_quality.py [--strategies enas random evolution] [--seeds 0 1 2 3 4]
        [--retrain-seeds 0 1 2] [--epochs 10] [--retrain-epochs 15] [--jobs 2] [--quick]
        [--config configs/quickstart.yml] [--retrain-config configs/retrain_quickstart.yml]
        [--set key=value ...] [--cache results.json]

For every search seed, each strategy searches the quick start's space (configs/quickstart.yml,
digits) with the same supernet epochs and the same number of architecture evaluations per epoch
(a strategy without controller steps ranks that many more candidates at validation), and the
final selection protocol picks its architecture (best_architecture.json in a real run). Every
found architecture and the base network are then trained alone from scratch (strategy fixed,
the retrain config, `--retrain-epochs`) with each retrain seed and scored on the test split.
Printed: per search seed and strategy, the architecture (choice index per decision point),
its test accuracy (mean over retrain seeds), OPs and reward = acc x (OPs / base OPs) ** w; then
mean +- standard error over search seeds, and the paired comparison of each strategy with
random and with the base network (mean difference +- SE, wins). The last line is JSON. No
training folder is written. With `--cache FILE`, every finished search and retrain is kept there
(written atomically) and reused by a later run with the same settings: a killed run goes on.
On CIFAR with a GPU:

    python benchmarks/search_quality.py --config configs/default_config_melius22_cifar100.yml \\
        --retrain-config configs/retrain_quickstart.yml --set data.data_dir=~/data \\
        --epochs 100 --retrain-epochs 200 --device cuda --jobs 1
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from jobs import CORES, ResultCache, executor

from lightnas.commands.rank import standalone_accuracy
from lightnas.config import Config, parse_config
from lightnas.run.parts import build_engine, build_parts, build_supernet
from lightnas.search.space import Architecture

ROOT = Path(__file__).resolve().parents[1]
QUICK = [
    "--data.dataset=mock",
    "--data.num_samples=192",
    "--data.num_classes=4",
    "--data.image_size=8",
    "--model.kwargs={block_config: [1, 1], growth_rate: 8, init_features: 16, reduction: [0.5]}",
    "--search.warmup_epochs=0",
    "--search.controller_steps=2",
    "--search.num_val_samples=2",
    "--search.final_top_k=2",
]


def config(args, retrain: bool, *overrides: str) -> Config:
    argv = ["--config", args.config] + (["--config", args.retrain_config] if retrain else [])
    argv += [*(QUICK if args.quick else []), f"--device={args.device}", "--export.formats=[]"]
    argv += ["--progress=false", "--checkpoint.every_minutes=1000"]
    argv += [f"--{kv}" for kv in args.set] + list(overrides)
    return parse_config(argv)[0]


def evaluations_per_epoch(cfg: Config) -> int:
    """Architecture evaluations (rewards) of one epoch of a strategy with controller steps
    (one controller phase per epoch)."""
    s = cfg.search
    return s.controller_steps * s.controller_batch + s.num_val_samples


def search(args, strategy: str, seed: int) -> dict:
    """One search; the final selection's architecture with its shared-weight scores."""
    started = time.perf_counter()
    cfg = config(args, False, f"--search.strategy={strategy}", f"--seed={seed}")
    if strategy == "random":  # no controller steps: rank as many candidates at validation
        cfg.search.num_val_samples = evaluations_per_epoch(cfg)
    engine = build_engine(cfg, build_parts(cfg))
    engine.run()
    best = engine.best
    log(f"  {strategy} seed {seed}: search {time.perf_counter() - started:.0f} s")
    return {"choices": best.architecture, "val_acc": best.val_acc, "test_acc_shared": best.test_acc}


def retrain(args, choices: dict, seed: int) -> float:
    cfg = config(args, True)
    with torch.device("meta"):
        space = build_supernet(cfg, 10).space
    return standalone_accuracy(cfg, Architecture(space, choices), args.retrain_epochs, seed)


def costs_of(args, choices_list: list[dict]) -> tuple[list[dict], dict]:
    """OPs and reward inputs of each architecture, and the base network's choices."""
    cfg = config(args, False)
    engine = build_engine(cfg, build_parts(cfg))
    space, ev = engine.supernet.space, engine.evaluator
    out = [{"ops": ev.costs.costs(Architecture(space, c))["ops"]} for c in choices_list]
    base = dict(space.default())
    return out, {"choices": base, "ops": ev.costs.costs(space.default())["ops"], "space": space}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_key(args, kind: str, *parts) -> str:
    """A search's or retrain's key: every setting its result depends on, then its own."""
    names = ("config", "retrain_config", "set", "retrain_epochs", "quick", "device")
    return json.dumps([*(getattr(args, n) for n in names), kind, *parts], sort_keys=True)


def run(args) -> tuple[list[dict], dict]:
    cache = ResultCache(args.cache)
    with executor(max(1, min(args.jobs, CORES))) as pool:
        found = {
            (st, s): cache.submit(pool, cache_key(args, "search", st, s), search, args, st, s)
            for st in args.strategies
            for s in args.seeds
        }
        found = {k: f.result() for k, f in found.items()}
        rows = [{"strategy": st, "seed": s, **found[st, s]} for st, s in found]
        costs, base = costs_of(args, [r["choices"] for r in rows])
        base_row = {"strategy": "base", "seed": None, "choices": base["choices"]}
        rows.append(base_row)
        costs.append({"ops": base["ops"]})
        archs = {json.dumps(r["choices"], sort_keys=True): r["choices"] for r in rows}
        jobs = {}
        for a, choices in archs.items():
            for rs in args.retrain_seeds:
                key = cache_key(args, "retrain", choices, rs)
                jobs[a, rs] = cache.submit(pool, key, retrain, args, choices, rs)
        accs = {k: f.result() for k, f in jobs.items()}
    w = args.cost_weight
    for row, cost in zip(rows, costs, strict=True):
        key = json.dumps(row["choices"], sort_keys=True)
        row["test_accs"] = [accs[key, rs] for rs in args.retrain_seeds]
        row["test_acc"] = statistics.fmean(row["test_accs"])
        row["ops"] = cost["ops"]
        row["reward"] = row["test_acc"] * (cost["ops"] / base["ops"]) ** w
        row["arch"] = "".join(
            str(base["space"][n].choices.index(c)) for n, c in row["choices"].items()
        )
    return rows, base


def mean_se(values: list[float]) -> tuple[float, float]:
    m = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return m, se


def summarise(args, rows: list[dict]) -> dict:
    by = {(r["strategy"], r["seed"]): r for r in rows}
    base = by["base", None]
    summary: dict = {"strategies": {}, "paired": {}}
    for st in args.strategies:
        mine = [by[st, s] for s in args.seeds]
        summary["strategies"][st] = {
            k: mean_se([r[k] for r in mine]) for k in ("test_acc", "ops", "reward")
        }
        rivals = [("random", lambda s: by["random", s])] if st != "random" else []
        rivals.append(("base", lambda s: base))
        for name, rival in rivals:
            if name == "random" and "random" not in args.strategies:
                continue
            for k in ("test_acc", "reward"):
                diffs = [by[st, s][k] - rival(s)[k] for s in args.seeds]
                m, se = mean_se(diffs)
                wins = sum(d > 0 for d in diffs)
                summary["paired"][f"{st} - {name} ({k})"] = {"mean": m, "se": se, "wins": wins}
    summary["base"] = {k: base[k] for k in ("test_acc", "ops", "reward")}
    return summary


def print_table(args, rows: list[dict], summary: dict) -> None:
    print(f"{'strategy':<10} {'seed':>4}  {'arch':<14} {'test acc':>8} {'kOPs':>7} {'reward':>7}")
    for r in rows:
        seed = "-" if r["seed"] is None else r["seed"]
        print(
            f"{r['strategy']:<10} {seed:>4}  {r['arch']:<14} {r['test_acc']:>8.4f} "
            f"{r['ops'] / 1e3:>7.1f} {r['reward']:>7.4f}"
        )
    print(f"\nmean +- SE over {len(args.seeds)} search seeds ({len(args.retrain_seeds)} retrains)")
    for st, m in summary["strategies"].items():
        acc, ops, rew = m["test_acc"], m["ops"], m["reward"]
        print(
            f"{st:<10} acc {acc[0]:.4f}+-{acc[1]:.4f}  kOPs {ops[0] / 1e3:.1f}+-{ops[1] / 1e3:.1f}"
            f"  reward {rew[0]:.4f}+-{rew[1]:.4f}"
        )
    b = summary["base"]
    print(
        f"{'base':<10} acc {b['test_acc']:.4f}  kOPs {b['ops'] / 1e3:.1f}  reward {b['reward']:.4f}"
    )
    print("\npaired differences (mean +- SE, wins):")
    for name, d in summary["paired"].items():
        print(f"  {name:<28} {d['mean']:+.4f} +- {d['se']:.4f}  {d['wins']}/{len(args.seeds)}")
    print("arch: choice index per decision point (0 = the base network's choice)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strategies", nargs="+", default=["enas", "random", "evolution"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--retrain-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="search epochs (default: config's)")
    p.add_argument("--retrain-epochs", type=int, default=15)
    p.add_argument("--config", default=str(ROOT / "configs" / "quickstart.yml"))
    p.add_argument("--retrain-config", default=str(ROOT / "configs" / "retrain_quickstart.yml"))
    p.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny mock data and budgets (CI)")
    p.add_argument("--cache", default=None, help="JSON file of finished results, to resume from")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.retrain_seeds, args.retrain_epochs = args.seeds[:2], [0], 1
        args.epochs = 1
    if args.epochs is not None:
        args.set = [*args.set, f"epochs={args.epochs}"]
    args.cost_weight = config(args, False).search.cost_weight
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    rows, _ = run(args)
    summary = summarise(args, rows)
    print_table(args, rows, summary)
    result = {
        "benchmark": "search_quality",
        "config": {k: v for k, v in vars(args).items() if k != "set"} | {"set": args.set},
        "results": [{k: v for k, v in r.items() if k != "choices"} for r in rows],
        "summary": summary,
        "wall_s": time.perf_counter() - started,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
