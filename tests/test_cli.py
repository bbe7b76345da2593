"""lightnas.cli: dispatch to a command; bad input is one line and exit code 2."""

import pytest

from lightnas.cli import COMMANDS, main, run_command, usage
from lightnas.errors import ConfigError, ReportedError


def test_no_command_prints_the_usage_with_every_command_and_exits_2(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err == usage() + "\n"


def test_an_unknown_command_is_named_with_the_valid_ones_and_exits_2(capsys):
    assert main(["nonsense"]) == 2
    valid = ", ".join(COMMANDS)
    assert capsys.readouterr().err == f"error: unknown command 'nonsense'; valid: {valid}\n"


def test_bad_input_is_one_line_and_exit_2(capsys):
    def bad(argv):
        raise ConfigError(f"epochs={argv[0]} must be >= 1")

    assert run_command(bad, ["0"]) == 2
    assert capsys.readouterr().err == "error: epochs=0 must be >= 1\n"


def test_an_error_already_reported_by_rank_0_prints_nothing(capsys):
    def reported(argv):
        raise ReportedError()

    assert run_command(reported, []) == 2
    assert capsys.readouterr().err == ""


def test_a_bug_keeps_its_traceback():
    def bug(argv):
        raise KeyError("x")

    with pytest.raises(KeyError):
        run_command(bug, [])
