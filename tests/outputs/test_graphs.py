import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT
from helpers.runs import tiny_config

from lightnas.cli import search_main
from lightnas.models import create_supernet
from lightnas.outputs import graphs
from lightnas.outputs.checkpoint import load_checkpoint
from lightnas.outputs.graphs import (
    LEGEND_LABELS,
    PALETTE,
    architecture_to_dot,
    blocks_summary,
    choice_category,
    dot_available,
    read_logged_architecture,
    render_dot,
    render_png_bytes,
    write_architecture_files,
)
from lightnas.search.space import Architecture, DecisionPoint, SearchSpace

SCRIPT = ROOT / "visualization" / "color_graphs.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STATS = {"val_acc": 0.91, "OPs": 1.2e8}


def melius_arch() -> Architecture:
    dense, improvement = ("conv3x3", "conv1x1"), ("conv3x3", "identity")
    points = [
        DecisionPoint(f"stage{s}.block{b}.{kind}", choices, kind)
        for s in (1, 2)
        for b in (1, 2)
        for kind, choices in (("dense", dense), ("improvement", improvement))
    ]
    space = SearchSpace("melius_test", points)
    return space.from_indices([0, 1, 1, 0, 1, 1, 0, 0])


def resnet_arch() -> Architecture:
    choices = ("1bit", "2bit", "4bit", "8bit", "32bit", "skip")
    points = [DecisionPoint(f"stage1.block{b}.basic", choices, "basic") for b in range(1, 7)]
    return SearchSpace("resnet_test", points).from_indices(range(6))


def node_lines(dot: str) -> dict[str, str]:
    """Decision point name → its node's DOT line."""
    lines = re.findall(r"^\s*p\d+ \[.*$", dot, flags=re.M)
    return {re.search(r'label="([^\\]+)\\n', line).group(1): line for line in lines}


@pytest.fixture
def no_dot(monkeypatch):
    """Simulate a machine without Graphviz's `dot`, with the once-per-process warning re-armed."""
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda cmd, *a, **k: None if cmd == "dot" else real_which(cmd, *a, **k)
    )
    monkeypatch.setattr(graphs, "_warned", set())


@pytest.mark.parametrize(
    "choice, category",
    [
        ("conv3x3", "binary"),
        ("1bit", "binary"),
        ("conv1x1", "replaced"),
        ("identity", "skipped"),
        ("skip", "skipped"),
        ("2bit", "higher_precision"),
        ("4bit", "higher_precision"),
        ("8bit", "higher_precision"),
        ("32bit", "higher_precision"),
        ("maxpool3x3", "other"),
        ("bit", "other"),
    ],
)
def test_choice_category(choice, category):
    assert choice_category(choice) == category


@pytest.mark.parametrize("arch", [melius_arch(), resnet_arch()], ids=["melius", "resnet"])
def test_dot_has_one_coloured_node_per_point(arch):
    dot = architecture_to_dot(arch, title="my run", stats=STATS)
    nodes = node_lines(dot)
    assert list(nodes) == list(arch)
    for name, choice in arch.items():
        line = nodes[name]
        assert f'"{name}\\n{choice}"' in line
        assert f'fillcolor="{PALETTE[choice_category(choice)]}"' in line
        assert ("dashed" in line) == (choice_category(choice) == "skipped")
    for stage in {name.split(".")[0] for name in arch}:
        assert f"subgraph cluster_{stage} {{" in dot
    assert re.search(r"input -> stem\s+stem -> p0\s", dot)
    assert f"p{len(arch) - 1} -> classifier" in dot


def test_dot_legend_and_title():
    dot = architecture_to_dot(melius_arch(), title="my run", stats=STATS)
    assert "subgraph cluster_legend" in dot
    for category in ("binary", "replaced", "higher_precision", "skipped"):
        assert re.search(
            rf'legend_{category} \[label="?{re.escape(LEGEND_LABELS[category])}"?'
            rf'.*fillcolor="{PALETTE[category]}"',
            dot,
        )
    assert "legend_other" not in dot  # only shown when an unknown choice is present
    assert 'label="my run\\nval_acc: 0.91\\nOPs: 1.2e+08"' in dot


def test_dot_shows_other_in_legend_and_defaults_title_to_space():
    space = SearchSpace("odd", [DecisionPoint("stage1.block1.x", ("maxpool",), "x")])
    dot = architecture_to_dot(space.default())
    assert f'fillcolor="{PALETTE["other"]}"' in node_lines(dot)["stage1.block1.x"]
    assert "legend_other" in dot
    assert "label=odd" in dot


def test_dot_uncolored_has_no_fills_or_legend():
    arch = melius_arch()
    dot = architecture_to_dot(arch, colored=False)
    assert "fillcolor" not in dot and "filled" not in dot
    assert "cluster_legend" not in dot
    assert len(node_lines(dot)) == len(arch)
    assert "dashed" in node_lines(dot)["stage1.block1.improvement"]  # skipped stays visible


def test_write_architecture_files(tmp_path, no_dot):
    arch = melius_arch()
    out = tmp_path / "logs" / "architectures"
    paths = write_architecture_files(arch, out, "epoch_3", stats=STATS)
    assert paths == {ext: out / f"epoch_3.{ext}" for ext in ("json", "txt", "dot")}
    assert sorted(p.name for p in out.iterdir()) == ["epoch_3.dot", "epoch_3.json", "epoch_3.txt"]

    text = paths["json"].read_text()
    assert Architecture.from_json(arch.space, text) == arch
    assert json.loads(text)["stats"] == STATS

    table = paths["txt"].read_text().splitlines()
    for name, choice in arch.items():
        assert any(line.split() == [name, choice, choice_category(choice)] for line in table)
    assert "val_acc: 0.91" in table and "OPs: 1.2e+08" in table
    assert max(map(len, table)) <= 80

    assert node_lines(paths["dot"].read_text()).keys() == set(arch)
    assert "val_acc: 0.91" in paths["dot"].read_text()


def test_read_logged_architecture_without_the_model(tmp_path, no_dot):
    arch = resnet_arch()
    paths = write_architecture_files(arch, tmp_path, "epoch_0", stats=STATS)
    loaded, stats = read_logged_architecture(paths["json"])
    assert dict(loaded) == dict(arch) and loaded.space.name == arch.space.name
    assert stats == STATS
    assert {p.kind for p in loaded.space} == {"basic"}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        read_logged_architecture(tmp_path / "bad.json")


def test_render_without_dot_warns_once(tmp_path, no_dot, caplog):
    dot = architecture_to_dot(melius_arch())
    with caplog.at_level(logging.WARNING):
        assert render_dot(dot, tmp_path / "g") == []
        assert render_dot(dot, tmp_path / "g", ("svg", "pdf")) == []
        assert render_png_bytes(dot) is None
    assert not dot_available()
    assert list(tmp_path.iterdir()) == []
    warnings = [r.getMessage() for r in caplog.records if "dot" in r.getMessage()]
    assert len(warnings) == 1
    assert "apt-get install graphviz" in warnings[0] and "brew install graphviz" in warnings[0]


def test_render_dot_matches_dot_availability(tmp_path):
    dot = architecture_to_dot(melius_arch(), stats=STATS)
    paths = render_dot(dot, tmp_path / "epoch_1", ("png",))
    if dot_available():
        assert paths == [tmp_path / "epoch_1.png"]
        assert paths[0].read_bytes().startswith(PNG_MAGIC)
        assert render_png_bytes(dot).startswith(PNG_MAGIC)
    else:
        assert paths == [] and render_png_bytes(dot) is None
    assert [p.name for p in tmp_path.iterdir()] == [p.name for p in paths]  # no temp leftovers


# Graphviz built without cairo (or half-installed) says this and exits 1 for -Tpng
NO_CAIRO = "echo 'Format: \"png\" not recognized. Use one of: canon dot' >&2; exit 1"
KILLS_ITS_CALLER = "kill -9 $PPID"  # the run dies in its first rendering


@pytest.fixture
def fake_dot(tmp_path, monkeypatch):
    """Put a `dot` running the shell `script` first on PATH (warnings re-armed); the folder."""

    def install(script: str) -> Path:
        folder = tmp_path / "fake_bin"
        folder.mkdir(exist_ok=True)
        (folder / "dot").write_text(f"#!/bin/sh\n{script}\n")
        (folder / "dot").chmod(0o755)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setattr(graphs, "_warned", set())
        return folder

    return install


def test_a_failing_dot_is_one_warning_and_no_file(tmp_path, fake_dot, caplog):
    fake_dot(NO_CAIRO)
    out = tmp_path / "out"
    out.mkdir()
    dot = architecture_to_dot(melius_arch())
    with caplog.at_level(logging.WARNING):
        assert render_dot(dot, out / "g", ("png", "svg")) == []
        assert render_png_bytes(dot) is None
        assert render_dot(dot, out / "g") == []
    assert dot_available() and list(out.iterdir()) == []  # no partial or temporary file
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert 'failed to render png (exit code 1: Format: "png" not recognized' in warnings[0]
    assert "kept as .dot files" in warnings[0] and "color_graphs.py" in warnings[0]


def graph_run_config(tmp_path: Path) -> Path:
    cfg = tiny_config(tmp_path, epochs=2)
    cfg["export"]["graph_formats"] = ["png", "svg"]
    path = tmp_path / "graphs.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.e2e
def test_a_run_with_a_failing_dot_completes_with_one_warning(tmp_path, fake_dot, caplog):
    fake_dot(NO_CAIRO)
    with caplog.at_level(logging.WARNING):
        assert search_main(["-c", str(graph_run_config(tmp_path))]) == 0
    assert len([r for r in caplog.records if "failed to render" in r.getMessage()]) == 1
    run = tmp_path / "trainings" / "tiny"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    assert load_checkpoint(run / "enas_checkpoint")["epoch"] == 2
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    graphs_dir = run / "logs" / "architectures"
    for epoch in (1, 2):
        assert (graphs_dir / f"epoch_{epoch}.dot").read_text().startswith("digraph")
    assert not list(graphs_dir.glob("*.png")) and not list(graphs_dir.glob("*.svg"))


@pytest.mark.e2e
@pytest.mark.slow
def test_the_epoch_is_checkpointed_before_its_graphs_are_rendered(tmp_path, fake_dot):
    """A `dot` that kills the run in the first epoch's rendering: that epoch is kept (its
    checkpoint, metrics and .dot), and the run resumes from it."""
    config = graph_run_config(tmp_path)
    fake_dot(KILLS_ITS_CALLER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(ROOT / "train_enas.py"), "-c", str(config)]
    killed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr.decode()
    run = tmp_path / "trainings" / "tiny"
    assert load_checkpoint(run / "enas_checkpoint")["epoch"] == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert (run / "logs" / "architectures" / "epoch_1.dot").is_file()
    fake_dot(NO_CAIRO)  # the same `dot`, now failing: the resumed run warns once and goes on
    resume = [sys.executable, str(ROOT / "train_enas.py"), "--resume", str(run)]
    resumed = subprocess.run(resume, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert resumed.stderr.decode().count("failed to render png") == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    assert load_checkpoint(run / "enas_checkpoint")["epoch"] == 2


def test_bad_format_names_valid_ones(tmp_path):
    dot = architecture_to_dot(melius_arch())
    with pytest.raises(ValueError, match="'jpg'.*png, svg, pdf"):
        render_dot(dot, tmp_path / "g", ("png", "jpg"))
    with pytest.raises(ValueError, match="png, svg, pdf"):
        write_architecture_files(melius_arch(), tmp_path, "e", formats=("gif",))
    assert list(tmp_path.iterdir()) == []


def make_training(root: Path) -> Path:
    arch_dir = root / "logs" / "architectures"
    write_architecture_files(melius_arch(), arch_dir, "epoch_1", stats=STATS, formats=())
    write_architecture_files(resnet_arch(), arch_dir, "epoch_2", formats=())
    for dot in arch_dir.glob("*.dot"):
        dot.write_text("stale")
    return root


def test_color_graphs_script_rerenders(tmp_path):
    training = make_training(tmp_path / "melius_2024")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(training), "--format", "png", "svg"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    arch_dir = training / "logs" / "architectures"
    first = (arch_dir / "epoch_1.dot").read_text()
    assert "melius_2024 epoch_1" in first and "val_acc: 0.91" in first and "cluster_legend" in first
    assert node_lines((arch_dir / "epoch_2.dot").read_text()).keys() == set(resnet_arch())
    for stem in ("epoch_1", "epoch_2"):
        png, svg = arch_dir / f"{stem}.png", arch_dir / f"{stem}.svg"
        assert png.exists() == svg.exists() == dot_available()
        if dot_available():
            assert png.read_bytes().startswith(PNG_MAGIC)
    assert ("not installed" in result.stderr) != dot_available()


def load_script():
    spec = importlib.util.spec_from_file_location("color_graphs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_color_graphs_without_dot_writes_dot_files_and_says_what_was_not_rendered(
    tmp_path, no_dot, caplog, capsys
):
    training = make_training(tmp_path / "run")
    with caplog.at_level(logging.WARNING):
        assert load_script().main([str(training), "--no-color", "--format", "png", "svg"]) == 1
    err = capsys.readouterr().err
    assert "not rendered (png svg)" in err and err.count("\n") == 1
    for stem in ("epoch_1", "epoch_2"):
        dot = (training / "logs" / "architectures" / f"{stem}.dot").read_text()
        assert dot.startswith("digraph") and "fillcolor" not in dot
    assert not list(training.rglob("*.png"))
    assert len([r for r in caplog.records if "not installed" in r.getMessage()]) == 1


def test_color_graphs_with_a_failing_dot_says_what_was_not_rendered(tmp_path, fake_dot, capsys):
    training = make_training(tmp_path / "run")
    fake_dot(NO_CAIRO)
    assert load_script().main([str(training)]) == 1
    err = capsys.readouterr().err
    assert "not rendered (png): Graphviz's `dot` failed" in err and err.count("\n") == 1
    assert (training / "logs" / "architectures" / "epoch_1.dot").read_text().startswith("digraph")
    assert not list(training.rglob("*.png"))


def test_color_graphs_rejects_non_training_folder(tmp_path, capsys):
    assert load_script().main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a training folder" in err


def test_blocks_summary_of_a_meliusnet_counts_kept_replaced_and_skipped_blocks():
    net = create_supernet("meliusnet22", 10, "thumbnail")
    choices = dict(net.space.default())
    for name in ("stage1.block1.dense", "stage3.block2.dense"):
        choices[name] = "conv1x1"
    for name in (
        "stage2.block5.improvement",
        "stage4.block1.improvement",
        "stage4.block4.improvement",
    ):
        choices[name] = "identity"
    summary = blocks_summary(Architecture(net.space, choices))
    assert summary == {
        "dense_kept": 15,
        "dense_replaced": 2,
        "improvement_kept": 14,
        "improvement_skipped": 3,
    }
    base = blocks_summary(net.space.default())
    assert base["dense_replaced"] == 0 and base["improvement_skipped"] == 0  # keys stay


def test_blocks_summary_of_a_resnet_has_bits_per_block():
    net = create_supernet("resnet18", 10, "thumbnail", {"bits": [1, 4, 32], "skip": True})
    choices = dict(net.space.default())
    choices["stage1.block2.basic"] = "skip"
    choices["stage3.block1.basic"] = "32bit"
    choices["stage4.block2.basic"] = "4bit"
    summary = blocks_summary(Architecture(net.space, choices))
    assert summary == {
        "basic_1bit": 5,
        "basic_4bit": 1,
        "basic_32bit": 1,
        "basic_skipped": 1,
        "bits": [1, 0, 1, 1, 32, 1, 1, 4],
    }
