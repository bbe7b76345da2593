"""The modules a space file builds besides the families' own: merges, the two kinds of choice
node (candidates, and bit widths on one weight tensor) and the body that runs a graph."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightnas.binary import QConv2d
from lightnas.models.resnet import bits_choice, choice_bits
from lightnas.models.supernet import Choice
from lightnas.search.space import DecisionPoint


class Add(nn.Module):
    """The sum of its inputs (a residual connection)."""

    def forward(self, x: Tensor, *more: Tensor) -> Tensor:
        for y in more:
            x = x + y
        return x


class Concat(nn.Module):
    """Its inputs concatenated along the channels (a dense connection)."""

    def forward(self, *xs: Tensor) -> Tensor:
        return torch.cat(xs, dim=1)


class ReluAt32(nn.Module):
    """A ReLU in front of a 32-bit conv: at 32 bits the quantizer is the identity, so a ReLU takes
    its place as the nonlinearity (the binary ResNets' convention, lightnas.models.resnet)."""

    def __init__(self, conv: QConv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.relu(x))


class CandidateChoice(Choice):
    """A choice node: runs its active candidate (an op or a sub-graph); a removed candidate
    (identity / skip) passes its input through and is dropped from the child."""

    def __init__(self, point: DecisionPoint, candidates: Mapping[str, nn.Module | None]) -> None:
        super().__init__(point)
        self.ops = nn.ModuleDict({k: m for k, m in candidates.items() if m is not None})

    def forward(self, x: Tensor) -> Tensor:
        if self.active not in self.ops:
            return x
        return self.ops[self.active](x)

    def extract(self) -> nn.Module | None:
        if self.active not in self.ops:
            return None
        return copy.deepcopy(self.ops[self.active])


def share_equal_weights(candidates: Mapping[str, nn.Module | None]) -> None:
    """Candidates whose conv and linear weights have the same shapes, in the same order, use the
    first such candidate's weight tensors (BatchNorm and biases stay their own)."""
    first: dict[tuple, list[nn.Module]] = {}
    for module in candidates.values():
        if module is None:
            continue
        layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        key = tuple(tuple(m.weight.shape) for m in layers)
        if not key:
            continue
        if key not in first:
            first[key] = layers
            continue
        for layer, owner in zip(layers, first[key], strict=True):
            layer.weight = owner.weight


class BitsChoice(Choice):
    """A k-bit conv whose bit width is the choice: every width uses the same weight tensor."""

    def __init__(self, point: DecisionPoint, conv: QConv2d, relu_at_32: bool = False) -> None:
        super().__init__(point)
        self.conv = conv
        self.relu_at_32 = relu_at_32
        # at rest the conv holds the lowest width: its weights are latent (quantized) weights
        self.conv.set_bits(min(choice_bits(c) for c in point.choices))

    def forward(self, x: Tensor) -> Tensor:
        bits = choice_bits(self.active)
        self.conv.set_bits(bits)
        if bits == 32 and self.relu_at_32:
            x = F.relu(x)
        return self.conv(x)

    def extract(self) -> nn.Module:
        conv = copy.deepcopy(self.conv)
        bits = choice_bits(self.active)
        conv.set_bits(bits)
        return ReluAt32(conv) if bits == 32 and self.relu_at_32 else conv


def bits_point(name: str, bits: Sequence[int], kind: str) -> DecisionPoint:
    return DecisionPoint(name, tuple(bits_choice(b) for b in bits), kind)


class GraphBody(nn.Module):
    """Runs `layers` in order (a topological order of the graph): layer k reads the values at
    `reads[k]` (0 = the body's input, j = layer j-1's output); values nobody reads later are
    dropped as soon as they are used (`drops[k]`), so memory is that of the hand-written net."""

    def __init__(
        self,
        layers: Sequence[nn.Module],
        reads: Sequence[tuple[int, ...]],
        drops: Sequence[tuple[int, ...]],
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.reads = tuple(tuple(r) for r in reads)
        self.drops = tuple(tuple(d) for d in drops)

    def forward(self, x: Tensor) -> Tensor:
        values: list[Tensor | None] = [x]
        for layer, reads, drops in zip(self.layers, self.reads, self.drops, strict=True):
            # one read is the common case: no list built for it
            out = layer(values[reads[0]]) if len(reads) == 1 else layer(*[values[i] for i in reads])
            for i in drops:
                values[i] = None
            values.append(out)
        return values[-1]

    def extra_repr(self) -> str:
        return f"reads={list(self.reads)}"
