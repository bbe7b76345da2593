"""Forward+backward time of a supernet set to an architecture vs. the extracted child alone.

    python benchmarks/supernet_overhead.py [--batch 64] [--repeats 8] [--device cpu|cuda]

Repetitions are interleaved in ABBA order (supernet, child, child, supernet, ...) so drift and
order effects hit both equally; the ratio of medians is printed (target <= 1.05) and a JSON line
closes the output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from lightnas.models import child, create_supernet

MODELS = ("meliusnet22", "resnet18")


def step_time(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    sync()
    return time.perf_counter() - start


def measure(name: str, batch: int, repeats: int, device: str) -> dict:
    torch.manual_seed(0)
    supernet = create_supernet(name, 100, "thumbnail").to(device).train()
    arch = supernet.space.sample(torch.Generator().manual_seed(0))
    sub = child(supernet, arch).to(device).train()
    supernet.set_architecture(arch)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(100, (batch,), device=device)
    times = {"supernet": [], "child": []}
    pair = [("supernet", supernet), ("child", sub)]
    for i in range(repeats + 2):
        # ABBA order: whichever runs second in a round measured a few % slower on CPU
        for key, net in pair if i % 2 == 0 else pair[::-1]:
            t = step_time(net, x, y)
            net.zero_grad(set_to_none=True)
            if i >= 2:  # the first two rounds warm up allocators and kernels
                times[key].append(t)
    sup, ch = statistics.median(times["supernet"]), statistics.median(times["child"])
    return {
        "model": name,
        "device": device,
        "batch": batch,
        "supernet_s": sup,
        "child_s": ch,
        "ratio": sup / ch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--device", default=None, help="default: cpu, and cuda when available")
    args = parser.parse_args()
    devices = (
        [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    rows = [measure(m, args.batch, args.repeats, d) for d in devices for m in MODELS]
    print(f"{'model':<12} {'device':<6} {'supernet s':>11} {'child s':>9} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['model']:<12} {r['device']:<6} {r['supernet_s']:>11.4f} {r['child_s']:>9.4f} "
            f"{r['ratio']:>6.3f}"
        )
    print(json.dumps({"benchmark": "supernet_overhead", "results": rows}))


if __name__ == "__main__":
    main()
