"""Costs of a network: parameters, model size, FLOPs, BOPs, OPs and measured latency.

Conventions (those of the BNN literature, e.g. Bi-Real Net and MeliusNet):

- FLOPs are full-precision multiply-accumulates (MACs) of `nn.Conv2d`, `nn.Linear` and of every
  `QConv2d` whose weights or activations are 32-bit.
- BOPs are the MACs of a `QConv2d` with both widths below 32, weighted by `w_bits * a_bits`:
  a 1-bit x 1-bit MAC is 1 BOP (one XNOR-popcount lane), a 4-bit x 2-bit MAC is 8 BOPs (the common
  mixed-precision convention).
- OPs = FLOPs + BOPs / 64, as a 64-bit CPU does 64 binary MACs per instruction.
- Only the MACs of convolutions and linear layers are counted; biases, BatchNorm, activations,
  pooling and residual additions are not.
- The classifier's MACs count by default (they are real work, and every search so far was
  scored with them). The published MeliusNet / BMXNet counter counted convolutions only:
  `count_costs(net, shape, linear_macs=False)` reproduces its numbers (for MeliusNet-22 at
  224x224 the classifier is 2.6e5 of 2.09e8 OPs, 0.1 %).

Every cost metric is registered in `COSTS` under one key, the spelling used everywhere
(metrics.jsonl, evaluation.json, TensorBoard's `cost/<key>`, `search.cost`): `params`,
`model_bits`, `flops`, `bops`, `ops`, `latency` (seconds) and `latency_table` (seconds, from a
search's per-op latency table, see `lightnas.scoring.latency`). A new metric is one decorated
function, e.g. in your own module:

    @register_cost("conv_layers", label="convs")
    def conv_layers(m: Measured) -> float:
        return sum(isinstance(x, nn.Conv2d) for x in m.net.modules())
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from time import perf_counter

import torch
from torch import Tensor, nn

from lightnas.binary import FULL_BITS
from lightnas.binary.layers import QConv2d
from lightnas.registry import Registry

BINARY_OPS_PER_OP = 64


@dataclass(frozen=True)
class Costs:
    """Static costs of one network for one input size."""

    params: int
    model_bits: int
    flops: int
    bops: int

    @property
    def ops(self) -> float:
        return self.flops + self.bops / BINARY_OPS_PER_OP

    @property
    def model_mbytes(self) -> float:
        return self.model_bits / 8 / 2**20

    def as_dict(self) -> dict[str, int | float]:
        return {
            "params": self.params,
            "model_bits": self.model_bits,
            "flops": self.flops,
            "bops": self.bops,
            "ops": self.ops,
        }


def _parameter_bits(module: nn.Module, name: str, p: nn.Parameter) -> int:
    """Storage bits of one parameter of `module`: quantized conv weights at their width."""
    if not (isinstance(module, QConv2d) and name == "weight"):
        return p.numel() * FULL_BITS
    bits = p.numel() * module.w_bits
    if module.w_bits == 1 and module.scaling == "mean":
        bits += module.out_channels * FULL_BITS  # one float scale per output channel
    return bits


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, model bits), each parameter once even if shared.

    A shared parameter is stored as its first owner (in `model.modules()` order) quantizes it.
    Frozen parameters count in the bits; buffers (BatchNorm statistics) do not.
    """
    params, bits, seen = 0, 0, set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            params += p.numel() if p.requires_grad else 0
            bits += _parameter_bits(module, name, p)
    return params, bits


def _layer_macs(module: nn.Module, output: Tensor) -> int:
    """MACs of one call for a batch of 1: every output element costs one MAC per weight input."""
    if isinstance(module, nn.Conv2d):
        # weight is (out_c, in_c / groups, kh, kw), so weight[0] is the fan-in of one output
        return output.numel() * module.weight[0].numel()
    return output.numel() * module.in_features


def _is_binary_mac(module: nn.Module) -> bool:
    return isinstance(module, QConv2d) and module.w_bits < FULL_BITS and module.a_bits < FULL_BITS


def _first_parameter(model: nn.Module) -> Tensor | None:
    return next(iter(model.parameters()), None)


def _zero_input(model: nn.Module, shape: Sequence[int], device: torch.device | None) -> Tensor:
    ref = _first_parameter(model)
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    if device is None:
        device = ref.device if ref is not None else torch.device("cpu")
    return torch.zeros(*shape, dtype=dtype, device=device)


def _in_eval(model: nn.Module) -> dict[nn.Module, bool]:
    """Put the model in eval mode and return every submodule's mode, to restore after."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    return modes


def _restore_modes(modes: dict[nn.Module, bool]) -> None:
    for m, training in modes.items():
        m.training = training


def forward_runs(model: nn.Module, input_shape: Sequence[int]) -> bool:
    """Whether one zero input of shape (C, H, W) passes through `model` (eval mode, no
    gradient): False where, say, the image is too small for the model's downsampling."""
    modes = _in_eval(model)
    try:
        with torch.no_grad():
            model(_zero_input(model, (1, *input_shape), None))
        return True
    except RuntimeError:
        return False
    finally:
        _restore_modes(modes)


def count_macs(
    model: nn.Module, input_shape: Sequence[int], linear_macs: bool = True
) -> tuple[int, int]:
    """(FLOPs, BOPs) of one forward pass of a single (C, H, W) input; `linear_macs=False` leaves
    out the linear layers (the classifier), as the published MeliusNet counter did."""
    totals = {"flops": 0, "bops": 0}
    counted = (nn.Conv2d, nn.Linear) if linear_macs else (nn.Conv2d,)

    def hook(module: nn.Module, _inputs: tuple, output: Tensor) -> None:
        macs = _layer_macs(module, output)
        if _is_binary_mac(module):
            totals["bops"] += macs * module.w_bits * module.a_bits
        else:
            totals["flops"] += macs

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, counted)]
    modes = _in_eval(model)
    try:
        with torch.no_grad():
            model(_zero_input(model, (1, *input_shape), None))
    finally:
        _restore_modes(modes)
        for h in handles:
            h.remove()
    return totals["flops"], totals["bops"]


def count_costs(model: nn.Module, input_shape: Sequence[int], linear_macs: bool = True) -> Costs:
    """Parameters, model bits, FLOPs and BOPs of `model` for one input of shape (C, H, W);
    `linear_macs=False`: FLOPs without the classifier (the published MeliusNet convention)."""
    params, bits = count_parameters(model)
    flops, bops = count_macs(model, input_shape, linear_macs)
    return Costs(params=params, model_bits=bits, flops=flops, bops=bops)


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    repeats: int = 20,
    warmup: int = 3,
    device: str | torch.device | None = None,
) -> float:
    """Median seconds per forward pass (eval mode, no grad) over `repeats` timed runs.

    The model must already live on `device`; by default the device of its parameters.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats!r} must be at least 1")
    x = _zero_input(
        model, (batch_size, *input_shape), None if device is None else torch.device(device)
    )
    sync = torch.cuda.synchronize if x.device.type == "cuda" else lambda: None
    modes = _in_eval(model)
    times = []
    try:
        with torch.no_grad():
            for _ in range(warmup):
                model(x)
            for _ in range(repeats):
                sync()
                start = perf_counter()
                model(x)
                sync()
                times.append(perf_counter() - start)
    finally:
        _restore_modes(modes)
    return statistics.median(times)


def _short(x: float) -> str:
    """1.2e8 rather than 1.2e+08."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def format_costs(costs: Costs) -> str:
    """One-line summary, e.g. 'params 1.23M | size 0.45 MB | FLOPs 1.2e8 | BOPs 3.4e9 | OPs ...'."""
    return " | ".join(
        [
            f"params {costs.params / 1e6:.2f}M",
            f"size {costs.model_mbytes:.2f} MB",
            f"FLOPs {_short(costs.flops)}",
            f"BOPs {_short(costs.bops)}",
            f"OPs {_short(costs.ops)}",
        ]
    )


# ---- the registry of cost metrics ------------------------------------------------------------
@dataclass
class Measured:
    """A network being measured; metrics read what they need, counted MACs are computed once."""

    net: nn.Module
    input_shape: tuple[int, ...]
    latency_batch: int = 1
    latency_repeats: int = 10

    @cached_property
    def counts(self) -> Costs:
        return count_costs(self.net, self.input_shape)


def format_count(x: float) -> str:
    """1.23M, 456K, 7.8G."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def format_bits(bits: float) -> str:
    nbytes = bits / 8
    return f"{nbytes / 2**20:.2f} MB" if nbytes >= 2**20 else f"{nbytes / 2**10:.1f} KB"


@dataclass(frozen=True)
class CostMetric:
    """One cost: its key, how to show it, and how to measure it on a network."""

    key: str
    label: str
    compute: Callable[[Measured], float] = field(repr=False)
    additive: bool = True
    """The network's cost is the sum of its parts' costs: the search adds it per choice."""
    fmt: Callable[[float], str] = field(default=format_count, repr=False)


COSTS: Registry[CostMetric] = Registry("cost metric", "search.cost")


def register_cost(
    key: str, label: str | None = None, additive: bool = True, fmt: Callable = format_count
) -> Callable[[Callable[[Measured], float]], Callable[[Measured], float]]:
    """Decorator registering `compute(measured) -> float` as the cost metric `key`."""

    def add(compute: Callable[[Measured], float]) -> Callable[[Measured], float]:
        COSTS.add(key, CostMetric(key, label or key, compute, additive, fmt))
        return compute

    return add


register_cost("params")(lambda m: m.counts.params)
register_cost("model_bits", "size", fmt=format_bits)(lambda m: m.counts.model_bits)
register_cost("flops", "FLOPs")(lambda m: m.counts.flops)
register_cost("bops", "BOPs")(lambda m: m.counts.bops)
register_cost("ops", "OPs")(lambda m: m.counts.ops)


@register_cost("latency", additive=False, fmt=lambda s: f"{s * 1e3:.3g} ms")
def latency(m: Measured) -> float:
    """Median seconds per forward pass on the network's device (not bit-reproducible)."""
    return measure_latency(m.net, m.input_shape, m.latency_batch, m.latency_repeats)


LATENCY_TABLE = "latency_table"


@register_cost(LATENCY_TABLE, "table latency", additive=False, fmt=lambda s: f"{s * 1e3:.3g} ms")
def latency_table(m: Measured) -> float | None:
    """Seconds from a search's per-op latency table (lightnas.scoring.latency): the sum of the
    measured latencies of an architecture's choices. A run with `search.cost: latency_table`
    measures the table once and looks every architecture up in it; a standalone network has no
    table: None."""
    return None


def measure_costs(
    net: nn.Module, input_shape: Sequence[int], keys: Sequence[str] | None = None, **options
) -> dict[str, float]:
    """{key: value} of the registered cost metrics `keys` (default: all) of `net`."""
    measured = Measured(net, tuple(input_shape), **options)
    return {k: COSTS[k].compute(measured) for k in (COSTS.names() if keys is None else keys)}
