"""File sizes of a base network's exports: the float trainable safetensors vs the packed 1-bit
deployment file, beside the model size (binary weights at 1 bit, the rest at 32).

    python benchmarks/packed_size.py [--model meliusnet22] [--sizes cifar100 imagenet]

`cifar100` is the thumbnail stem at 3x32x32 with 100 classes, `imagenet` the grouped stem at
3x224x224 with 1000 classes. It also checks that the unpacked network computes exactly the float
child's outputs. A JSON line closes the output.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from lightnas.export import export_child, load_child, model_info
from lightnas.models import child, create_supernet, list_models
from lightnas.scoring.cost_metrics import count_costs

SIZES = {"cifar100": ("thumbnail", (3, 32, 32), 100), "imagenet": ("grouped", (3, 224, 224), 1000)}


def measure(name: str, size: str, out_dir: Path) -> dict:
    stem, shape, classes = SIZES[size]
    torch.manual_seed(0)
    supernet = create_supernet(name, classes, stem)
    arch = supernet.space.default()
    net = child(supernet, arch).eval()
    info = model_info(name, classes, stem, None, {}, shape)
    paths = export_child(net, arch, info, out_dir / size, "base", ["packed"])
    x = torch.randn(2, *shape)
    with torch.no_grad():
        exact = torch.equal(load_child(paths["packed"])(x), net(x))
    float_bytes, packed_bytes = (paths[k].stat().st_size for k in ("safetensors", "packed"))
    model_bytes = count_costs(net, shape).model_bits / 8
    return {
        "model": name,
        "size": size,
        "float_bytes": float_bytes,
        "packed_bytes": packed_bytes,
        "model_bytes": model_bytes,
        "compression": float_bytes / packed_bytes,
        "packed_vs_model": packed_bytes / model_bytes,
        "outputs_equal": exact,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="meliusnet22", choices=list_models())
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(args.model, size, Path(tmp)) for size in args.sizes]
    print(
        f"{'model':<12} {'size':<9} {'float MB':>9} {'packed MB':>10} {'ratio':>6} {'vs bits':>8}"
    )
    for r in rows:
        print(
            f"{r['model']:<12} {r['size']:<9} {r['float_bytes'] / 1e6:9.2f} "
            f"{r['packed_bytes'] / 1e6:10.2f} {r['compression']:6.2f} {r['packed_vs_model']:8.3f}"
        )
    result = {"benchmark": "packed_size", "results": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
