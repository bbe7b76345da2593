"""lightnas retrain: the found child trained in its own folder; --inherit, distillation, resume."""

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers.runs import tiny_config
from safetensors.torch import save_file

from lightnas.cli import main, retrain_main, search_main
from lightnas.config import parse_config
from lightnas.engine.loop import Engine
from lightnas.export import load_architecture
from lightnas.outputs.checkpoint import load_checkpoint
from lightnas.run import parts as run_parts
from lightnas.run import retrain as run_retrain
from lightnas.run.parts import build_engine, build_parts, space_of
from lightnas.run.retrain import parse_args, prepare
from lightnas.run.teacher import full_precision_base
from lightnas.runtime.distributed import LOCAL
from lightnas.search import Architecture

TINY_RESNET = {"layers": [1, 1], "width": 8}


def prepared(args, rest):
    """retrain.prepare on one process, its new folder's lock released after."""
    with contextlib.ExitStack() as held:
        return prepare(args, rest, LOCAL, held)


@pytest.fixture(scope="module")
def search(tmp_path_factory) -> Path:
    """A finished one-epoch search on 4-class mock data."""
    root = tmp_path_factory.mktemp("search")
    cfg = tiny_config(root, epochs=1, name="s", search={"strategy": "random"})
    (root / "s.yml").write_text(yaml.safe_dump(cfg))
    assert search_main(["-c", str(root / "s.yml")]) == 0
    return root / "trainings" / "s"


def metrics(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


def choices(path: Path) -> dict:
    data = json.loads(path.read_text())
    return data.get("architecture", data)["choices"]


def test_retrain_trains_the_best_architecture_in_its_own_folder(search):
    assert main(["retrain", str(search), "--export.formats", "[pt2]"]) == 0
    folder = search.parent / "s_retrain"
    best = choices(search / "best_architecture.json")
    for name in ("config.yml", "log.txt", "best_architecture.json", "enas_checkpoint/last.pt"):
        assert (folder / name).is_file(), name
    assert list((folder / "tensorboard").iterdir())
    assert (folder / "logs" / "architectures" / "epoch_1.json").is_file()
    exported = folder / "exported_models"
    assert (exported / "inference_only" / "epoch_1.pt2").is_file()
    assert dict(load_architecture(exported / "trainables" / "epoch_1.safetensors")) == best
    assert [r["architecture"] for r in metrics(folder)] == [best]
    assert choices(folder / "architecture.json") == best
    cfg = yaml.safe_load((folder / "config.yml").read_text())
    assert cfg["search"]["strategy"] == "fixed"
    assert cfg["search"]["architecture"] == str(folder / "architecture.json")
    # a second retrain gets a folder of its own
    _, _, second = prepared(*parse_args([str(search)]))
    assert second.root == search.parent / "s_retrain_2"
    assert choices(folder / "architecture.json") == best


@pytest.mark.parametrize("how", ["epoch", "base", "file"])
def test_epoch_base_and_file_select_the_architecture(search, tmp_path, how):
    logged = choices(search / "logs" / "architectures" / "epoch_1.json")
    wanted = {k: ("conv1x1" if k.endswith("dense") else "identity") for k in logged}
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(json.dumps({"space": "meliusnet_flex", "choices": wanted}))
    extra = {"epoch": ["--epoch", "1"], "base": ["--arch", "base"], "file": ["--arch", arch_file]}
    args, rest = parse_args([str(search), *map(str, extra[how]), "--output_dir", str(tmp_path)])
    _, parts, folder = prepared(args, rest)
    arch = dict(parts.strategy.architecture)
    expected = {
        "epoch": logged,
        "base": dict(parts.supernet.space.default()),
        "file": wanted,
    }[how]
    assert arch == expected
    assert choices(folder.architecture) == expected
    assert folder.name == ("s_base" if how == "base" else "s_retrain")


def test_a_retrain_parses_its_config_once_and_builds_one_supernet(search, tmp_path, monkeypatch):
    calls = {"parse": 0, "build": 0}

    def counted(name, fn):
        def call(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return call

    monkeypatch.setattr(run_retrain, "parse_config", counted("parse", run_retrain.parse_config))
    monkeypatch.setattr(run_parts, "create_supernet", counted("build", run_parts.create_supernet))
    args, rest = parse_args([str(search), "--arch", "base", "--output_dir", str(tmp_path)])
    _, parts, folder = prepared(args, rest)
    assert calls == {"parse": 1, "build": 1}
    assert parts.strategy.architecture == parts.supernet.space.default()
    saved = yaml.safe_load(folder.config.read_text())["search"]["architecture"]
    assert saved == str(folder.architecture) and folder.architecture.is_file()


def test_inherit_starts_from_the_supernet_weights(search, tmp_path):
    searched = load_checkpoint(search / "enas_checkpoint")["supernet"]
    args, rest = parse_args([str(search), "--inherit", "--output_dir", str(tmp_path)])
    _, parts, _ = prepared(args, rest)
    state = parts.supernet.state_dict()
    assert state.keys() == searched.keys()
    assert all(torch.equal(state[k], searched[k]) for k in state)
    args, rest = parse_args([str(search), "--output_dir", str(tmp_path)])
    _, scratch, _ = prepared(args, rest)
    fresh = scratch.supernet.state_dict()
    assert not all(torch.equal(fresh[k], searched[k]) for k in fresh)


def test_distillation_changes_the_loss_and_trains(search, tmp_path):
    torch.manual_seed(1)
    teacher = full_precision_base("resnet18", 4, "thumbnail", TINY_RESNET)
    weights = tmp_path / "teacher.safetensors"
    save_file(teacher.state_dict(), weights)
    distill = ["--distill.teacher", "resnet18", "--distill.weights", str(weights)]
    distill += ["--distill.kwargs", json.dumps(TINY_RESNET), "--output_dir", str(tmp_path)]
    losses = {}
    for alpha in ("0.0", "0.7"):
        name = f"alpha{alpha}"
        assert retrain_main([str(search), *distill, "--distill.alpha", alpha, "--name", name]) == 0
        losses[alpha] = metrics(tmp_path / name)[0]["train_loss"]
    # alpha 0 is exactly the plain retrain; with alpha > 0 the teacher changes the loss
    assert retrain_main([str(search), "--output_dir", str(tmp_path), "--name", "plain"]) == 0
    assert losses["0.0"] == metrics(tmp_path / "plain")[0]["train_loss"]
    assert losses["0.7"] != losses["0.0"]
    saved = yaml.safe_load((tmp_path / "alpha0.7" / "config.yml").read_text())["distill"]
    assert saved["teacher"] == "resnet18" and saved["alpha"] == 0.7


def test_resume_of_a_distilled_retrain_continues_exactly(
    search, tmp_path, interrupt_after_first_checkpoint
):
    # the search folder is the teacher here: its exported child, loaded with load_child
    common = [str(search), "--output_dir", str(tmp_path), "--distill.teacher", str(search)]
    common += ["--distill.alpha", "0.5", "--epochs", "2"]
    assert retrain_main([*common, "--name", "straight"]) == 0
    with interrupt_after_first_checkpoint():
        assert retrain_main([*common, "--name", "resumed"]) == 130
    resumed = tmp_path / "resumed"
    assert len(metrics(resumed)) == 1
    assert retrain_main(["--resume", str(resumed)]) == 0
    assert metrics(resumed) == metrics(tmp_path / "straight")
    a = load_checkpoint(resumed / "enas_checkpoint")["supernet"]
    b = load_checkpoint(tmp_path / "straight" / "enas_checkpoint")["supernet"]
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- a retrain trains exactly the architecture it is given ------------------------------------
DIGITS = {
    "dataset": "digits",
    "image_size": 8,
    "num_classes": None,
    "num_samples": 480,
    "val_size": 96,
    "batch_size": 32,
}
# what the quick start's search asked for, written into every search folder before sampling
# became the strategy's rule: a retrain must not inherit it
SANDWICH = {"sampling": "sandwich", "inplace_distill": True}


@pytest.fixture(scope="module")
def digits_search(tmp_path_factory) -> tuple[Path, dict]:
    """A finished one-epoch search on digits whose config.yml says sandwich sampling with
    in-place distillation; (its folder, its config)."""
    root = tmp_path_factory.mktemp("digits")
    cfg = tiny_config(root, epochs=1, name="d", data=DIGITS, search=SANDWICH)
    (root / "d.yml").write_text(yaml.safe_dump(cfg))
    assert search_main(["-c", str(root / "d.yml")]) == 0
    return root / "trainings" / "d", cfg


def cli_retrain(search: Path, arch_file: Path, out: Path, name: str) -> str:
    """`lightnas retrain SEARCH --arch FILE --epochs 2` in its own process (one thread); its
    stdout."""
    argv = [sys.executable, "-m", "lightnas", "retrain", str(search), "--arch", str(arch_file)]
    argv += ["--epochs", "2", "--output_dir", str(out), "--name", name]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, cwd=out, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def trained_alone(search_cfg: dict, arch: Architecture, tmp_path: Path) -> Engine:
    """`arch` trained alone through the Python API: the search's config with the fixed
    strategy and one child per step (sampling controller, no in-place distillation), on one
    thread as the command runs."""
    alone = {
        "strategy": "fixed",
        "sampling": "controller",
        "inplace_distill": False,
        "num_val_samples": 0,
        "bn_recalibration_batches": 0,
    }
    path = tmp_path / f"alone_{''.join(map(str, arch.indices()))}.yml"
    path.write_text(
        yaml.safe_dump({**search_cfg, "epochs": 2, "search": search_cfg["search"] | alone})
    )
    cfg = parse_config(["--config", str(path)])[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        engine = build_engine(cfg, build_parts(cfg, architecture=arch))
        engine.run()
    finally:
        torch.set_num_threads(threads)
    return engine


@pytest.mark.slow
def test_retrain_gives_the_weights_and_accuracy_of_the_architecture_trained_alone(
    digits_search, tmp_path
):
    search, search_cfg = digits_search
    space = space_of(parse_config(["--config", str(search / "config.yml")])[0])
    cheapest = {p.name: p.choices[-1] for p in space}  # conv1x1 and identity everywhere
    results = {}
    for name, arch in (("base", dict(space.default())), ("cheapest", cheapest)):
        arch_file = tmp_path / f"{name}.json"
        arch_file.write_text(json.dumps({"space": "meliusnet_flex", "choices": arch}))
        printed = cli_retrain(search, arch_file, tmp_path, name)
        alone = trained_alone(search_cfg, Architecture(space, arch), tmp_path)
        folder = tmp_path / name
        # every epoch trained the given architecture, and only it: the same weights
        assert [r["architecture"] for r in metrics(folder)] == [arch, arch]
        retrained = load_checkpoint(folder / "enas_checkpoint")["supernet"]
        expected = alone.supernet.state_dict()
        assert retrained.keys() == expected.keys()
        assert all(torch.equal(retrained[k], expected[k]) for k in expected), name
        # the same accuracy: the one printed, the one saved, the one measured here
        test_acc = alone.evaluator.evaluate(alone.strategy.architecture, alone.data.test, 1)[1]
        assert alone.best.test_acc == test_acc
        assert re.search(r"test acc (\d\.\d{4})[,)]", printed)[1] == f"{test_acc:.4f}"
        final = json.loads((folder / "final_selection.json").read_text())
        assert final["candidates"][final["winner"]]["test_acc"] == test_acc
        results[name] = (metrics(folder), test_acc)
    # two architectures, two different trainings: neither is the search's sandwich
    assert results["base"][0][0]["train_loss"] != results["cheapest"][0][0]["train_loss"]
    assert results["base"][1] != results["cheapest"][1]
    searched = metrics(search)[0]["train_loss"]
    assert searched not in (
        results["base"][0][0]["train_loss"],
        results["cheapest"][0][0]["train_loss"],
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["{root}/missing"], "not a training folder"),
        (
            ["{search}", "--search.sampling", "sandwich"],
            "search.sampling='sandwich': strategy fixed",
        ),
        (["{search}", "--search.sampling", "uniform"], "search.sampling='uniform': strategy fixed"),
        (["{search}", "--search.inplace_distill", "true"], "search.inplace_distill=true"),
        (["{search}", "--epoch", "9"], "epoch_9.json does not exist"),
        (["{search}", "--epoch", "1", "--arch", "x.json"], "not allowed with"),
        (["{search}", "--arch", "{bad_arch}"], "unknown choice"),
        (["{search}", "--distill.teacher", "resnet18"], "distill.weights"),
        (["{search}", "--distill.teacher", "{root}/none"], "distill.teacher"),
        (["{search}", "--inherit", "--data.num_classes", "3"], "--inherit"),
        (["--resume", "{root}/missing"], "not a training folder"),
        ([], "give the search's training folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(search, tmp_path, capsys, args, message):
    bad_arch = tmp_path / "bad.json"
    arch = choices(search / "best_architecture.json")
    bad_arch.write_text(json.dumps({"choices": {**arch, next(iter(arch)): "conv5x5"}}))
    before = sorted(p.name for p in search.parent.iterdir())
    values = {"root": tmp_path, "search": search, "bad_arch": bad_arch}
    assert retrain_main([a.format(**values) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err, err
    assert sorted(p.name for p in search.parent.iterdir()) == before
