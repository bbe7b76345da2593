"""A search run as `train_enas.py` / `lightnas search` starts it: parse, build and check
everything, then run into a training folder. Sweeps start their trials here too.

Under torchrun every rank parses, builds and checks the same run (every machine sees the same
config, dataset and, to resume, training folder); bad input on any rank stops them all before
anything is written, and only rank 0 writes the folder (lightnas.runtime.distributed).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

from lightnas.config import strategy_options
from lightnas.engine.loop import Callback, Engine
from lightnas.engine.loss import NonFiniteLossError
from lightnas.outputs.result import describe_result
from lightnas.run.folder import lock_folder, prepare_folder, run_logged
from lightnas.run.parts import Parts, build_engine, build_parts
from lightnas.run.resume import Request, parse_request, restore
from lightnas.runtime.distributed import Dist, session
from lightnas.search.strategies import STRATEGIES


def search(argv: Sequence[str], callbacks: Sequence[Callback] = ()) -> int:
    """`train_enas.py` / `lightnas search`: parse, build and check everything, then run into a
    training folder (created or resumed only once nothing can fail on bad input, on any rank).
    `callbacks` are added to the run's own (e.g. a sweep's pruning hook), on every rank."""
    with session() as dist, contextlib.ExitStack() as held:
        request, parts = dist.agree(lambda: prepare_run(argv, dist, held))
        engine = build_engine(request.cfg, parts, callbacks, request.folder, dist)
        if request.state is not None:
            dist.agree(lambda: restore(engine, request))
        if not dist.is_main:
            return run_quietly(engine)
        folder = prepare_folder(request, held)
        command = f"python train_enas.py --resume {folder.root}"
        code = run_logged(engine, folder, parts.info, command)
        if code == 0:
            print(f"done: {describe_best(engine)} in {folder.best_architecture}")
        return code


def prepare_run(
    argv: Sequence[str], dist: Dist, held: contextlib.ExitStack
) -> tuple[Request, Parts]:
    """The parsed request and its parts, checked; rank 0 prints the config's warnings and
    locks a resumed folder until `held` closes (a folder another run is writing is refused)."""
    request = parse_request(argv)
    if dist.is_main and request.folder is not None:
        lock_folder(request.folder, held)
    if dist.is_main:
        cfg = request.cfg
        strategy = STRATEGIES[cfg.search.strategy]
        for warning in strategy.config_warnings(strategy_options(cfg), cfg.epochs):
            print(f"warning: {warning}", file=sys.stderr)
    return request, build_parts(request.cfg, dist)


def run_quietly(engine: Engine) -> int:
    """A rank other than 0: the same run without the training folder's callbacks; rank 0
    reports how it ends, and this rank exits with the same code."""
    try:
        engine.run()
    except KeyboardInterrupt:
        return 130
    except NonFiniteLossError:
        return 1
    return 0


def describe_best(engine: Engine) -> str:
    """The `done:` line's result: `engine.best`, which is what best_architecture.json holds."""
    return describe_result(engine.best)
