"""The engine's checkpoint format: what `Engine.state_dict()` holds and how `load_state_dict()`
puts it back. A checkpoint written by an earlier version (without the later keys: proposals,
final, sampler, progress) still loads."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from lightnas.engine.records import Best, EpochProgress, EpochResult
from lightnas.engine.selection import FinalSelection, Proposal


def rng_state() -> dict:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def set_rng_state(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def engine_state(engine: Any) -> dict:
    """The state of `engine` (a lightnas.engine.loop.Engine): all a resumed run needs."""
    progress = engine.progress
    return {
        "epoch": engine.epoch,
        "global_step": engine.global_step,
        "history": [r.to_row() for r in engine.history],
        "best": None if engine.best is None else engine.best.as_dict(),
        "supernet": engine.supernet.state_dict(),
        "optimizer": engine.optimizer.state_dict(),
        "strategy": engine.strategy.state_dict(),
        "rng": rng_state(),
        "config": engine.cfg.to_dict(),
        "progress": None
        if progress is None
        else {**progress.state_dict(), "evaluator": engine.evaluator.state_dict()},
        "proposals": [asdict(p) for p in engine.proposals],
        "final": None if engine.final is None else engine.final.to_dict(),
        "sampler": engine.sampler.state_dict(),
    }


def load_engine_state(engine: Any, state: dict) -> None:
    """Put `state` (of `engine_state`) back into `engine`."""
    engine.supernet.load_state_dict(state["supernet"])
    engine.optimizer.load_state_dict(state["optimizer"])
    engine.strategy.load_state_dict(state["strategy"])
    set_rng_state(state["rng"])
    engine.epoch = state["epoch"]
    engine.global_step = state["global_step"]
    engine.history = [EpochResult.from_row(r) for r in state["history"]]
    engine.best = None if state.get("best") is None else Best(**state["best"])
    engine.proposals = [Proposal(**p) for p in state.get("proposals", [])]
    final = state.get("final")
    engine.final = None if final is None else FinalSelection.from_dict(final)
    if state.get("sampler") is not None:
        engine.sampler.load_state_dict(state["sampler"])
    progress = state.get("progress")
    engine.progress = None
    if progress is not None:
        engine.progress = EpochProgress.from_state(progress, engine.placement.device)
        engine.evaluator.load_state_dict(progress["evaluator"])
