"""Timing a .tflite with Larq Compute Engine's interpreter, saying which kernels ran.

LCE's fast binary kernels (NEON assembly BGEMM) are for 64-bit ARM (a Raspberry Pi 4/5, a
phone). Elsewhere, x86_64 included, its binary convs run portable C++ kernels that are not
optimized for speed: such a time checks that the file runs, it is not a deployment figure.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass

import numpy as np

from lightnas.deploy.convert import grouped_binary_convs, interpreter

ARM64 = ("aarch64", "arm64")


@dataclass(frozen=True)
class Timing:
    """The median latency of one image, and how it was measured."""

    median_s: float
    threads: int
    warmup: int
    repeats: int
    kernels: str
    machine: str
    deployment_figure: bool
    """False where LCE's optimized kernels do not exist (not ARM64) or the reference was asked."""

    def describe(self) -> str:
        line = (
            f"latency: {self.median_s * 1e3:.3f} ms per image (median of {self.repeats} after "
            f"{self.warmup} warm-up, {self.threads} thread{'s' if self.threads > 1 else ''}, "
            f"{self.machine}); kernels: {self.kernels}"
        )
        if not self.deployment_figure:
            line += "; a correctness run, not a deployment figure"
        return line


def kernels(reference: bool, machine: str | None = None, grouped: bool = False) -> tuple[str, bool]:
    """(which binary conv kernels LCE runs, whether its time is a deployment figure); `grouped`:
    the file has grouped binary convs, which run LCE's indirect BGEMM kernels."""
    machine = machine or platform.machine()
    if reference:
        return "LCE reference bconv kernel (asked for)", False
    indirect = " (indirect BGEMM: grouped binary convs)" if grouped else ""
    if machine.lower() in ARM64:
        return f"LCE optimized ARM64 kernels{indirect}", True
    return (
        f"LCE portable reference kernels{indirect} (no optimized binary kernels on {machine})",
        False,
    )


def time_tflite(
    flatbuffer: bytes, threads: int = 1, warmup: int = 5, repeats: int = 50, reference: bool = False
) -> Timing:
    """The median wall time of one inference of `flatbuffer` on a random input."""
    grouped = grouped_binary_convs(flatbuffer) > 0
    runner = interpreter(flatbuffer, threads, reference, grouped).interpreter
    shape = runner.input_shapes[0]
    image = [np.random.default_rng(0).standard_normal(shape, dtype=np.float32)]
    for _ in range(warmup):
        runner.predict(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.predict(image)
        times.append(time.perf_counter() - start)
    which, figure = kernels(reference, grouped=grouped)
    machine = f"{platform.machine()} {platform.processor() or platform.system()}".strip()
    return Timing(statistics.median(times), threads, warmup, repeats, which, machine, figure)
