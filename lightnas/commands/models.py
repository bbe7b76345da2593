"""`python -m lightnas.models NAME --input 3x32x32`: a supernet's decision points and costs."""

from __future__ import annotations

import argparse

from lightnas.models import STEMS, child, create_supernet, list_models
from lightnas.scoring.cost_metrics import count_costs, format_costs


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--input {text!r}: expected CxHxW, e.g. 3x32x32"
        ) from None
    return c, h, w


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightnas.models", description=__doc__)
    parser.add_argument(
        "name", choices=list_models(), metavar="NAME", help=", ".join(list_models())
    )
    parser.add_argument("--input", type=parse_shape, default=(3, 224, 224), help="CxHxW")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument(
        "--stem",
        default=None,
        choices=STEMS.names(),
        help="default by input size: thumbnail up to 64x64, imagenet above",
    )
    args = parser.parse_args(argv)
    stem = args.stem or ("thumbnail" if args.input[1] <= 64 else "imagenet")
    try:
        net = create_supernet(args.name, args.classes, stem, in_channels=args.input[0])
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    space = net.space
    print(f"{args.name}  stem={stem}  input={'x'.join(map(str, args.input))}")
    print(f"{len(space)} decision points, {space.size:.3g} architectures")
    for point in space:
        print(f"  {point.name:<28} {' | '.join(point.choices)}")
    base = child(net, space.default())
    costs = count_costs(base, args.input)
    print(f"base network: {format_costs(costs)}")
    # the MeliusNet / BMXNet tables count convolutions only
    published = count_costs(base, args.input, linear_macs=False).ops
    print(f"OPs without the classifier (the published convention): {published:.4g}")
    return 0
