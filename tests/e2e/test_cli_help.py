"""`lightnas --help`: the usage line and every command with one line; no command: the same on
stderr, exit code 2."""

import subprocess
import sys

import pytest
from helpers import ROOT

from lightnas.cli import main


def listed_commands(text: str) -> dict[str, str]:
    """The commands the help lists, with their line."""
    lines = text.splitlines()
    start = lines.index("commands:") + 1
    return dict(line.strip().split(maxsplit=1) for line in lines[start:] if line.strip())


def test_help_lists_every_command_with_one_line_and_exits_0():
    done = subprocess.run(
        [sys.executable, "-m", "lightnas", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: lightnas COMMAND")
    commands = listed_commands(done.stdout)
    assert list(commands) == ["search", "retrain", "evaluate", "rank", "sweep", "report",
                              "dashboard", "deploy", "latency-table", "space"]  # fmt: skip
    assert all(len(line) > 20 for line in commands.values())
    assert max(len(line) for line in done.stdout.splitlines()) <= 100  # narrow


def test_every_listed_command_runs_and_has_its_own_help(capsys):
    assert main(["-h"]) == 0
    short = capsys.readouterr().out
    assert main(["--help"]) == 0
    assert capsys.readouterr().out == short
    for command in listed_commands(short):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        prog = "train_enas.py" if command == "search" else f"lightnas {command}"  # its other name
        assert capsys.readouterr().out.startswith(f"usage: {prog}")


def test_no_command_prints_the_usage_and_the_commands_and_exits_2(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: lightnas COMMAND")
    assert "dashboard" in listed_commands(captured.err)
