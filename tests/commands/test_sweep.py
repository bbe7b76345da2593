"""`lightnas sweep` / `lightnas report` without the sweeps extra's plotting packages: one line
naming the extra, exit code 2, before a sweep folder is made."""

import importlib.util

import pytest
from helpers.sweeps import write_base, write_sweep

from lightnas.cli import main

FIND_SPEC = importlib.util.find_spec


@pytest.mark.parametrize("command", ["sweep", "report"])
def test_a_missing_plotting_package_names_the_extra(command, tmp_path, capsys, monkeypatch):
    write_base(tmp_path)
    path = write_sweep(tmp_path, parameters={"optim.lr": [1e-3, 2e-3]}, n_trials=1)
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "plotly" else FIND_SPEC(name, *a),
    )
    argv = ["-c", str(path)] if command == "sweep" else [str(tmp_path / "sweeps" / "sweep")]
    assert main([command, *argv]) == 2
    message = (
        "error: sweeps need the `sweeps` extra (plotly is missing): pip install 'lightnas[sweeps]'"
    )
    assert capsys.readouterr().err == message + "\n"
    assert not (tmp_path / "sweeps").exists()
