"""A search epoch of LightNAS against NNI 3.0's ENAS, on the same space and the same data.

    PYTHONPATH=. /work/venv-nni/bin/python benchmarks/nni_compare.py --side nni [--steps N]
    python benchmarks/nni_compare.py --side lightnas [--matched] [--steps N]
    python benchmarks/nni_compare.py --pairs 12 [--settings default matched]
        [--nni-python /work/venv-nni/bin/python] [--threads 1] [--epochs N] [--warmup-epochs 1]

An optional benchmark: NNI is no dependency of LightNAS, and the test suite never imports this
file. NNI 3.0 lives in a virtualenv of its own; this worked (Python 3.11, the torch CPU wheel of
LightNAS's quick start; NNI's one-shot ENAS imports pytorch-lightning, tianshou and gym, and
pytorch-lightning 2.0 still imports pkg_resources, gone from setuptools >= 81):

    python3 -m venv /work/venv-nni && /work/venv-nni/bin/pip install nni==3.0 torch==2.13.0 \
        "pytorch-lightning>=2.0,<2.1" tianshou==0.5.1 gym==0.26.2 "setuptools<81" \
        "jsonargparse[signatures]>=4.32" "safetensors>=0.4" "graphviz>=0.20" "optuna>=4.9"

(the last four are the LightNAS dependencies NNI does not bring; LightNAS itself is imported from
the checkout with PYTHONPATH=.). It resolved to pytorch-lightning 2.0.9.post0, tianshou 0.5.1,
gym 0.26.2 (which warns that it does not support NumPy 2: only its env checker, which NNI does
not use, is affected), numpy 2.4, torchmetrics 1.9.

The space: the quick start's supernet (configs/quickstart.yml: meliusnet_flex, thumbnail stem,
digits at 16x16, block_config [2, 2, 2], growth 16, init 32, reductions 0.5; dense blocks
conv3x3 | conv1x1, improvement blocks conv3x3 | identity: 12 decision points) is built by
LightNAS (`lightnas.run.parts.build_parts`), then rebuilt as an NNI `ModelSpace` from a copy of
its own modules: stem, transitions and head as they are, and each LightNAS `Choice` an NNI
`LayerChoice` labelled with the decision point's name whose candidates are LightNAS's layer
classes on the choice's own weights: `DenseLayer(choice.bn, choice.ops[op])`,
`ImprovementBlock(choice.bn, choice.ops[op])` or `nn.Identity()` for `identity` (the child
`extract()` builds, without copying: the candidates share the block's BN as in the supernet).
Both networks then hold the same weights, the same number of them. Checked on every --side nni
run, before the timing (the JSON's "check"): for the first-choice, the last-choice and
--check-archs - 2 random architectures, the one-shot supernet that NNI's ENAS trains (after
`ENAS.mutate_model`, its `PathSamplingLayer`s resampled to the architecture) against
`supernet.set_architecture(arch); supernet(x)`, and NNI's frozen child (`ModelSpace.freeze`)
against LightNAS's (`lightnas.models.child`), on a training batch: logits in eval and in train
mode, and every parameter's gradient of the cross-entropy in train mode, compared with
torch.equal (the maximum absolute differences are reported: 0.0 on this space; a difference
fails the run), plus the decision points' labels and the parameter counts.

The data: LightNAS's own loaders (`lightnas.data`, the quick start's options: digits, the same
seeded train / validation split, batch 64, augmentation), handed to Lightning as they are: the
same batches, the same input pipeline on both sides.

What NNI does in an epoch (NNI 3.0 `nni.nas.strategy.ENAS`, its defaults; the evaluator is NNI's
`Classification`, Adam at the quick start's lr 0.003, rewards `val_acc`): its `ConcatLoader`
yields every training batch, then every validation batch (EnasLightningModule.training_step).
On each of the T training batches the controller (an LSTM policy, one step per decision point)
samples a child without grad, and the child trains on the batch (forward, backward, Adam). On
each of the V validation batches the controller samples a child and its reward is its accuracy on
that one batch, in train mode (BatchNorm on the batch's own statistics); the trajectory goes to a
replay buffer. Every `batches_per_update` = 20 rewards the PPO policy is updated: one round is
`update_times` = 5 calls of `policy.update` (each `repeat` = 5 passes, minibatch 32). On digits
T = 19 and V = 4 (1222 training and 216 validation images): 4 rewards an epoch, so a round comes
every 5th epoch, at its last reward - and, as NNI 3.0 tests the counter on every step, again
after each of the 19 training batches of the epoch after (the counter still stands at 20). The
"ppo_updates" column counts the calls (measured: 5 in epoch 5, 5 per training batch in epoch 6,
none in the others), so NNI's epochs differ by seconds: its side times 5 epochs by default (after
the warm-up epoch: epochs 2-6, one whole period) and reports their mean, and the mean of those
without a PPO update ("without_ppo": a lower bound of NNI's epoch). NNI runs no validation of
its own in a search epoch.

LightNAS, timed as `Engine.run_epoch(epoch)` on epochs after the quick start's 2 warm-up epochs
(its controller is learning, as NNI's is from epoch 0):
- default: the quick start as it is: sandwich sampling (largest, smallest and
  `search.sandwich_k` uniform children, 1 by default, train on every batch) with in-place
  distillation, then a controller phase of 30 steps x 2 candidates rewarded on the whole
  validation split (BN re-estimated on a training batch for each; a score computed once per set
  of weights, stage outputs kept by prefix), then validation (8 candidates ranked, the best
  and the controller's greedy pick validated with BN re-estimated on 4 batches).
- matched (--matched): NNI's work as far as LightNAS's options express it: one child per
  training batch sampled by the controller (search.sampling controller, inplace_distill false);
  after the T training batches one controller phase (update_arch_frequency null) of V steps
  (controller_steps = the validation batches, controller_batch 1), each rewarding one child on
  the next single validation batch (reward_batches 1) in train mode (reward_bn batch, as NNI:
  no BN re-estimation); num_val_samples 0. Not matched: LightNAS's controller (an LSTM trained
  with REINFORCE) updates after every reward, NNI's PPO policy every 20 rewards in 25 passes;
  LightNAS still validates its greedy architecture at the end of every epoch (4 BN batches + one
  pass over the 216 validation images: work NNI does not do); NNI logs a torchmetrics accuracy
  per training step. Both train with Adam at lr 0.003 (LightNAS's follows its cosine schedule)
  and no weight decay, on the same batches.
--override passes more LightNAS config overrides (`--override=--search.reward_bn=recalibrate`).

Each side runs --warmup-epochs untimed epochs (default 1), then --epochs timed ones (default 5
on both sides: for NNI see above; LightNAS's epochs get cheaper as its controller converges, the
scores of architectures it samples again being known), in one process with
--threads torch threads (default 1): CPU seconds (time.process_time) and wall seconds per epoch,
their means, a table, then one JSON line. --steps N limits every epoch to its first N training
batches on both sides (a correctness run; rewards and validation unchanged). --pairs N runs the
sides alternately in subprocesses (the NNI side with --nni-python, LightNAS with this python;
which side goes first alternates), and prints per pair and setting the ratios NNI / LightNAS of
the epoch's CPU seconds and wall seconds (NNI's mean epoch, and its mean epoch without a PPO
update), and their medians (>= 1: LightNAS is faster). Run --pairs with LightNAS's python: it
runs the LightNAS side.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lightnas.config import Config, parse_config
from lightnas.engine.loop import Callback, Engine
from lightnas.models.meliusnet import DenseChoice, DenseLayer, ImprovementBlock, ImprovementChoice
from lightnas.models.supernet import Choice, Supernet, child
from lightnas.run.parts import build_engine, build_parts
from lightnas.search.space import Architecture

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart.yml"
NNI_PYTHON = "/work/venv-nni/bin/python"
SETTINGS = ("default", "matched")
# timed epochs: NNI's 5 hold one period of its PPO updates, LightNAS's epochs do the same work
DEFAULT_EPOCHS = {"nni": 5, "lightnas": 5}
NNI_KEYS = ("epoch_cpu_s", "epoch_wall_s", "epoch_cpu_s_without_ppo", "epoch_wall_s_without_ppo")
# the matched setting's overrides of the quick start (controller_steps: set to the number of
# validation batches once the data is built)
MATCHED = [
    "--search.sampling", "controller",
    "--search.inplace_distill", "false",
    "--search.update_arch_frequency", "null",
    "--search.controller_batch", "1",
    "--search.reward_batches", "1",
    "--search.reward_bn", "batch",
    "--search.num_val_samples", "0",
]  # fmt: skip
VENV_HINT = (
    "python3 -m venv /work/venv-nni && /work/venv-nni/bin/pip install nni==3.0 torch==2.13.0 "
    '"pytorch-lightning>=2.0,<2.1" tianshou==0.5.1 gym==0.26.2 "setuptools<81" '
    '"jsonargparse[signatures]>=4.32" "safetensors>=0.4" "graphviz>=0.20" "optuna>=4.9"'
)


# ---- shared ------------------------------------------------------------------------------------
def quickstart_config(args, setting: str = "default") -> Config:
    argv = ["--config", str(QUICKSTART), "--device", "cpu", "--seed", str(args.seed)]
    argv += ["--export.formats", "[]", "--export.graph_formats", "[]", "--progress", "false"]
    if setting == "matched":
        argv += MATCHED
    return parse_config([*argv, *args.override])[0]


class FirstBatches:
    """The first `n` batches of a LightNAS loader, every epoch (for --steps)."""

    def __init__(self, loader, n: int) -> None:
        self.loader, self.n = loader, min(n, len(loader))

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return islice(iter(self.loader), self.n)

    def batches(self, epoch: int, start: int = 0, step: int = 1):
        return islice(self.loader.batches(epoch, start, step), len(range(start, self.n, step)))


class Clock:
    """CPU (this process) and wall seconds since the last `lap`."""

    def __init__(self) -> None:
        self.lap()

    def lap(self) -> tuple[float, float]:
        now = time.process_time(), time.perf_counter()
        last = getattr(self, "_last", now)
        self._last = now
        return now[0] - last[0], now[1] - last[1]


def architectures(supernet: Supernet, count: int, seed: int) -> list[Architecture]:
    """The first choices everywhere, the last choices everywhere, then random ones."""
    space = supernet.space
    gen = torch.Generator().manual_seed(seed)
    last = space.from_indices([len(p.choices) - 1 for p in space])
    return [space.default(), last, *(space.sample(gen) for _ in range(max(count - 2, 0)))]


def summarize(side: str, setting: str, args, rows: list[dict], extra: dict) -> dict:
    header = f"{'side':<9} {'setting':<8} {'epoch':>5} {'cpu s':>8} {'wall s':>8}"
    keys = [k for k in rows[0] if k not in ("epoch", "cpu_s", "wall_s")] if rows else []
    print(header + "".join(f" {k:>12}" for k in keys))
    for r in rows:
        line = f"{side:<9} {setting:<8} {r['epoch']:>5} {r['cpu_s']:>8.2f} {r['wall_s']:>8.2f}"
        print(line + "".join(f" {r[k]:>12.4g}" for k in keys))
    result = {
        "benchmark": "nni_compare",
        "side": side,
        "setting": setting,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "warmup_epochs": args.warmup_epochs,
        "epochs": rows,
        "epoch_cpu_s": statistics.mean(r["cpu_s"] for r in rows),
        "epoch_wall_s": statistics.mean(r["wall_s"] for r in rows),
        "torch": torch.__version__,
        "python": platform.python_version(),
        **extra,
    }
    print(json.dumps(result))
    return result


# ---- LightNAS ----------------------------------------------------------------------------------
class PhaseTimes(Callback):
    """CPU seconds of each phase of an epoch (train, controller, valid)."""

    def __init__(self) -> None:
        self.clock, self.seconds = Clock(), {}

    def on_phase(self, engine: Engine, phase: str, total: int) -> None:
        self.clock.lap()

    def on_phase_end(self, engine: Engine, phase: str) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + self.clock.lap()[0]


def run_lightnas(args, setting: str) -> dict:
    cfg = quickstart_config(args, setting)
    parts = build_parts(cfg)
    if args.steps:
        parts.data.train = FirstBatches(parts.data.train, args.steps)
    if setting == "matched":  # one reward step per validation batch, as NNI
        cfg.search.controller_steps = len(parts.data.val)
    phases = PhaseTimes()
    engine = build_engine(cfg, parts, callbacks=[phases])
    first = cfg.search.warmup_epochs  # the controller learns from this epoch on
    rows, clock = [], Clock()
    for k in range(args.warmup_epochs + args.epochs):
        phases.seconds = {}
        clock.lap()
        engine.run_epoch(first + k)
        cpu_s, wall_s = clock.lap()
        if k >= args.warmup_epochs:
            row = {"epoch": first + k + 1, "cpu_s": cpu_s, "wall_s": wall_s}
            rows.append(row | {f"{p}_cpu_s": s for p, s in phases.seconds.items()})
    s = cfg.search
    extra = {
        "train_batches": len(parts.data.train),
        "val_batches": len(parts.data.val),
        "search": {
            k: getattr(s, k)
            for k in (
                "update_arch_frequency",
                "controller_steps",
                "controller_batch",
                "reward_batches",
                "reward_bn",
                "num_val_samples",
            )
        },
        # the strategy's rule where the config leaves them null
        "sampling": engine.sampler.rule.sampling,
        "inplace_distill": engine.sampler.rule.inplace_distill,
        "children_per_step": len(engine.training_architectures(first)),
    }
    return summarize("lightnas", setting, args, rows, extra)


# ---- NNI ---------------------------------------------------------------------------------------
def candidates(choice: Choice) -> dict[str, nn.Module]:
    """The NNI candidates of a LightNAS choice: LightNAS's own layers on the choice's weights."""
    if isinstance(choice, DenseChoice):
        return {op: DenseLayer(choice.bn, choice.ops[op]) for op in choice.point.choices}
    if isinstance(choice, ImprovementChoice):
        return {
            op: ImprovementBlock(choice.bn, choice.ops[op]) if op in choice.ops else nn.Identity()
            for op in choice.point.choices
        }
    raise TypeError(f"no NNI candidates for {type(choice).__name__} at {choice.point.name}")


def nni_space(supernet: Supernet) -> nn.Module:
    """`supernet`'s modules (not copied) as an NNI ModelSpace: every Choice a LayerChoice."""
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace

    def rebuilt(module: nn.Module) -> nn.Module:
        """`module` with its choices as LayerChoices; the containers above a choice are new
        (shallow copies), everything else is `module`'s own (ModelSpace.freeze rebuilds)."""
        if isinstance(module, Choice):
            return LayerChoice(candidates(module), label=module.point.name)
        if not any(isinstance(m, Choice) for m in module.modules()):
            return module
        clone = copy.copy(module)
        clone._modules = {name: rebuilt(sub) for name, sub in module._modules.items()}
        return clone

    class LightNASSpace(ModelSpace):
        def __init__(self, net: Supernet) -> None:
            super().__init__()
            self.stem, self.body, self.head = (rebuilt(m) for m in (net.stem, net.body, net.head))

        def forward(self, x):
            return self.head(self.body(self.stem(x)))

    return LightNASSpace(supernet)


def unique_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in net.parameters()}.values())


def compare(ref: nn.Module, other: nn.Module, pairs: list, x, y) -> dict:
    """Max abs differences between `ref` and `other` set to one architecture: logits in eval
    and in train mode, and the gradient of each pair of parameters (ref's, other's) of the
    cross-entropy in train mode; exact: all equal (torch.equal). Train mode updates BN running
    statistics: both nets move alike."""
    worst, exact = {}, True
    with torch.no_grad():
        for mode in ("eval", "train"):
            a, b = ref.train(mode == "train")(x), other.train(mode == "train")(x)
            worst[f"logits_{mode}"] = (a - b).abs().max().item()
            exact &= torch.equal(a, b)
    for net in (ref, other):
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net.train()(x), y).backward()
    worst["grads"] = 0.0
    for p, q in pairs:
        if (p.grad is None) != (q.grad is None) or p.shape != q.shape:
            exact, worst["grads"] = False, float("inf")
        elif p.grad is not None:
            worst["grads"] = max(worst["grads"], (p.grad - q.grad).abs().max().item())
            exact &= torch.equal(p.grad, q.grad)
    for net in (ref, other):
        net.zero_grad(set_to_none=True)
    return {**worst, "exact": exact}


def worst_of(results: list[dict]) -> dict:
    worst = {k: max(r[k] for r in results) for k in ("logits_eval", "logits_train", "grads")}
    return {**worst, "exact": all(r["exact"] for r in results)}


def check_space(supernet: Supernet, args, x, y) -> dict:
    """The rebuilt NNI space against `supernet` (whose state is restored afterwards) on
    --check-archs architectures: NNI's frozen children (`ModelSpace.freeze`) against LightNAS's
    (`lightnas.models.child`), and the one-shot supernet that NNI's ENAS trains against
    `supernet.set_architecture(arch); supernet`."""
    from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
    from nni.nas.strategy import ENAS

    state = copy.deepcopy(supernet.state_dict())  # the checks run train-mode forwards
    memo: dict = {}
    space = nni_space(copy.deepcopy(supernet, memo))
    pairs = [(p, memo[id(p)]) for p in supernet.parameters()]
    same_weights = all(torch.equal(p, q) for p, q in pairs)
    archs = architectures(supernet, args.check_archs, args.seed)
    labels = sorted(space.simplify())

    # frozen children: each a copy (freeze copies the fixed layers, a fresh space copy each time
    # keeps the shared candidates' BN statistics as they were); parameters paired in order
    frozen = []
    for arch in archs:
        ours, theirs = child(supernet, arch), copy.deepcopy(space).freeze(dict(arch))
        mine, nni_params = list(ours.parameters()), list(theirs.parameters())
        result = compare(ours, theirs, list(zip(mine, nni_params, strict=False)), x, y)
        result["exact"] &= len(mine) == len(nni_params)
        frozen.append(result)

    # the one-shot supernet ENAS trains, its sampling layers set to each architecture
    model = ENAS(reward_metric_name="val_acc").mutate_model(space)
    layers = [m for m in model.modules() if isinstance(m, BaseSuperNetModule)]
    oneshot = []
    for arch in archs:
        supernet.set_architecture(arch)
        for m in layers:
            m.resample(memo=dict(arch))
        oneshot.append(compare(supernet, model, pairs, x, y))
    supernet.load_state_dict(state)
    parameters = [unique_parameters(supernet), unique_parameters(model)]
    check = {
        "architectures": len(archs),
        "decision_points": len(labels),
        "labels_match": labels == sorted(supernet.space.names),
        "same_weights": same_weights,
        "parameters": parameters,
        "oneshot": worst_of(oneshot),
        "frozen": worst_of(frozen),
    }
    check["equal"] = bool(
        same_weights
        and check["labels_match"]
        and parameters[0] == parameters[1]
        and check["oneshot"]["exact"]
        and check["frozen"]["exact"]
    )
    return check


def run_nni(args) -> dict:
    try:
        import nni
        import pytorch_lightning as pl
        from nni.nas.evaluator.pytorch import Classification
        from nni.nas.strategy import ENAS
    except ImportError as err:
        raise SystemExit(
            f"error: --side nni needs NNI 3.0 and its one-shot dependencies ({err}); make the "
            f"venv with\n  {VENV_HINT}\nand run this side with its python (--nni-python)"
        ) from err

    cfg = quickstart_config(args)
    parts = build_parts(cfg)  # LightNAS's seeded supernet and data, as the LightNAS side's
    data = parts.data
    train = FirstBatches(data.train, args.steps) if args.steps else data.train
    x, y = next(iter(data.train.batches(0)))
    check = check_space(parts.supernet, args, x, y)
    if not check["equal"]:
        print(json.dumps({"check": check}))
        raise SystemExit("error: the NNI space does not compute what LightNAS's supernet does")
    strategy = ENAS(reward_metric_name="val_acc")
    model = strategy.mutate_model(nni_space(copy.deepcopy(parts.supernet)))
    del parts

    class EpochTimer(pl.Callback):
        def __init__(self) -> None:
            self.clock, self.rows = Clock(), []

        def on_train_epoch_start(self, trainer, module) -> None:
            if not hasattr(module.policy.update, "counted"):
                update = module.policy.update

                def counted(*a, **kw):
                    self.updates += 1
                    return update(*a, **kw)

                counted.counted = True
                module.policy.update = counted
            self.updates, self.rewards, self.batches = 0, module._trajectory_counter, 0
            self.clock.lap()

        def on_train_batch_end(self, *_) -> None:
            self.batches += 1

        def on_train_epoch_end(self, trainer, module) -> None:
            cpu_s, wall_s = self.clock.lap()
            if trainer.current_epoch >= args.warmup_epochs:
                self.rows.append(
                    {
                        "epoch": trainer.current_epoch + 1,
                        "cpu_s": cpu_s,
                        "wall_s": wall_s,
                        "train_steps": self.batches - (module._trajectory_counter - self.rewards),
                        "reward_steps": module._trajectory_counter - self.rewards,
                        "ppo_updates": self.updates,
                    }
                )

    timer = EpochTimer()
    evaluator = Classification(
        learning_rate=cfg.optim.lr,
        train_dataloaders=train,
        val_dataloaders=data.val,
        num_classes=data.num_classes,
        max_epochs=args.warmup_epochs + args.epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    strategy.mutate_evaluator(evaluator).evaluate(model)
    quiet = [r for r in timer.rows if r["ppo_updates"] == 0] or timer.rows
    extra = {
        # the mean over the epochs without a PPO update (NNI's epochs but one in five or two)
        "epoch_cpu_s_without_ppo": statistics.mean(r["cpu_s"] for r in quiet),
        "epoch_wall_s_without_ppo": statistics.mean(r["wall_s"] for r in quiet),
        "train_batches": len(train),
        "val_batches": len(data.val),
        "nni": nni.__version__,
        "pytorch_lightning": pl.__version__,
        "check": check,
    }
    return summarize("nni", "default", args, timer.rows, extra)


# ---- pairs -------------------------------------------------------------------------------------
def side_argv(args) -> list[str]:
    argv = ["--threads", str(args.threads), "--seed", str(args.seed)]
    argv += ["--warmup-epochs", str(args.warmup_epochs)]
    argv += ["--epochs", str(args.epochs)] if args.epochs else []
    argv += ["--check-archs", str(args.check_archs), *(f"--override={o}" for o in args.override)]
    return argv + (["--steps", str(args.steps)] if args.steps else [])


def run_side(python: str, argv: list[str], threads: int) -> dict:
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [python, str(Path(__file__).resolve()), *argv]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"error: {' '.join(command)} exited with {done.returncode}")
    return json.loads(lines[-1])


def run_pairs(args) -> dict:
    settings = args.settings or ["matched" if args.matched else "default"]
    common = side_argv(args)
    pairs = []
    for i in range(args.pairs):
        runs = [("nni", args.nni_python, ["--side", "nni"])]
        for s in settings:
            flag = ["--matched"] if s == "matched" else []
            runs.append((s, sys.executable, ["--side", "lightnas", *flag]))
        if i % 2:  # alternate which side goes first
            runs = runs[1:] + runs[:1]
        got = {}
        for name, python, argv in runs:
            got[name] = run_side(python, [*argv, *common], args.threads)
            print(f"pair {i + 1} {name}: {got[name]['epoch_cpu_s']:.2f} cpu s", file=sys.stderr)
        nni = got["nni"]
        pair = {"nni": {k: nni[k] for k in NNI_KEYS}}
        for s in settings:
            cpu, wall = got[s]["epoch_cpu_s"], got[s]["epoch_wall_s"]
            pair[s] = {
                "epoch_cpu_s": cpu,
                "epoch_wall_s": wall,
                "ratio_cpu": nni["epoch_cpu_s"] / cpu,
                "ratio_wall": nni["epoch_wall_s"] / wall,
                "ratio_cpu_without_ppo": nni["epoch_cpu_s_without_ppo"] / cpu,
                "ratio_wall_without_ppo": nni["epoch_wall_s_without_ppo"] / wall,
            }
        pairs.append(pair)
    print(
        f"{'pair':>4} {'nni cpu s':>9} {'w/o ppo':>7}"
        + "".join(f" {s + ' cpu s':>16} {'ratio':>6} {'w/o ppo':>7}" for s in settings)
    )
    for i, p in enumerate(pairs, 1):
        cells = "".join(
            f" {p[s]['epoch_cpu_s']:>16.2f} {p[s]['ratio_cpu']:>6.2f}"
            f" {p[s]['ratio_cpu_without_ppo']:>7.2f}"
            for s in settings
        )
        n = p["nni"]
        print(f"{i:>4} {n['epoch_cpu_s']:>9.2f} {n['epoch_cpu_s_without_ppo']:>7.2f}{cells}")
    keys = ("ratio_cpu", "ratio_wall", "ratio_cpu_without_ppo", "ratio_wall_without_ppo")
    medians = {s: {k: statistics.median(p[s][k] for p in pairs) for k in keys} for s in settings}
    for s, m in medians.items():
        print(
            f"median NNI / LightNAS ({s}) over {len(pairs)} pairs: {m['ratio_cpu']:.2f} cpu s, "
            f"{m['ratio_wall']:.2f} wall s; NNI's epochs without a PPO update only: "
            f"{m['ratio_cpu_without_ppo']:.2f} cpu s, {m['ratio_wall_without_ppo']:.2f} wall s"
        )
    result = {
        "benchmark": "nni_compare",
        "pairs": pairs,
        "medians": medians,
        "threads": args.threads,
        "epochs": args.epochs or DEFAULT_EPOCHS,
        "warmup_epochs": args.warmup_epochs,
        "steps": args.steps,
    }
    print(json.dumps(result))
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("nni", "lightnas"), help="time one side here")
    parser.add_argument("--pairs", type=int, default=0, help="N pairs of runs in subprocesses")
    parser.add_argument("--matched", action="store_true", help="LightNAS with NNI's work")
    parser.add_argument(
        "--settings", nargs="+", choices=SETTINGS, help="LightNAS settings of each pair"
    )
    parser.add_argument("--nni-python", default=NNI_PYTHON, help=f"default {NNI_PYTHON}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs (default 5)")
    parser.add_argument("--warmup-epochs", type=int, default=1, help="untimed epochs first")
    parser.add_argument("--steps", type=int, default=0, help="training batches an epoch (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--check-archs", type=int, default=6, help="architectures of the equality check"
    )
    parser.add_argument(
        "--override", action="append", default=[], help="a LightNAS config override, repeatable"
    )
    args = parser.parse_args(argv)
    if args.side and args.epochs is None:
        args.epochs = DEFAULT_EPOCHS[args.side]
    if (args.side is None) == (args.pairs == 0):
        parser.error("give one of --side or --pairs N")
    if (args.epochs is not None and args.epochs < 1) or args.warmup_epochs < 0 or args.steps < 0:
        parser.error("--epochs >= 1, --warmup-epochs >= 0, --steps >= 0")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.pairs:
        return run_pairs(args)
    if args.side == "nni":
        return run_nni(args)
    return run_lightnas(args, "matched" if args.matched else "default")


if __name__ == "__main__":
    main()
