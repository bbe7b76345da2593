"""Bad space files: one line naming the file, the line and what is wrong (and what is valid),
exit code 2, nothing written; from `lightnas space` and from a search's config alike."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from helpers.runs import tiny_config

from lightnas.cli import main, search_main

HEAD = """\
version: 1
name: t
input: [3, 8, 8]
nodes:
  - {name: stem, op: stem, type: thumbnail, channels: 8}
"""  # lines 1-5; the cases' nodes start on line 6
TAIL = "  - {name: head, op: head}\n"

# case: (nodes after the stem (from line 6), the whole file instead, expected text, its line)
CASES = {
    "unknown op": (
        "  - {name: a, op: qconvv, kernel: 3}\n",
        None,
        "node a: op 'qconvv' is not known; valid: add, avgpool, basic_block",
        6,
    ),
    "input naming no node": (
        "  - {name: a, op: qconv, kernel: 3, inputs: [stme]}\n",
        None,
        "node a: input 'stme' names no node (did you mean stem?)",
        6,
    ),
    "cycle": (
        "  - {name: a, op: qconv, kernel: 3, inputs: [b]}\n  - {name: b, op: relu}\n",
        None,
        "cycle: a -> b -> a",
        6,
    ),
    "dangling node": (
        "  - {name: side, op: relu}\n  - {name: a, op: qconv, kernel: 3, inputs: [stem]}\n",
        None,
        "node side is dangling: no node reads its output",
        6,
    ),
    "channels differ at an add": (
        "  - {name: a, op: qconv, kernel: 3, channels: 16}\n"
        "  - {name: sum, op: add, inputs: [a, stem]}\n",
        None,
        "node sum (add): a gives (16, 8, 8) but stem gives (8, 8, 8) (channels differ); "
        "add needs inputs of one shape",
        7,
    ),
    "spatial sizes differ at a concat": (
        "  - {name: a, op: qconv, kernel: 3, stride: 2}\n"
        "  - {name: cat, op: concat, inputs: [stem, a]}\n",
        None,
        "node cat (concat): stem gives (8, 8, 8) but a gives (8, 4, 4) (spatial size differ)",
        7,
    ),
    "candidates of different shapes": (
        "  - name: pick\n"
        "    choice:\n"
        "      conv3x3: {op: qconv, kernel: 3}\n"
        "      strided: {op: qconv, kernel: 3, stride: 2}\n",
        None,
        "choice pick: candidate conv3x3 gives (8, 8, 8) but strided gives (8, 4, 4)",
        6,
    ),
    "skip beside a shape-changing candidate": (
        "  - name: pick\n"
        "    choice: {wide: {op: qconv, kernel: 3, channels: 16}, skip: identity}\n",
        None,
        "choice pick: candidate wide gives (16, 8, 8) but skip gives (8, 8, 8)",
        6,
    ),
    "duplicate names": (
        "  - {name: a, op: relu}\n  - {name: a, op: relu}\n",
        None,
        "duplicate node name 'a' (first at line 6)",
        7,
    ),
    "repeat: 0": (
        "  - {repeat: 0, name: 'block{i}', nodes: [{name: a, op: relu}]}\n",
        None,
        "group 'block{i}': repeat: 0 must be a whole number >= 1",
        6,
    ),
    "repeat without {i}": (
        "  - {repeat: 2, name: block, nodes: [{name: a, op: relu}]}\n",
        None,
        "repeat: 2 needs '{i}' in its name",
        6,
    ),
    "unknown argument": (
        "  - {name: a, op: qconv, kernal: 3}\n",
        None,
        "node a (qconv): op qconv takes no argument 'kernal'; valid: channels, kernel, stride",
        6,
    ),
    "missing argument": (
        "  - {name: a, op: qconv, channels: 8}\n",
        None,
        "node a (qconv): op qconv needs `kernel:`",
        6,
    ),
    "bad argument value": (
        "  - {name: a, op: qconv, kernel: -1}\n",
        None,
        "qconv.kernel: -1 is not valid; valid: a whole number >= 1",
        6,
    ),
    "bad bit width": (
        "  - {name: a, op: qconv, kernel: 3, bits: [1, 3]}\n",
        None,
        "qconv.bits: [1, 3] is not valid; valid: a bit width: 1, 2, 4, 8, 32",
        6,
    ),
    "unknown stem": (
        "  - {name: a, op: stem, type: tiny, channels: 8}\n",
        None,
        "stem.type: 'tiny' is not valid; valid: one of grouped, imagenet, thumbnail",
        6,
    ),
    "add of one input": (
        "  - {name: a, op: add}\n",
        None,
        "node a (add): reads two or more inputs (inputs: [a, b]), got 1",
        6,
    ),
    "two inputs to a conv": (
        "  - {name: a, op: qconv, kernel: 3, inputs: [stem, stem]}\n",
        None,
        "node a (qconv): reads one input, got 2 (stem, stem): merge them first",
        6,
    ),
    "skip: true where the shape changes": (
        "  - {name: a, op: basic_block, channels: 16, stride: 2, skip: true}\n",
        None,
        "skip: true, but the block maps 8 channels to 16 with stride 2",
        6,
    ),
    "decision point inside a candidate": (
        "  - name: pick\n"
        "    choice:\n"
        "      inner: [{name: b, op: qconv, kernel: 3, bits: [1, 32]}]\n"
        "      skip: identity\n",
        None,
        "choice pick, candidate inner: node b is a decision point inside a candidate; nested",
        8,
    ),
    "unknown parameter": (
        "  - {name: a, op: qconv, kernel: 3, channels: $width}\n",
        None,
        "unknown parameter '$width'; valid: none (declare them under params:)",
        6,
    ),
    "input too small": (
        "  - {name: a, op: maxpool, kernel: 16}\n",
        None,
        "node a (maxpool) does not run on input (8, 8, 8)",
        6,
    ),
    "improvement wider than its input": (
        "  - {name: a, op: improvement_block, growth: 16}\n",
        None,
        "improvement_block.growth=16 exceeds its 8 inputs",
        6,
    ),
    "bad candidate name": (
        "  - name: pick\n    choice: {3x3: {op: qconv, kernel: 3}, skip: identity}\n",
        None,
        "choice pick: candidate name '3x3' must start with a letter",
        6,
    ),
    "reserved name": ("  - {name: input, op: relu}\n", None, "'input' is reserved", 6),
    "reserved candidate name": (
        "  - name: pick\n    choice: {train: {op: relu}, skip: identity}\n",
        None,
        "choice pick: candidate name 'train' is reserved; rename it",
        6,
    ),
    "too many nodes": (
        "  - repeat: 1000\n"
        "    name: 'a{i}'\n"
        "    nodes: [{repeat: 1000, name: 'b{i}', nodes: [{name: c, op: relu}]}]\n",
        None,
        "group 'a{i}' expands to more than 100000 nodes",
        6,
    ),
    "alias bomb": (
        None,
        "version: 1\ntemplates:\n  - &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"  - &{b} [{', '.join([f'*{a}'] * 10)}]\n"
            for a, b in zip("abcdef", "bcdefg", strict=True)
        )
        + "nodes: [{op: head}]\n",
        "the file expands to more than 1000000 values (YAML aliases)",
        None,
    ),
    "key given twice": ("  - {name: a, op: relu, op: bn}\n", None, "key 'op' appears twice", 6),
    "no head": (None, HEAD, "the output node stem gives (8, 8, 8), not the class scores (10,)", 5),
    "version missing": (
        None,
        "name: t\nnodes: [{op: head}]\n",
        "version: None is not supported; valid: 1",
        1,
    ),
    "unknown top-level key": (
        None,
        "version: 1\nnode: []\n",
        "the file: unknown key 'node'; valid: version, name, description, input, params",
        1,
    ),
    "no nodes": (None, "version: 1\nnodes: []\n", "nodes: must be a non-empty list of nodes", 1),
    "not YAML": (None, "version: 1\nnodes: [{op: head}\n", "not valid YAML", 3),
}


def space_file(tmp_path: Path, case: str) -> Path:
    nodes, whole, _, _ = CASES[case]
    path = tmp_path / "bad.yml"
    path.write_text(whole if whole is not None else HEAD + nodes + TAIL)
    return path


def test_there_are_at_least_15_cases():
    assert len(CASES) >= 15


def test_the_base_of_the_cases_is_valid(tmp_path, capsys):
    path = tmp_path / "good.yml"
    path.write_text(HEAD + "  - {name: a, op: qconv, kernel: 3}\n" + TAIL)
    assert main(["space", str(path), "-o", str(tmp_path / "good.svg")]) == 0
    assert "1 architectures" in capsys.readouterr().out


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_space_file_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys):
    path = space_file(tmp_path, case)
    out = tmp_path / "graph.svg"
    assert main(["space", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    _, _, text, line = CASES[case]
    where = f"{path}, line {line}" if line else str(path)
    assert lines[0].startswith(f"error: {where}: "), lines[0]
    assert text in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yml"]


@pytest.mark.parametrize(
    ("model", "text"),
    [
        ({"name": "graph", "file": "BAD"}, "line 6: node a: op 'qconvv' is not known; valid: add"),
        ({"name": "graph"}, "model.name=graph needs model.file: a space file"),
        ({"name": "graph", "file": "missing.yml"}, "space file missing.yml does not exist"),
        ({"name": "meliusnet22", "file": "BAD"}, "model.file is read by model.name=graph only"),
        (
            {"name": "graph", "file": "GOOD", "kwargs": {"params": {"width": 4}}},
            "params: the space has no parameter 'width'; valid: none",
        ),
    ],
)
def test_a_search_on_a_bad_space_is_one_line_exit_2_and_nothing_written(
    model, text, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "BAD").write_text(HEAD + CASES["unknown op"][0] + TAIL)
    (tmp_path / "GOOD").write_text(HEAD + "  - {name: a, op: qconv, kernel: 3}\n" + TAIL)
    cfg = tiny_config(tmp_path, model={"stem": "thumbnail", "kwargs": {}, **model})
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(cfg))
    assert search_main(["-c", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0], err
    assert not (tmp_path / "trainings").exists()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["-o", "x.txt"], "--output x.txt: unknown graph format; valid: .png, .svg, .pdf, .dot"),
        (["-o", "missing/x.svg"], "--output missing/x.svg: the folder missing does not exist"),
        (["--classes", "0"], "--classes=0 must be >= 1"),
        (["--stem", "tiny"], "model.stem='tiny' is not known; valid: grouped, imagenet, thumbnail"),
        (["--param", "width"], "--param 'width': write it as NAME=VALUE"),
    ],
)
def test_bad_options_of_lightnas_space(args, text, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "good.yml"
    path.write_text(HEAD + TAIL)
    assert main(["space", str(path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.yml"]


def test_the_cases_are_well_formed():
    for case, (nodes, whole, _, _) in CASES.items():
        assert (nodes is None) != (whole is None), case
        textwrap.dedent(whole or nodes)
