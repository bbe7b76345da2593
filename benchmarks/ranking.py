"""Ranking diagnostics of supernet training options on the quick start's space and data.

    python benchmarks/ranking.py [--archs 16] [--seeds 0 1] [--epochs 10] [--retrain-epochs 15]
        [--variants ...] [--draws 8] [--jobs 2] [--cache ranking_cache.json] [--quick]

For each supernet training option (`--variants`, below) and supernet seed, the quick-start
search (configs/quickstart.yml) trains its supernet; `--archs` architectures spread over the OPs
range (base network and cheapest included) are then scored with its shared weights (BN
re-estimated for each, eval mode, whole validation split). The same architectures are trained
alone from scratch (strategy fixed, `--retrain-epochs`, seeds 0 and 1: the second gives the noise
ceiling) and scored on the test split. Printed: Kendall tau (with a bootstrap interval),
Spearman rho and top-k overlap of every variant against stand-alone seed 0, the OPs-only
predictor and the noise ceiling; then the reward noise (std of one architecture's reward over
`--draws` successive reward draws / std across architectures) per reward protocol. The last line
is JSON (`kendall_tau` of each variant). No training folder is written.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from jobs import CORES, ResultCache, executor

from lightnas.commands.rank import (
    compare,
    format_rows,
    ranking_architectures,
    reward_noise,
    shared_weight_accuracies,
    standalone_accuracy,
)
from lightnas.config import Config, parse_config
from lightnas.run.parts import build_engine, build_parts, build_supernet, scoring_options

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart.yml"
RETRAIN = ROOT / "configs" / "retrain_quickstart.yml"
# supernet training options: overrides of the quick start
VARIANTS = {
    "enas-original": ["--search.reward_bn", "batch", "--search.final_top_k", "0"],
    "enas": [],
    "random": ["--search.strategy", "random"],
    "enas-uniform": ["--search.sampling", "uniform"],
    "enas-sandwich": ["--search.sampling", "sandwich"],
    "enas-sandwich-distill": ["--search.sampling", "sandwich", "--search.inplace_distill", "true"],
    "evolution": ["--search.strategy", "evolution"],
    # the default sandwich (largest, smallest, sandwich_k uniform) with other uniform children
    "enas-sandwich2-distill": ["--search.sandwich_k", "2"],
    "enas-sandwich0-distill": ["--search.sandwich_k", "0"],
    # a whole sandwich every 2nd step, the uniform child alone (distilled) between
    "enas-sandwich-every2": ["--search.sandwich_every", "2"],
}
# reward protocols whose noise is measured on each trained supernet
PROTOCOLS = {
    "batch BN, 1 batch": ["--search.reward_bn=batch", "--search.reward_batches=1"],
    # every protocol names its reward batches: the search's default is the whole split
    "recal. 1 train batch, 1 batch": [
        "--search.reward_calibration_batches=1",
        "--search.reward_batches=1",
    ],
    "recal. 4 train batches, 1 batch": [
        "--search.reward_calibration_batches=4",
        "--search.reward_batches=1",
    ],
    "recal. 1 train batch, 2 batches": [
        "--search.reward_calibration_batches=1",
        "--search.reward_batches=2",
    ],
    "recal. 1 train batch, whole split": [
        "--search.reward_calibration_batches=1",
        "--search.reward_batches=null",
    ],
}
QUICK_DATA = [
    "--data.dataset",
    "mock",
    "--data.num_samples",
    "256",
    "--data.num_classes",
    "4",
    "--data.image_size",
    "8",
    "--data.batch_size",
    "16",  # several validation batches: a 1-batch reward differs from the whole split
    "--model.kwargs",
    "{block_config: [1, 1], growth_rate: 8, init_features: 16, reduction: [0.5]}",
]


def config(args, *overrides: str, retrain: bool = False) -> Config:
    argv = ["--config", str(QUICKSTART)]
    if retrain:
        argv += ["--config", str(RETRAIN)]
    argv += [*(QUICK_DATA if args.quick else []), "--epochs", str(args.epochs)]
    argv += ["--device", args.device, "--export.formats", "[]", "--progress", "false"]
    argv += ["--checkpoint.every_minutes", "1000", *overrides]
    return parse_config(argv)[0]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_variant(args, name: str, seed: int) -> dict:
    """Train one supernet; shared-weight accuracies of the ranking set and reward noise."""
    started = time.perf_counter()
    cfg = config(args, *VARIANTS[name], "--seed", str(seed))
    engine = build_engine(cfg, build_parts(cfg))
    engine.run()
    archs = ranking_architectures(engine, args.archs)
    result = {
        "archs": [a.indices() for a in archs],
        "ops": [engine.evaluator.costs.costs(a)["ops"] for a in archs],
        "shared": shared_weight_accuracies(engine, archs),
        "noise": {},
    }
    if name == args.noise_variant:
        for protocol, overrides in PROTOCOLS.items():
            probe = config(args, *VARIANTS[name], "--seed", str(seed), *overrides)
            engine.evaluator.options = scoring_options(probe)
            result["noise"][protocol] = reward_noise(engine, archs, args.draws)
    log(f"  {name} seed {seed}: trained and scored in {time.perf_counter() - started:.0f} s")
    return result


def ranking_set(args) -> list[list[int]]:
    """The architectures to rank (choice indices): they depend on costs, not on weights."""
    cfg = config(args, *VARIANTS[args.variants[0]])
    engine = build_engine(cfg, build_parts(cfg))
    return [a.indices() for a in ranking_architectures(engine, args.archs)]


def train_alone(args, indices: list[int], seed: int) -> float:
    cfg = config(args, retrain=True)
    with torch.device("meta"):
        space = build_supernet(cfg, 10).space  # the structure only, no weights
    return standalone_accuracy(cfg, space.from_indices(indices), args.retrain_epochs, seed)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    jobs = max(1, min(args.jobs, CORES))
    cache = ResultCache(args.cache)  # each result kept as it finishes
    archs = ranking_set(args)  # chosen by cost alone: the retrains start at once
    with executor(jobs) as pool:
        alone = {}
        for seed in args.truth_seeds:
            for indices in archs:
                key = cache_key(args, indices, seed)
                alone[key] = cache.submit(pool, key, train_alone, args, indices, seed)
        trained = {}
        for v in args.variants:
            for s in args.seeds:
                key = variant_key(args, v, s)
                trained[v, s] = cache.submit(pool, key, train_variant, args, v, s)
        trained = {k: f.result() for k, f in trained.items()}
        alone = {k: f.result() for k, f in alone.items()}
    first = trained[args.variants[0], args.seeds[0]]
    assert first["archs"] == archs, "every variant ranks the same architectures"
    report = summarise(args, first, alone, trained)
    report["seconds"] = time.perf_counter() - started
    print(json.dumps(report))
    return report


def variant_key(args, variant: str, seed: int) -> str:
    data = "mock" if args.quick else "digits"
    return f"variant:{data}:{variant}:{seed}:{args.epochs}:{args.archs}:{args.draws}"


def cache_key(args, indices: list[int], seed: int) -> str:
    data = "mock" if args.quick else "digits"
    return f"{data}:{args.retrain_epochs}:{seed}:{''.join(map(str, indices))}"


def summarise(args, first: dict, alone: dict, results: dict) -> dict:
    truth = {s: [alone[cache_key(args, a, s)] for a in first["archs"]] for s in args.truth_seeds}
    reference = truth[args.truth_seeds[0]]
    k = max(1, args.archs // 4)
    rows, taus = [], {}
    for variant in args.variants:
        per_seed = [
            compare(variant, results[variant, s]["shared"], reference, k) for s in args.seeds
        ]
        for seed, row in zip(args.seeds, per_seed, strict=True):
            row.name = f"{variant} (seed {seed})"
            rows.append(row)
        taus[variant] = statistics.fmean(r.kendall_tau for r in per_seed)
    rows.append(compare("OPs only (no training)", first["ops"], reference, k))
    if len(args.truth_seeds) > 1:
        rows.append(
            compare("stand-alone seed 1 (ceiling)", truth[args.truth_seeds[1]], reference, k)
        )
    n = len(first["archs"])
    print(f"{n} architectures; stand-alone: {args.retrain_epochs} epochs, test split")
    print(format_rows(rows, k))
    noise = results[args.noise_variant, args.seeds[0]]["noise"]
    where = f"the {args.noise_variant} supernet (seed {args.seeds[0]})"
    print(f"\nreward noise on {where}, {args.draws} draws:")
    print(f"{'protocol':<28} {'noise':>7} {'spread':>7} {'ratio':>6}")
    for protocol, n in noise.items():
        print(f"{protocol:<28} {n['noise']:>7.4f} {n['spread']:>7.4f} {n['ratio']:>6.2f}")
    return {
        "kendall_tau": taus,
        "ops_only_tau": rows[-2 if len(args.truth_seeds) > 1 else -1].kendall_tau,
        "ceiling_tau": rows[-1].kendall_tau if len(args.truth_seeds) > 1 else None,
        "reward_noise": {p: n["ratio"] for p, n in noise.items()},
        "rows": [r.__dict__ for r in rows],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=16)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="supernet seeds")
    p.add_argument("--truth-seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=10, help="supernet epochs")
    p.add_argument("--retrain-epochs", type=int, default=15)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--noise-variant", default="enas", choices=list(VARIANTS))
    p.add_argument("--draws", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--cache",
        default=None,
        help="JSON file keeping finished retrains and supernet results, to resume from",
    )
    p.add_argument("--quick", action="store_true", help="tiny mock data and budgets (CI)")
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.epochs, args.retrain_epochs, args.draws = 4, 1, 1, 2
        args.seeds, args.truth_seeds = args.seeds[:1], args.truth_seeds[:2]
        args.variants = [v for v in args.variants if v in ("enas", "enas-sandwich")] or ["enas"]
        args.noise_variant = args.variants[0]
    if args.noise_variant not in args.variants:
        args.noise_variant = args.variants[0]
    return args


if __name__ == "__main__":
    main()
