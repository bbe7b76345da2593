"""`lightnas latency-table --engine lce`: the per-op latency table of a search space measured
with Larq Compute Engine on this machine, in the `latency_table.csv` format that
`search.latency_table.csv` reads (lightnas/latency.py).

Every (decision point, choice) is extracted, converted alone into a .tflite (its 1-bit convs LCE
binary convs) at the input shape it sees in the network, and timed with LCE's interpreter at
batch 1: run on a Raspberry Pi or a phone, the search then optimizes real binary latencies.
A k-bit choice (no LCE kernel) is timed as `lightnas deploy --fallback float` would run it.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

from lightnas.config import Config
from lightnas.deploy.benchmark import kernels, time_tflite
from lightnas.deploy.convert import convert_child
from lightnas.evaluate import build_eval_data
from lightnas.latency import Block, Entry, LatencyCostTable, LatencyTable, LatencyTableOptions
from lightnas.runs import build_supernet

ENGINES = ("lce", "torch")


def lce_measure(threads: int, warmup: int, repeats: int) -> tuple[Callable[[Block], Entry], str]:
    """(the measurement of one block with LCE's interpreter, the entries' source)."""
    which, _ = kernels(reference=False)
    source = f"LCE interpreter on {platform.machine()}, {threads} thread(s): {which}"

    def measure(block: Block) -> Entry:
        # a k-bit choice has no LCE kernel: it costs what its float fallback costs to run
        deployment = convert_child(block.op, block.input_shape, fallback="float")
        seconds = time_tflite(deployment.flatbuffer, threads, warmup, repeats).median_s
        return Entry(block.point.name, block.point.kind, block.choice, seconds, source)

    return measure, source


def measure_latency_table(
    cfg: Config, engine: str, threads: int = 1, warmup: int = 3, repeats: int = 20
) -> tuple[LatencyTable, str]:
    """(the latency table of `cfg`'s supernet measured by `engine`, where its entries come from)."""
    data = build_eval_data(cfg, "cpu")
    supernet = build_supernet(cfg, data.num_classes, data.input_shape[0]).eval()
    base = cfg.search.latency_table
    options = LatencyTableOptions(repeats, warmup, 1 if engine == "lce" else base.batch_size)
    if engine == "lce":
        measure, source = lce_measure(threads, warmup, repeats)
    else:
        options.functions = dict(base.functions)
        measure, source = None, "PyTorch on cpu (binary convs emulated in float)"
    costs = LatencyCostTable(supernet, data.input_shape, options, measure=measure)
    return costs.latency, source
