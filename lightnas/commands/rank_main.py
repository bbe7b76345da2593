"""`lightnas rank <training folder>`: how well the folder's supernet ranks architectures.

Scores `--archs` architectures spread over the cost range with the folder's final shared
weights, trains each alone from scratch (`--retrain-epochs`, one run per `--seeds`; a second seed
gives the noise ceiling), and prints Kendall tau, Spearman rho and top-k overlap with bootstrap
intervals, the OPs-only predictor beside them, and the reward's noise. Writes ranking.json in
the folder. Stand-alone training is the expensive part: about archs x seeds x one retrain.
"""

from __future__ import annotations

import argparse
import json

from lightnas.checkpoint import load_checkpoint
from lightnas.config import ArgParser, parse_config
from lightnas.errors import CheckpointError
from lightnas.fileio import write_json_atomic
from lightnas.layout import TrainingFolder
from lightnas.ranking import (
    as_json,
    compare,
    format_rows,
    ranking_architectures,
    reward_noise,
    shared_weight_accuracies,
    standalone_accuracy,
)
from lightnas.runs import build_engine, build_parts


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
    folder = TrainingFolder(args.folder)
    if not folder.is_training():
        raise CheckpointError(f"{folder.root} is not a training folder (no config.yml in it)")
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
