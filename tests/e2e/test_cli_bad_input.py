"""Bad input, as a new user types it: one line naming the key (and the valid values), exit code
2, and nothing written: no training folder, no autosaved config."""

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers import ROOT

from lightnas import deploy
from lightnas.cli import main, search_main
from lightnas.config import parse_config
from lightnas.errors import ConfigError
from lightnas.run.parts import check_image_size

pytestmark = pytest.mark.e2e


# (extra command-line arguments, a fragment of the one-line message)
CASES = [
    (["--search.strategy", "greedy"], "search.strategy='greedy' is not known; valid: enas"),
    (["--model.name", "vgg"], "model.name='vgg' is not known; valid: graph, meliusnet22"),
    (["--model.stem", "tiny"], "model.stem='tiny' is not known; valid: grouped, imagenet"),
    (["--data.dataset", "mnist"], "data.dataset='mnist' is not known; valid: cifar10"),
    (["--bogus", "1"], "unrecognized arguments: --bogus"),
    (["--search_space", '{"dense_block": ["conv7x7"]}'], "unknown op 'conv7x7'; valid"),
    (["--data.dataset", "cifar100", "--data.data_dir", "/nonexistent"], "cifar-100-python"),
    (["--search.strategy", "random", "--search.num_val_samples", "0"], "num_val_samples=0"),
    (["--controller.temperature", "0"], "controller.temperature=0.0 must be > 0 or null"),
    (["--controller.lr", "-1"], "controller.lr=-1.0 must be > 0"),
    (["--optim.lr", "nan"], "optim.lr=nan must be a finite number"),
    (["--optim.lr", "0"], "optim.lr=0.0 must be > 0"),
    (["--search.bn_recalibration_batches", "-1"], "search.bn_recalibration_batches=-1"),
    (["--name", "../x"], "name='../x' must be a plain folder name"),
    (["--name", "a/b"], "name='a/b' must be a plain folder name"),
    (["--search.strategy", "fixed"], "search.architecture (a JSON file) is required"),
    (
        ["--search.strategy", "fixed", "--search.architecture", "missing.json"],
        "search.architecture=missing.json: no such file",
    ),
    (
        ["--search.strategy", "fixed", "--search.sampling", "sandwich"],
        "search.sampling='sandwich': strategy fixed trains only its own architecture",
    ),
    (
        ["--search.strategy", "fixed", "--search.inplace_distill", "true"],
        "search.inplace_distill=true: strategy fixed trains only its own architecture",
    ),
    (["--search.sandwich_every", "0"], "search.sandwich_every=0 must be >= 1"),
    (
        ["--search.sandwich_every", "2", "--search.sandwich_k", "0"],
        "search.sandwich_every=2 needs search.sandwich_k >= 1",
    ),
    (["--search.sampling", "bigger"], "search.sampling='bigger' is not valid; valid: null,"),
    (["--epochs", "0"], "epochs=0 must be >= 1"),
    (["--epochs", "many"], 'config key "epochs"'),
    (["--data.batch_size", "0"], "data.batch_size=0 is invalid"),
    (["--search.cost", "energy"], "search.cost='energy' is not known; valid:"),
    (["--search.cost_weight", "0.5"], "search.cost_weight=0.5 must be <= 0"),
    (["--export.formats", "[coreml]"], "'coreml' is not known; valid: onnx, packed, pt2, tflite"),
    (["--export.graph_formats", "[gif]"], "export.graph_formats: 'gif' is not known"),
    (["--model.kwargs", "{depth: 3}"], "model.kwargs: meliusnet_flex takes no depth; valid:"),
    (["--model.kwargs", "{scaling: max}"], "model.kwargs.scaling='max' is not valid; valid: none"),
    (
        ["--model.kwargs", "{growth_rate: wide, block_config: [1, 1], reduction: [0.5]}"],
        "model.kwargs.growth_rate='wide' is not valid for meliusnet_flex; valid: an integer >= 1",
    ),
    (
        ["--model.kwargs", "{growth_rate: -8, block_config: [1, 1], reduction: [0.5]}"],
        "model.kwargs.growth_rate=-8 is not valid for meliusnet_flex; valid: an integer >= 1",
    ),
    (
        ["--model.kwargs", "{block_config: [1, 1], reduction: [-0.5]}"],
        "model.kwargs.reduction=[-0.5] is not valid for meliusnet_flex; valid: a list of numbers",
    ),
    (
        ["--model.name", "resnet18", "--model.kwargs", "{width: -64}"],
        "model.kwargs.width=-64 is not valid for resnet18; valid: an integer >= 1",
    ),
    (
        ["--model", "5"],
        "model='5' must be a mapping of its keys (name, stem, kwargs, file); valid model.name: "
        "graph",
    ),
    (
        ["--seed", "1180591620717411303424"],
        "seed=1180591620717411303424 is out of range; valid: 0 to 9223372036854775807",
    ),
    (["--seed", "-1"], "seed=-1 is out of range; valid: 0 to"),
    (["--device", "tpu"], "device='tpu' is not valid"),
    (["--distill.alpha", "2"], "distill.alpha=2.0 must be in [0, 1]"),
    (["--checkpoint.every_minutes", "-1"], "checkpoint.every_minutes=-1.0 must be >= 0"),
    (["--resume", "nowhere"], "not a training folder"),
    (["--data.image_size", "1"], "data.image_size=1 is too small for meliusnet_flex"),
]
if not torch.cuda.is_available():
    CASES.append((["--device", "cuda"], "device='cuda' but CUDA is not available"))


def assert_one_line_and_nothing_written(capsys, tmp_path, fragment: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and fragment in err, err
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "trainings").exists()
    assert not (tmp_path / "configs").exists()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` (hidden ones included) with its size and modification time."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("args, fragment", CASES, ids=[" ".join(c[0])[:40] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    write_config, tmp_path, monkeypatch, capsys, args, fragment
):
    monkeypatch.chdir(tmp_path)  # an autosaved config would land in ./configs/autosaved
    assert search_main(["-c", str(write_config()), *args]) == 2
    assert_one_line_and_nothing_written(capsys, tmp_path, fragment)


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("", "is empty"),
        ("- epochs\n- 3\n", "holds a list, not a mapping"),
        ("epochs: [1\n", "is not valid YAML"),
        (None, "does not exist"),
        ("FOLDER", "is a folder; give a YAML file"),
        ("epochs: 2\n# café\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 on line 2)"),
        (
            "model: 5\n",
            "model=5 must be a mapping of its keys (name, stem, kwargs, file); valid model.name: "
            "graph, meliusnet22",
        ),
        ("model: [resnet18]\n", "model=['resnet18'] must be a mapping of its keys"),
        ("distill:\n", "distill=None must be a mapping of its keys (teacher, weights"),
        ("search: {latency_table: 5}\n", "search.latency_table=5 must be a mapping"),
    ],
)
def test_bad_config_files(tmp_path, monkeypatch, capsys, content, fragment):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.yml"
    if content == "FOLDER":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert search_main(["-c", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and str(path) in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("module", ["onnx", "onnxscript"])
def test_an_export_format_whose_extra_is_missing_is_refused_before_any_work(
    tmp_path, monkeypatch, capsys, module
):
    """The quick start without the `onnx` extra: one line naming the extra, before training
    (it used to train every epoch and fail at the last export with a traceback)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # `import onnx...` fails as if not installed
    assert search_main(["-c", str(ROOT / "configs" / "quickstart.yml")]) == 2
    fragment = (
        f"export.formats: 'onnx' needs the `onnx` extra ({module} is not installed): "
        'pip install -e ".[onnx]"; valid without it: packed, pt2'
    )
    assert_one_line_and_nothing_written(capsys, tmp_path, fragment)


def without_the_deploy_extra(monkeypatch) -> None:
    """As if none of the extra's packages were installed (the deploy modules imported so far are
    imported again): the extra lives in a virtualenv of its own, this one may have it or not."""
    for name in [m for m in sys.modules if m.startswith("lightnas.deploy.")]:
        monkeypatch.delitem(sys.modules, name)
    for package in deploy.EXTRA_PACKAGES:
        monkeypatch.setitem(sys.modules, package, None)


def test_the_tflite_format_without_the_deploy_extra_is_refused_before_any_work(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    without_the_deploy_extra(monkeypatch)
    quickstart = str(ROOT / "configs" / "quickstart.yml")
    assert search_main(["-c", quickstart, "--export.formats", "[pt2, tflite]"]) == 2
    fragment = (
        "export.formats: 'tflite' needs the `deploy` extra (tensorflow is not installed): "
        'pip install -e ".[deploy]"; valid without it: '
    )
    assert_one_line_and_nothing_written(capsys, tmp_path, fragment)


@pytest.mark.parametrize("command", ["deploy", "latency-table"])
def test_deploying_without_the_deploy_extra_is_one_line_naming_it(
    write_config, tmp_path, monkeypatch, capsys, command
):
    config = write_config()
    monkeypatch.chdir(tmp_path)
    without_the_deploy_extra(monkeypatch)
    out = tmp_path / ("out.tflite" if command == "deploy" else "out.csv")
    assert main([command, str(config), "-o", str(out)]) == 2
    fragment = "deployment needs the `deploy` extra (larq): pip install 'lightnas[deploy]'"
    assert_one_line_and_nothing_written(capsys, tmp_path, fragment)
    assert not out.exists()


# bad input of the other commands: (argv of `lightnas`, a fragment of the one-line message)
COMMAND_CASES = [
    (
        ["unknown-command"],
        "unknown command 'unknown-command'; valid: search, retrain, evaluate, rank, sweep, "
        "report, dashboard, deploy, latency-table",
    ),
    (["dashboard", "--port", "99999"], "--port: '99999' is not a port; valid: 1 to 65535"),
]


@pytest.mark.parametrize(
    "argv, fragment", COMMAND_CASES, ids=[" ".join(c[0]) for c in COMMAND_CASES]
)
def test_bad_input_of_other_commands(tmp_path, monkeypatch, capsys, argv, fragment):
    monkeypatch.chdir(tmp_path)  # the dashboard's default root is ./trainings
    assert main(argv) == 2
    assert_one_line_and_nothing_written(capsys, tmp_path, fragment)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "output_dir, fragment",
    [
        ("a_file", "output_dir: cannot create the folder a_file/tiny: Not a directory"),
        ("a_file/below", "output_dir: cannot create the folder a_file/below/tiny: Not a directory"),
    ],
)
def test_an_output_dir_that_cannot_be_made_is_bad_input(
    write_config, tmp_path, monkeypatch, capsys, output_dir, fragment
):
    monkeypatch.chdir(tmp_path)
    config = write_config()
    (tmp_path / "a_file").write_text("in the way")
    assert search_main(["-c", str(config), "--output_dir", output_dir]) == 2
    assert_one_line_and_nothing_written(capsys, tmp_path, fragment)
    assert (tmp_path / "a_file").read_text() == "in the way"


@pytest.fixture
def finished(write_config, tmp_path):
    """A finished one-epoch search and a copy of its config.yml."""
    assert search_main(["-c", str(write_config(epochs=1))]) == 0
    folder = tmp_path / "trainings" / "tiny"
    return folder, (folder / "config.yml").read_text()


@pytest.mark.parametrize(
    "content, fragment",
    [({"epoch": 1, "supernet": {}}, "it lacks global_step"), ([1, 2], "holds a list")],
)
def test_a_checkpoint_that_loads_but_is_no_checkpoint(finished, capsys, content, fragment):
    folder, _ = finished
    for name in ("last.pt", "previous.pt"):
        torch.save(content, folder / "enas_checkpoint" / name)
    capsys.readouterr()
    assert search_main(["--resume", str(folder), "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "last.pt" in err and len(err.splitlines()) == 1


def test_forced_resume_of_another_model_is_refused_before_anything_is_written(finished, capsys):
    folder, config = finished
    before = snapshot(folder)
    other = ["--model.kwargs", json.dumps({"block_config": [1, 1, 1], "reduction": [0.5, 0.5]})]
    args = ["--resume", str(folder), "--epochs", "2", *other]
    capsys.readouterr()
    assert search_main(args) == 2
    assert "pass --force true" in capsys.readouterr().err
    assert search_main([*args, "--force", "true"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not fit this config" in err and "model.kwargs" in err
    assert len(err.splitlines()) == 1
    assert (folder / "config.yml").read_text() == config  # untouched
    assert snapshot(folder) == before and not (folder / ".lock").exists()  # no stale lock
    assert search_main(["--resume", str(folder), "--epochs", "2"]) == 0  # still resumable
    assert not (folder / ".lock").exists()  # a run removes its lock when it ends


def test_a_resumed_config_that_is_not_utf8_is_one_line_and_touches_nothing(finished, capsys):
    folder, config = finished
    (folder / "config.yml").write_bytes("# café\n".encode("latin-1") + config.encode())
    before = snapshot(folder)
    capsys.readouterr()
    assert search_main(["--resume", str(folder), "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"config file {folder / 'config.yml'} is not UTF-8 text (byte 0xe9 on line 1)" in err
    assert len(err.splitlines()) == 1 and snapshot(folder) == before


@pytest.mark.parametrize(
    "override",
    [
        ["--epochs", "2"],
        ["--epochs", "2", "--device", "cpu"],
        ["--epochs", "2", "--progress", "true"],
        ["--epochs", "2", "--export.every", "2"],
        ["--epochs", "2", "--data.num_workers", "1"],
        ["--epochs", "2", "--data.data_dir", "elsewhere"],
    ],
    ids=["epochs", "device", "progress", "export", "num_workers", "data_dir"],
)
def test_each_resumable_key_may_change(finished, override):
    folder, _ = finished
    assert search_main(["--resume", str(folder), *override]) == 0
    assert yaml.safe_load((folder / "config.yml").read_text())["epochs"] == 2


def test_another_key_needs_force_and_force_resumes(finished, capsys):
    folder, _ = finished
    capsys.readouterr()
    assert search_main(["--resume", str(folder), "--epochs", "2", "--optim.lr", "0.01"]) == 2
    assert "differs from the checkpoint's in optim.lr" in capsys.readouterr().err
    args = ["--resume", str(folder), "--epochs", "2", "--optim.lr", "0.01", "--force", "true"]
    assert search_main(args) == 0
    assert yaml.safe_load((folder / "config.yml").read_text())["optim"]["lr"] == 0.01


def test_warmup_longer_than_the_run_warns_in_one_line(write_config, capsys):
    assert search_main(["-c", str(write_config(epochs=1))]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        "warning: search.warmup_epochs=1 >= epochs=1: the controller does not train in this run "
        "(resume it with more --epochs, or lower the warm-up)"
    ]


@pytest.mark.parametrize(
    "search", [{"controller_steps": 0}, {"strategy": "random", "num_val_samples": 1}]
)
def test_settings_that_used_to_crash_now_run(write_config, tmp_path, search):
    assert search_main(["-c", str(write_config(search=search))]) == 0
    rows = (tmp_path / "trainings" / "tiny" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2 and json.loads(rows[1])["controller_reward"] is None


def test_a_model_that_runs_at_no_size_is_a_bug_not_bad_input(write_config):
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("a bug in the model")

    cfg = parse_config(["-c", str(write_config())])[0]
    with pytest.raises(RuntimeError, match="a bug in the model"):
        check_image_size(cfg, Broken(), (3, 8, 8))
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5), torch.nn.BatchNorm2d(4)).train()
    with pytest.raises(ConfigError, match=r"data.image_size=4 is too small .* valid: >= 5"):
        check_image_size(cfg, net, (3, 4, 4))
    assert all(m.training for m in net.modules())  # probed in eval mode, left as it was
