"""`lightnas space FILE`, end to end: the numbers it prints against an independent count (every
architecture of a small space enumerated, its child built and counted), and the graph it
writes (every decision point highlighted)."""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lightnas.models import child, create_supernet
from lightnas.models.graph import space_kwargs
from lightnas.models.graph.render import DECISION_FILL
from lightnas.scoring.cost_metrics import count_costs

ROOT = Path(__file__).resolve().parents[3]
SPACE = """\
version: 1
name: small
input: [3, 8, 8]
params: {width: 8}
nodes:
  - {name: stem, op: stem, type: thumbnail, channels: $width}
  - name: stage1.block1.conv
    choice:
      conv3x3: [{op: qconv, kernel: 3}, {op: bn}, {op: add, inputs: [bn, input]}]
      conv5x5: [{op: qconv, kernel: 5}, {op: bn}, {op: add, inputs: [bn, input]}]
      skip: identity
  - {name: stage1.down, op: qconv, kernel: 3, stride: 2, channels: 16, bits: [1, 2, 32]}
  - {name: stage2.block1.basic, op: basic_block, channels: 16, bits: [1, 32]}
  - {name: head, op: head}
"""


def lightnas_space(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lightnas", "space", *args], cwd=cwd, capture_output=True, text=True
    )


def printed_costs(out: str) -> dict[str, tuple[float, int]]:
    """{row: (OPs, params)} of the cost table."""
    found = re.findall(r"^(cheapest|base|largest)\s+(\S+)\s+(\d+)", out, re.MULTILINE)
    return {row: (float(ops), int(params)) for row, ops, params in found}


@pytest.mark.slow
@pytest.mark.e2e
def test_printed_numbers_equal_an_enumeration_of_every_architecture(tmp_path):
    path = tmp_path / "small.yml"
    path.write_text(SPACE)
    done = lightnas_space(str(path), "--param", "width=16", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    supernet = create_supernet(
        "graph", 10, "thumbnail", None, params={"width": 16}, **space_kwargs(path)
    )
    points = list(supernet.space)
    costs = {}
    for choices in itertools.product(*(p.choices for p in points)):
        arch = dict(zip(supernet.space.names, choices, strict=True))
        costs[choices] = count_costs(child(supernet, arch), (3, 8, 8))
    assert len(costs) == 3 * 3 * 3 == 27
    assert f"{len(points)} decision points, {len(costs)} architectures" in done.stdout
    cheapest = min(costs.values(), key=lambda c: c.ops)
    largest = max(costs.values(), key=lambda c: c.ops)
    base = costs[tuple(p.choices[0] for p in points)]
    printed = printed_costs(done.stdout)
    for row, expected in (("cheapest", cheapest), ("base", base), ("largest", largest)):
        ops, params = printed[row]
        assert ops == pytest.approx(expected.ops, rel=1e-5), row
        assert params == expected.params, row
    svg = (tmp_path / "small.svg").read_text()
    assert svg.count(f'fill="{DECISION_FILL.lower()}"') == len(points)
    for point in points:
        assert point.name in svg
    assert "graph: small.svg" in done.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_a_shipped_space_prints_its_size_and_base_network(tmp_path):
    file = ROOT / "configs" / "spaces" / "meliusnet22_bits.yml"
    done = lightnas_space(str(file), "-o", "m.dot", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    supernet = create_supernet("graph", 10, "thumbnail", None, **space_kwargs(file))
    size = math.prod(len(p.choices) for p in supernet.space)
    assert size == 2**34 * 4**3
    assert f"37 decision points, {size} architectures" in done.stdout
    base = count_costs(child(supernet, supernet.space.default()), (3, 32, 32))
    ops, params = printed_costs(done.stdout)["base"]
    assert ops == pytest.approx(base.ops, rel=1e-5) and params == base.params
    dot = (tmp_path / "m.dot").read_text()
    assert "stage2.transition.conv" in dot and "32bit | 4bit | 2bit | 1bit" in dot


def test_lightnas_space_ops_lists_every_op_and_the_docs_name_them(capsys):
    from lightnas.cli import main
    from lightnas.models.graph import OPS

    assert main(["space", "--ops"]) == 0
    listed = capsys.readouterr().out
    docs = (ROOT / "docs" / "spaces.md").read_text()
    for name in OPS.names():
        assert re.search(rf"^{name}\(", listed, re.MULTILINE), name
        assert f"`{name}`" in docs, name
    assert "qconv(channels=None, kernel, stride=1" in listed
