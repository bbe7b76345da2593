"""Images/s of the search's shared-weight phase vs. the base network trained alone, and the time
of one CIFAR-sized search epoch (50k images) including the controller phase.

    python benchmarks/search_throughput.py [--device cpu|cuda] [--batch N] [--steps N]
        [--models meliusnet22 resnet18] [--channels-last] [--bf16] [--cudnn-benchmark]
        [--compile none|regional|full] [--baseline EARLIER_OUTPUT [--memory-tolerance 0.10]]

Per model (thumbnail stem, 32x32 inputs, 100 classes, synthetic tensors already on the device):
- search: `Engine.train_step` on the architectures of the search's training rule, by default
  the ENAS strategy's own (a sandwich: the largest child, the smallest and `sandwich_k` uniform
  ones, with in-place distillation); `--sampling controller` trains one child sampled by the
  controller per step, as before the sandwich default (the sampling is timed too, as in the
  real loop);
- child: the base architecture (first choice everywhere, e.g. MeliusNet-22 itself) extracted
  with `child()` and trained alone with the same optimizer, autocast and memory format;
- controller: `Engine.controller_phase` (one reward forward on a validation batch + a REINFORCE
  step per controller step), timed over a few steps and scaled to `--controller-steps`.
epoch_s = 50000 // batch * search step + controller phase (validation is not included).
Warm-up steps are excluded; CUDA is synchronised before and after each timed block. One more
step runs under torch.profiler: kernels launched (CUDA) or ATen operators (CPU) per step, the
fraction of the wall time the GPU is busy. Peak memory of one step that trains the largest
child (as many times as a step trains children): CUDA memory allocated on a GPU, the process's
peak resident memory on a CPU (Linux). With --baseline (an earlier run's
output, e.g. `python benchmarks/search_throughput.py > before.txt`), a setting whose peak memory
grew by more than --memory-tolerance fails the run (exit 1, one line per regression). With
--compile, a first pass over every (block, choice) compiles everything; its time is reported
(first_compile_s).
On CPU the defaults are small (batch 32, 3 steps) so the run takes a few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import re
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lightnas.config import Config, ExportConfig, ModelConfig, SearchConfig
from lightnas.data import DataOptions
from lightnas.engine.optim import make_optimizer
from lightnas.models import child
from lightnas.run.parts import build_engine, build_parts

MODELS = ("meliusnet22", "resnet18")
EPOCH_IMAGES = 50_000  # CIFAR-100's training set
NUM_CLASSES = 100
# per device type: batch, timed steps, warm-up steps, timed controller steps
DEFAULTS = {"cpu": (32, 3, 1, 2), "cuda": (128, 30, 5, 20)}
PROC_STATUS = Path("/proc/self/status")
GLIBC = ctypes.CDLL("libc.so.6") if sys.platform == "linux" else None
# what must match for two rows to be the same measurement
SETTING = (
    "model",
    "device",
    "batch",
    "channels_last",
    "bf16",
    "compile",
    "sampling",
    "children_per_step",
)


def _sync(device: torch.device):
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def timed(fn, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per call of `fn` over `steps` calls after `warmup` untimed ones."""
    sync = _sync(device)
    for _ in range(warmup):
        fn()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return (time.perf_counter() - start) / steps


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's allocator statistics, or on Linux the process's resident
    high-water mark (writing 5 to /proc/self/clear_refs resets VmHWM)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    elif PROC_STATUS.exists():
        gc.collect()
        if GLIBC is not None:  # give what earlier models freed back to the OS first
            GLIBC.malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak since `reset_peak_memory`: CUDA memory allocated by tensors, or the CPU process's
    peak resident memory (everything: weights, activations, Python); None where unknown."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    if not PROC_STATUS.exists():
        return None
    match = re.search(r"VmHWM:\s+(\d+) kB", PROC_STATUS.read_text())
    return int(match.group(1)) / 1024 if match else None


def measure_peak(step, device: torch.device) -> float | None:
    """Peak memory in MB of one call of `step`."""
    sync = _sync(device)
    sync()
    reset_peak_memory(device)
    step()
    sync()
    return peak_memory_mb(device)


def profile_step(step, device: torch.device) -> tuple[int, float | None]:
    """(kernels launched, device-busy fraction) of one search step: CUDA kernels and busy =
    their time / wall time on a GPU; on a CPU, the ATen operators run (busy is CUDA-only)."""
    cuda = device.type == "cuda"
    sync = _sync(device)
    sync()
    activities = [torch.profiler.ProfilerActivity.CPU]
    if cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        start = time.perf_counter()
        step()
        sync()
        wall = time.perf_counter() - start
    events = prof.events()
    if not cuda:
        return sum(1 for e in events if e.name.startswith("aten::")), None
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    busy = sum(e.device_time for e in kernels) / 1e6 / wall
    return len(kernels), busy


def make_config(args, model: str, device: str, batch: int) -> Config:
    return Config(
        model=ModelConfig(model, "thumbnail"),
        data=DataOptions(
            dataset="mock",
            image_size=32,
            num_classes=NUM_CLASSES,
            num_samples=2 * batch,
            val_size=batch,  # one validation batch, cycled by the controller phase
            batch_size=batch,
            augment=False,
            on_device=device.startswith("cuda"),
        ),
        search=SearchConfig(
            strategy="enas",
            controller_steps=args.controller_steps,
            sampling=args.sampling,
            sandwich_k=args.sandwich_k,
            sandwich_every=args.sandwich_every,
            # the largest child's outputs teach the others only where there is a sandwich
            inplace_distill=None if args.sampling is None else args.sampling == "sandwich",
        ),
        export=ExportConfig(formats=[], graph_formats=[]),
        device=device,
        channels_last=args.channels_last,
        bf16=args.bf16,
        compile=args.compile,
        progress=False,
    )


def measure(args, model: str, device_name: str) -> dict:
    kind = torch.device(device_name).type
    batch, steps, warmup, ctrl_timed = DEFAULTS[kind]
    batch = args.batch or batch
    steps = args.steps or steps
    warmup = warmup if args.warmup is None else args.warmup
    ctrl_timed = ctrl_timed if args.controller_timed is None else args.controller_timed
    ctrl_timed = min(ctrl_timed, args.controller_steps)
    cfg = make_config(args, model, device_name, batch)
    started = time.perf_counter()
    parts = build_parts(cfg)
    engine = build_engine(cfg, parts)
    setup_s = time.perf_counter() - started
    device = engine.placement.device
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(NUM_CLASSES, (batch,), generator=gen).to(device)

    # the search's shared-weight phase: sample an architecture, train the supernet on it
    def search_step() -> None:
        engine.train_step(engine.training_architectures(cfg.search.warmup_epochs), x, y)

    compile_started = time.perf_counter()
    if args.compile != "none":  # one pass over every (block, choice): everything compiles here
        for arch in (engine.sampler.largest, engine.sampler.smallest):
            engine.train_step([arch], x, y)
    compile_s = time.perf_counter() - compile_started
    search_s = timed(search_step, steps, warmup, device)
    kernels, busy = profile_step(search_step, device)
    # the worst case, the same whatever the controller samples: each child of a whole step the
    # largest
    sandwich = engine.sampler.rule.sampling == "sandwich"
    children = 2 + engine.sampler.k if sandwich else 1
    largest = [engine.sampler.largest] * children
    peak = measure_peak(lambda: engine.train_step(largest, x, y), device)

    # the base network trained alone
    net = child(engine.supernet, engine.supernet.space.default())
    net.to(device=device, memory_format=engine.placement.memory_format).train()
    optimizer = make_optimizer(cfg.optim, net)
    x_child = x.to(memory_format=engine.placement.memory_format)

    def child_step() -> None:
        autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if cfg.bf16
            else contextlib.nullcontext()
        )
        with autocast:
            loss = F.cross_entropy(net(x_child).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    child_s = timed(child_step, steps, warmup, device)

    # the controller phase, as run_epoch sets it up (validation batches cycled)
    engine.evaluator.restart_reward_batches()
    ctrl_s = 0.0
    if ctrl_timed:
        ctrl_s = timed(
            lambda: engine.controller_phase(cfg.search.warmup_epochs, 1), ctrl_timed, 1, device
        )
    steps_per_epoch = EPOCH_IMAGES // batch
    search_epoch_s = steps_per_epoch * search_s
    controller_phase_s = ctrl_s * cfg.search.controller_steps
    return {
        "model": model,
        "device": device_name,
        "batch": batch,
        "steps": steps,
        "warmup": warmup,
        "channels_last": cfg.channels_last,
        "bf16": cfg.bf16,
        "setup_s": setup_s,
        "compile": args.compile,
        "sampling": engine.sampler.rule.sampling,
        "children_per_step": engine.sampler.children_per_step(),
        "first_compile_s": compile_s,
        "kernels_per_step": kernels,
        "device_busy": busy,
        "peak_memory_mb": peak,
        "peak_memory_of": "cuda allocated" if kind == "cuda" else "process resident",
        "search_step_s": search_s,
        "search_img_s": batch / search_s,
        "child_step_s": child_s,
        "child_img_s": batch / child_s,
        "search_vs_child": search_s / child_s,
        "controller_step_s": ctrl_s,
        "controller_steps": cfg.search.controller_steps,
        "controller_steps_timed": ctrl_timed,
        "controller_phase_s": controller_phase_s,
        "epoch_images": steps_per_epoch * batch,
        "search_epoch_s": search_epoch_s,
        "epoch_incl_controller_s": search_epoch_s + controller_phase_s,
        "child_epoch_s": steps_per_epoch * child_s,
    }


def read_baseline(path: str) -> list[dict]:
    """The rows of the last JSON line in `path` (an earlier run's output, redirected)."""
    lines = [line for line in Path(path).read_text().splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"error: --baseline {path} holds no JSON line of this benchmark")
    return json.loads(lines[-1])["results"]


def memory_regressions(rows: list[dict], baseline: list[dict], tolerance: float) -> list[str]:
    """One line per row whose peak memory grew by more than `tolerance` over the baseline row
    of the same setting (rows without a baseline or a figure are not compared)."""
    before = {tuple(r.get(k) for k in SETTING): r.get("peak_memory_mb") for r in baseline}
    found = []
    for r in rows:
        old, new = before.get(tuple(r.get(k) for k in SETTING)), r["peak_memory_mb"]
        if old and new and new > old * (1 + tolerance):
            setting = " ".join(f"{k}={r.get(k)}" for k in SETTING)
            found.append(
                f"peak memory regression: {setting}: {new:.0f} MB against {old:.0f} MB "
                f"(+{new / old - 1:.0%}, tolerance {tolerance:.0%})"
            )
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--batch", type=int, default=None, help="default: cpu 32, cuda 128")
    parser.add_argument("--steps", type=int, default=None, help="timed steps; cpu 3, cuda 30")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps; cpu 1, cuda 5")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--controller-steps", type=int, default=SearchConfig.controller_steps)
    parser.add_argument(
        "--controller-timed", type=int, default=None, help="controller steps timed; cpu 2, cuda 20"
    )
    parser.add_argument("--compile", default="none", choices=("none", "regional", "full"))
    parser.add_argument(
        "--sampling",
        default=None,
        choices=("controller", "uniform", "sandwich"),
        help="children per step: one (controller, uniform) or 2 + sandwich_k (sandwich, with "
        "in-place distillation); default: the search's default rule",
    )
    parser.add_argument(
        "--sandwich-k",
        type=int,
        default=SearchConfig.sandwich_k,
        help="uniform children of a sandwich step (default: the search's default)",
    )
    parser.add_argument(
        "--sandwich-every",
        type=int,
        default=SearchConfig.sandwich_every,
        help="a whole sandwich every n-th step, the uniform children alone between (default: "
        "the search's default; time a multiple of n steps)",
    )
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (meant for CUDA)")
    parser.add_argument(
        "--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True"
    )
    parser.add_argument(
        "--baseline",
        help="an earlier run's output: exit 1 if a setting's peak memory grew beyond tolerance",
    )
    parser.add_argument(
        "--memory-tolerance", type=float, default=0.10, help="allowed growth (default 0.10)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    devices = (
        [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    started = time.perf_counter()
    rows = [measure(args, m, d) for d in devices for m in args.models]
    print(
        f"{'model':<12} {'device':<6} {'batch':>5} {'search img/s':>12} {'child img/s':>11} "
        f"{'children':>8} {'ratio':>5} {'ctrl s':>7} {'epoch s':>8} {'kernels':>7} {'busy':>5} "
        f"{'peak MB':>7}"
    )
    for r in rows:
        busy = "-" if r["device_busy"] is None else f"{r['device_busy']:.2f}"
        peak = "-" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:.0f}"
        print(
            f"{r['model']:<12} {r['device']:<6} {r['batch']:>5} {r['search_img_s']:>12.1f} "
            f"{r['child_img_s']:>11.1f} {r['children_per_step']:>8.2f} "
            f"{r['search_vs_child']:>5.2f} "
            f"{r['controller_phase_s']:>7.1f} {r['epoch_incl_controller_s']:>8.1f} "
            f"{r['kernels_per_step']:>7} {busy:>5} {peak:>7}"
        )
    print(
        f"epoch s = {EPOCH_IMAGES // 1000}k images of search steps + the controller phase "
        f"({args.controller_steps} reward evaluations); ratio = search step (the training rule's "
        f"children) / a step of the base network trained alone"
    )
    result = {
        "benchmark": "search_throughput",
        "results": rows,
        "wall_s": time.perf_counter() - started,
    }
    print(json.dumps(result))
    if args.baseline:
        regressions = memory_regressions(rows, read_baseline(args.baseline), args.memory_tolerance)
        for line in regressions:
            print(line, file=sys.stderr)
        if regressions:
            raise SystemExit(1)
    return result


if __name__ == "__main__":
    main()
