"""Rewards stage by stage: candidates that share the first choices of their architecture share
the work those choices cost.

A reward re-estimates the candidate's BatchNorm statistics on training batches, then runs the
validation batches in eval mode (`Evaluator.accuracies`). Up to any stage of the network both
depend only on the choices made before that stage's end. So the network runs stage by stage
(the stem, each module of a sequential body, the head): each stage first on the calibration
batches in train mode (its BN statistics re-estimated as `Evaluator.recalibrate_bn` does:
cumulative averages from reset statistics), then on the validation batches in eval mode. What
comes out of each stage is kept under the choices that produced it, so the next candidate that
agrees on them starts from there. Every layer sees the same inputs in the same order as in the
whole-network protocol: the logits are the same numbers.

What is kept is valid for one set of weights and one draw of batches (the evaluator empties it
when a parameter changes) and is bounded in bytes, the least recently used prefix going first.
A stage runs on all the batches at once, so this way is taken only where the largest stage's
outputs for all of them fit within that bound too (`fits`); else the network runs batch by
batch, as before.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager

import torch
from torch import Tensor, nn

from lightnas.models import Supernet
from lightnas.models.supernet import Choice
from lightnas.search.space import Architecture

Outputs = tuple[list[Tensor], list[Tensor]]  # a stage's outputs: calibration, validation


@contextlib.contextmanager
def re_estimating(net: nn.Module) -> Iterator[list[nn.modules.batchnorm._BatchNorm]]:
    """`net` in train mode with its BatchNorm statistics reset, so that the forwards inside
    re-estimate them (a cumulative average: momentum None; momenta restored on exit)."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    net.train()
    try:
        yield bns
    finally:
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum


def stages(supernet: Supernet) -> list[nn.Module]:
    """The modules the network runs in turn: stem, the body's modules (or the body, where it
    is not a chain), head."""
    body = supernet.body
    middle = list(body) if isinstance(body, nn.Sequential) else [body]
    return [supernet.stem, *middle, supernet.head]


def _nbytes(outputs: Outputs) -> int:
    return sum(t.numel() * t.element_size() for part in outputs for t in part)


class PrefixCache:
    """Each stage's outputs for the prefixes of architectures scored with the current weights."""

    def __init__(self, supernet: Supernet, limit_bytes: int) -> None:
        self.stages = stages(supernet)
        self.points = [
            [m.point.name for m in stage.modules() if isinstance(m, Choice)]
            for stage in self.stages
        ]
        self.limit = limit_bytes
        self.per_image: int | None = None  # bytes of the largest stage output of one image
        self.entries: OrderedDict[Hashable, Outputs] = OrderedDict()
        self.bytes = 0
        self.stages_run = 0  # stages computed (not taken from a kept prefix), for measurements

    @torch.no_grad()
    def fits(
        self, images: int, example: Tensor, autocast: Callable[[], AbstractContextManager]
    ) -> bool:
        """Whether every stage's outputs for `images` images fit within the limit (measured
        once on `example`, one input image: the stages' shapes do not depend on the choices)."""
        if self.per_image is None:
            largest, x = 0, example
            training = [stage.training for stage in self.stages]
            with autocast():
                for stage in self.stages:
                    x = stage.eval()(x)
                    largest = max(largest, x.numel() * x.element_size())
            for stage, mode in zip(self.stages, training, strict=True):
                stage.train(mode)
            self.per_image = largest
        return 2 * images * self.per_image <= self.limit  # a stage's inputs and outputs

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0

    def logits(
        self,
        arch: Architecture,
        draw: Hashable,
        inputs: Callable[[], Outputs],
        autocast: Callable[[], AbstractContextManager],
    ) -> list[Tensor]:
        """The validation logits of `arch`, its BN statistics re-estimated on the calibration
        batches; `inputs()` (the calibration and validation batches) is called only when no
        prefix of `arch` was kept for `draw`."""
        keys, prefix = [], ()
        for points in self.points:
            prefix = (*prefix, *(arch[p] for p in points))
            keys.append((draw, prefix))
        start, outputs = 0, None
        for i in reversed(range(len(keys) - 1)):  # the deepest kept prefix
            if keys[i] in self.entries:
                self.entries.move_to_end(keys[i])
                start, outputs = i + 1, self.entries[keys[i]]
                break
        calibration, validation = outputs if outputs is not None else inputs()
        for i in range(start, len(self.stages)):
            calibration, validation = self._run(self.stages[i], calibration, validation, autocast)
            self.stages_run += 1
            if i < len(self.stages) - 1:
                self._keep(keys[i], (calibration, validation))
        return validation

    @staticmethod
    def _run(
        stage: nn.Module,
        calibration: Sequence[Tensor],
        validation: Sequence[Tensor],
        autocast: Callable[[], AbstractContextManager],
    ) -> Outputs:
        with re_estimating(stage), autocast():
            calibrated = [stage(x) for x in calibration]
        stage.eval()
        with autocast():
            return calibrated, [stage(x) for x in validation]

    def _keep(self, key: Hashable, outputs: Outputs) -> None:
        size = _nbytes(outputs)
        if size > self.limit:
            return
        if key in self.entries:
            self.bytes -= _nbytes(self.entries.pop(key))
        self.entries[key] = outputs
        self.bytes += size
        while self.bytes > self.limit:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= _nbytes(dropped)
