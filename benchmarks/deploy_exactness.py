"""How exactly a full-size network's Larq Compute Engine .tflite computes the PyTorch child, and
where it stops (needs the `deploy` extra, in its own virtualenv: README, Deployment).

    python benchmarks/deploy_exactness.py [--models meliusnet22 resnet18 resnet18_e]
                                          [--seeds 0 1 2] [--images 32]

The family tests check narrow networks to 1e-5 of the largest logit. At full width a binary
network is chaotic: a float rounding difference that flips the sign of one pre-activation near
zero changes a popcount by 2, and a random (untrained) network amplifies that through every
later block. Per base network (CIFAR-100 size, random weights, trained-looking BatchNorm
statistics, one seed each) this measures, on random images:

- the .tflite against the PyTorch child: images with the same top-1, and images whose logits
  agree to 1e-5 of the largest;
- the same for two float32 roundings of the PyTorch child itself (one image at a time against
  the batch, and float32 against float64): how sensitive the network is to rounding alone;
- for the first image beyond 1e-5: the first body block whose output differs, and, at the input
  of that block, the largest |.tflite - float64| and |PyTorch float32 - float64| relative to the
  largest value there: up to the first sign flip, both are float32 rounding.

A JSON line closes the output. Trained children: `lightnas deploy <folder> --verify` compares
the test split (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform

import numpy as np
import torch
from torch import nn

from lightnas.deploy.backend import versions
from lightnas.deploy.convert import convert_child, run_tflite
from lightnas.models import child, create_supernet

TOLERANCE = 1e-5  # of the largest |logit|, as the family tests
SHAPE, CLASSES = (3, 32, 32), 100


def trained_looking_batchnorms(net: nn.Module, seed: int) -> None:
    """BatchNorm statistics and affine parameters away from their init (mean 0, var 1), so the
    folded multiply-adds are not identities; the weights stay random."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(n, generator=g) * 0.6 - 0.3)


def base_child(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    supernet = create_supernet(name, CLASSES, "thumbnail")
    with torch.no_grad():
        trained_looking_batchnorms(supernet, seed)
    return child(supernet, supernet.space.default()).eval()


def prefix(net: nn.Module, blocks: int) -> nn.Module:
    """The stem and the first `blocks` body modules (their output: a feature map)."""
    return nn.Sequential(net.stem, *list(net.body)[:blocks]).eval()


def nhwc(t: torch.Tensor) -> np.ndarray:
    t = t.float()
    return (t.permute(0, 2, 3, 1) if t.dim() == 4 else t).numpy()


def relative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per image: max |a - b| / max |b|."""
    axes = tuple(range(1, a.ndim))
    return np.abs(a - b).max(axis=axes) / np.abs(b).max(axis=axes)


def agreement(got: np.ndarray, expected: np.ndarray) -> dict:
    return {
        "same_top1": float((got.argmax(1) == expected.argmax(1)).mean()),
        "within_tolerance": float((relative(got, expected) <= TOLERANCE).mean()),
    }


def references(net: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The PyTorch child's output: float32 batched, float32 one image at a time, float64."""
    with torch.no_grad():
        batched = nhwc(net(x))
        single = np.concatenate([nhwc(net(x[i : i + 1])) for i in range(len(x))])
        double = nhwc(copy.deepcopy(net).double()(x.double()))
    return batched, single, double


def tflite_output(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    return run_tflite(convert_child(net, SHAPE).flatbuffer, x.numpy())


def first_divergence(
    net: nn.Module, image: torch.Tensor, reference: nn.Module | None = None
) -> dict:
    """The first body block after which the .tflite of `net` and PyTorch's `reference` (default:
    `net`) differ beyond TOLERANCE, found by bisection over prefixes, and the rounding errors at
    its input."""
    reference = net if reference is None else reference
    low, high = 0, len(net.body)  # prefix(low) agrees (the stem), prefix(high) does not
    while high - low > 1:
        mid = (low + high) // 2
        with torch.no_grad():
            expected = nhwc(prefix(reference, mid)(image))
        if relative(tflite_output(prefix(net, mid), image), expected).max() <= TOLERANCE:
            low = mid
        else:
            high = mid
    batched, _, double = references(prefix(reference, low), image)
    converted = tflite_output(prefix(net, low), image)
    return {
        "block": high - 1,
        "module": type(list(net.body)[high - 1]).__name__,
        "blocks": len(net.body),
        "tflite_error_before": float(relative(converted, double).max()),
        "torch_error_before": float(relative(batched, double).max()),
    }


def measure(name: str, seed: int, images: int) -> dict:
    net = base_child(name, seed)
    x = torch.randn(images, *SHAPE, generator=torch.Generator().manual_seed(1 + seed))
    batched, single, double = references(net, x)
    got = tflite_output(net, x)
    row = {
        "network": name,
        "seed": seed,
        "images": images,
        "tflite": agreement(got, batched),
        "torch_single_image": agreement(single, batched),
        "torch_float64": agreement(batched, double),
    }
    off = np.flatnonzero(relative(got, batched) > TOLERANCE)
    if len(off):
        row["first_divergence"] = first_divergence(net, x[off[0] : off[0] + 1])
    return row


def print_table(rows: list[dict]) -> None:
    print(
        f"{'network':<12} {'seed':>4} {'tflite top-1':>12} {'<= 1e-5':>8} {'1-image':>8} "
        f"{'float64':>8}  first block off (tflite / torch error before it)"
    )
    for r in rows:
        where = "-"
        if "first_divergence" in r:
            d = r["first_divergence"]
            where = (
                f"{d['block']}/{d['blocks']} {d['module']} "
                f"({d['tflite_error_before']:.1e} / {d['torch_error_before']:.1e})"
            )
        print(
            f"{r['network']:<12} {r['seed']:>4} {r['tflite']['same_top1']:12.3f} "
            f"{r['tflite']['within_tolerance']:8.3f} "
            f"{r['torch_single_image']['within_tolerance']:8.3f} "
            f"{r['torch_float64']['within_tolerance']:8.3f}  {where}"
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["meliusnet22", "resnet18", "resnet18_e"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--images", type=int, default=32)
    args = parser.parse_args(argv)
    rows = [measure(name, seed, args.images) for name in args.models for seed in args.seeds]
    print_table(rows)
    print(
        "columns: share of images with the same top-1 / logits within 1e-5 of the largest, "
        ".tflite vs PyTorch; the same within-1e-5 share for PyTorch one image at a time and in "
        "float64 vs PyTorch batched"
    )
    return report("deploy_exactness", rows, tolerance=TOLERANCE)


def report(benchmark: str, rows: list[dict], **extra: object) -> dict:
    """Prints and returns the closing JSON line of a deployment benchmark: the machine, the
    library versions, `extra` and the rows."""
    result = {
        "benchmark": benchmark,
        "machine": platform.machine(),
        **extra,
        "versions": {"torch": torch.__version__, **versions()},
        "results": rows,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
