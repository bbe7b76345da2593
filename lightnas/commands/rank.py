"""`lightnas rank <training folder>`: how well the folder's supernet ranks architectures.

Scores `--archs` architectures spread over the cost range with the folder's final shared
weights, trains each alone from scratch (`--retrain-epochs`, one run per `--seeds`; a second seed
gives the noise ceiling), and prints Kendall tau, Spearman rho and top-k overlap with bootstrap
intervals, the OPs-only predictor beside them, and the reward's noise. Writes ranking.json in
the folder. Stand-alone training is the expensive part: about archs x seeds x one retrain.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from lightnas.config import ArgParser, Config, parse_config
from lightnas.engine.loop import Engine
from lightnas.layout import TrainingFolder
from lightnas.outputs.checkpoint import load_checkpoint
from lightnas.run.parts import build_engine, build_parts
from lightnas.runtime.fileio import write_json_atomic
from lightnas.scoring.costs import extreme_architectures
from lightnas.search.space import Architecture, SearchSpace

# The study: does the supernet rank architectures as training them alone would?
#
# For N architectures spread over the cost range (the base network and the cheapest included):
# their accuracy with the supernet's shared weights (the search's BatchNorm protocol: statistics
# re-estimated for each, eval mode, the whole validation split) against their test accuracy when
# each is trained alone from scratch (strategy `fixed`, a stated budget and seed). Reported:
# Kendall tau, Spearman rho and top-k overlap, each with a bootstrap interval over the
# architectures, the OPs-only predictor as the reference row, and the reward's noise: the spread
# of one architecture's reward over repeated draws of reward batches, as a fraction of the spread
# across architectures.


# ---- which architectures --------------------------------------------------------------------
def spread_architectures(
    space: SearchSpace,
    ops: Callable[[Architecture], float],
    n: int,
    seed: int = 0,
    include: Sequence[Architecture] = (),
    pool: int = 50,
) -> list[Architecture]:
    """`n` distinct architectures evenly spread over the OPs range of a uniform pool holding
    `include` and the base network; the cheapest and the base are among them (sorted by OPs)."""
    gen = torch.Generator().manual_seed(seed)
    candidates = {space.default(), *include} | {space.sample(gen) for _ in range(pool * n)}
    ranked = sorted(candidates, key=lambda a: (ops(a), a.indices()))
    if len(ranked) <= n:
        return ranked
    low, high = ops(ranked[0]), ops(ranked[-1])
    picks = [ranked[0], space.default()]
    for i in range(1, n - 1):  # the free places aim at evenly spaced OPs in between
        target = low + (high - low) * i / (n - 1)
        rest = [a for a in ranked if a not in picks]
        picks.append(min(rest, key=lambda a: (abs(ops(a) - target), a.indices())))
    return sorted(picks, key=lambda a: (ops(a), a.indices()))


def ranking_architectures(engine: Engine, n: int, seed: int = 0) -> list[Architecture]:
    space, table = engine.supernet.space, engine.evaluator.costs
    _, smallest = extreme_architectures(space, table)
    return spread_architectures(space, lambda a: table.costs(a)["ops"], n, seed, [smallest])


# ---- scores ---------------------------------------------------------------------------------
def shared_weight_accuracies(engine: Engine, archs: Sequence[Architecture]) -> list[float]:
    """Validation accuracy of each architecture on the engine's current shared weights."""
    epoch = max(engine.epoch - 1, 0)
    return [engine.evaluator.evaluate(a, engine.data.val, epoch)[1] for a in archs]


def standalone_accuracy(cfg: Config, arch: Architecture, epochs: int, seed: int) -> float:
    """Test accuracy of `arch` trained alone from scratch (strategy fixed, no folder written)."""
    cfg = copy.deepcopy(cfg)
    s = cfg.search
    # the search's sampling and in-place distillation may stay: strategy fixed trains its
    # architecture alone whatever they say (Strategy.training_rule)
    s.strategy, s.num_val_samples, s.bn_recalibration_batches, s.final_top_k = "fixed", 0, 0, 0
    cfg.epochs, cfg.seed, cfg.distill.teacher = epochs, seed, None
    engine = build_engine(cfg, build_parts(cfg, architecture=arch))
    engine.run()
    data = engine.data
    split = data.test if data.test is not None else data.val
    return engine.evaluator.evaluate(arch, split, engine.epoch - 1)[1]


def reward_noise(engine: Engine, archs: Sequence[Architecture], draws: int) -> dict:
    """Each architecture's reward over `draws` successive reward draws: the mean standard
    deviation across draws, the standard deviation of the mean rewards across architectures,
    and their ratio (below 0.25: one reward tells architectures apart)."""
    epoch = max(engine.epoch - 1, 0)
    engine.evaluator.restart_reward_batches()
    per_draw = [[s.reward for s in engine.evaluator.scores(archs, epoch)] for _ in range(draws)]
    rewards = np.array(per_draw)  # draws x archs
    noise = float(rewards.std(axis=0, ddof=1).mean()) if draws > 1 else 0.0
    spread = float(rewards.mean(axis=0).std(ddof=1))
    return {"noise": noise, "spread": spread, "ratio": noise / spread if spread else float("inf")}


# ---- correlations ---------------------------------------------------------------------------
def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    return float(stats.kendalltau(a, b).statistic)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    return float(stats.spearmanr(a, b).statistic)


def top_k_overlap(predicted: Sequence[float], truth: Sequence[float], k: int) -> float:
    """The fraction of the truly best k that the prediction also puts in its best k."""
    best = set(np.argsort(-np.asarray(truth), kind="stable")[:k])
    return len(best & set(np.argsort(-np.asarray(predicted), kind="stable")[:k])) / k


def bootstrap(
    fn: Callable, predicted: Sequence[float], truth: Sequence[float], n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of `fn(predicted, truth)` over architectures resampled."""
    rng = np.random.default_rng(seed)
    p, t = np.asarray(predicted), np.asarray(truth)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(p), len(p))
        if len(set(t[idx])) > 1 and len(set(p[idx])) > 1:
            values.append(fn(p[idx], t[idx]))
    return float(np.nanpercentile(values, 2.5)), float(np.nanpercentile(values, 97.5))


@dataclass
class Row:
    """How one predictor ranks the architectures against their stand-alone accuracies."""

    name: str
    kendall_tau: float
    tau_interval: tuple[float, float]
    spearman_rho: float
    top_k: float


def compare(name: str, predicted: Sequence[float], truth: Sequence[float], k: int) -> Row:
    return Row(
        name,
        kendall(predicted, truth),
        bootstrap(kendall, predicted, truth),
        spearman(predicted, truth),
        top_k_overlap(predicted, truth, k),
    )


def format_rows(rows: Sequence[Row], k: int) -> str:
    lines = [f"{'predictor':<28} {'tau':>6} {'95% interval':>15} {'rho':>6} {f'top-{k}':>6}"]
    for r in rows:
        lo, hi = r.tau_interval
        lines.append(
            f"{r.name:<28} {r.kendall_tau:>6.3f} {f'[{lo:.2f}, {hi:.2f}]':>15} "
            f"{r.spearman_rho:>6.3f} {r.top_k:>6.2f}"
        )
    return "\n".join(lines)


def as_json(rows: Sequence[Row]) -> list[dict]:
    return [json.loads(json.dumps(r.__dict__)) for r in rows]


# ---- the command ----------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = ArgParser(prog="lightnas rank", allow_abbrev=False, description=__doc__)
    p.add_argument("folder", help="a search's training folder")
    p.add_argument("--archs", type=int, default=16, help="architectures to rank (>= 3)")
    p.add_argument("--retrain-epochs", type=int, help="stand-alone budget (default: the search's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="stand-alone seeds")
    p.add_argument("--draws", type=int, default=8, help="reward draws for the noise")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    epochs_bad = args.retrain_epochs is not None and args.retrain_epochs < 1
    if args.archs < 3 or args.draws < 2 or epochs_bad:
        p.error("--archs must be >= 3, --draws >= 2 and --retrain-epochs >= 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    folder = TrainingFolder(args.folder).checked()
    cfg = parse_config(["--config", str(folder.config), "--device", args.device])[0]
    state = load_checkpoint(folder.checkpoints)
    engine = build_engine(cfg, build_parts(cfg), folder=folder)
    engine.load_state_dict(state)
    archs = ranking_architectures(engine, args.archs)
    shared = shared_weight_accuracies(engine, archs)
    ops = [engine.evaluator.costs.costs(a)["ops"] for a in archs]
    epochs = cfg.epochs if args.retrain_epochs is None else args.retrain_epochs
    alone = {s: [standalone_accuracy(cfg, a, epochs, s) for a in archs] for s in args.seeds}
    truth, k = alone[args.seeds[0]], max(1, len(archs) // 4)
    rows = [compare("shared weights", shared, truth, k), compare("OPs only", ops, truth, k)]
    if len(args.seeds) > 1:
        rows.append(compare(f"stand-alone seed {args.seeds[1]}", alone[args.seeds[1]], truth, k))
    noise = reward_noise(engine, archs, args.draws)
    print(f"{len(archs)} architectures of {folder.root}; stand-alone: {epochs} epochs")
    print(format_rows(rows, k))
    print(
        f"reward noise: {noise['noise']:.4f} / spread {noise['spread']:.4f} = {noise['ratio']:.2f}"
    )
    report = {
        "architectures": [dict(a) for a in archs],
        "ops": ops,
        "shared": shared,
        "standalone": {str(s): v for s, v in alone.items()},
        "rows": as_json(rows),
        "reward_noise": noise,
    }
    write_json_atomic(folder.ranking, report)
    print(json.dumps({"kendall_tau": rows[0].kendall_tau, "reward_noise": noise["ratio"]}))
    return 0
