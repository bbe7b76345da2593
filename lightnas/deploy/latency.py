"""One (decision point, choice) of a search space timed with Larq Compute Engine: the op
converted alone into a .tflite (its 1-bit convs LCE binary convs) at the input shape it sees in
the network, timed with LCE's interpreter at batch 1, as an entry of the latency table that
`search.latency_table.csv` reads (lightnas.scoring.latency; `lightnas latency-table --engine
lce`). Run on a Raspberry Pi or a phone, a search then optimizes real binary latencies.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

from lightnas.deploy.benchmark import kernels, time_tflite
from lightnas.deploy.convert import convert_child
from lightnas.scoring.latency import Block, Entry


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
