"""`lightnas dashboard`: its arguments, the token rule, and the real command serving a root."""

from pathlib import Path

import httpx2
import pytest
from helpers.dashboard_server import Dashboard

from lightnas.cli import main
from lightnas.commands.dashboard import build_parser, missing_packages
from lightnas.dashboard import server
from lightnas.dashboard.launch import starting
from lightnas.dashboard.security import is_loopback
from lightnas.dashboard.server import settings_for, url


def test_defaults_are_trainings_port_8990_and_loopback():
    args = build_parser().parse_args([])
    assert (args.root, args.port, args.host, args.token) == ("trainings", 8990, "127.0.0.1", None)
    args = build_parser().parse_args(["runs/", "--port", "9000", "--host", "0.0.0.0"])
    assert (args.root, args.port, args.host) == ("runs/", 9000, "0.0.0.0")


def test_bad_arguments_are_one_line_errors_with_exit_code_2(capsys, tmp_path):
    assert main(["dashboard", "--port", "eighty"]) == 2
    assert "error:" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["dashboard", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["dashboard", str(tmp_path / "file" / "below")]) == 2
    assert "cannot create the folder" in capsys.readouterr().err


def test_the_extra_is_installed_for_the_tests():
    assert missing_packages() == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("example.org", False),
        ("::", False),
    ],
)
def test_only_loopback_binds_go_without_a_token(tmp_path, host, loopback):
    assert is_loopback(host) is loopback
    settings = settings_for(tmp_path, host, None, None)
    assert (settings.token is None) is loopback
    assert settings_for(tmp_path, host, "given", None).token == "given"
    assert url("::1", 8990, None) == "http://[::1]:8990/"


@pytest.mark.parametrize("token", ["", "  "])
def test_an_empty_token_off_loopback_is_refused_in_one_line(capsys, tmp_path, monkeypatch, token):
    monkeypatch.setattr(server.uvicorn, "run", lambda *a, **k: pytest.fail("it served"))
    root = tmp_path / "runs"
    assert main(["dashboard", str(root), "--host", "0.0.0.0", "--token", token]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--token '' on --host 0.0.0.0" in line and "leave --token out" in line
    assert not root.exists()  # nothing written
    assert settings_for(tmp_path, "127.0.0.1", token, None).token is None  # loopback: no token


def test_extensions_in_a_launch_need_allow_imports(tmp_path):
    parser = build_parser()
    assert "--allow-imports" in " ".join(parser.format_help().split())
    assert not parser.parse_args([]).allow_imports
    assert parser.parse_args(["--allow-imports"]).allow_imports
    assert settings_for(tmp_path, "127.0.0.1", None, None, allow_imports=True).allow_imports
    assert not settings_for(tmp_path, "127.0.0.1", None, None).allow_imports


def test_the_launch_record_says_starting_until_the_process_writes_its_status():
    record = {"pid": 42, "alive": True}
    assert starting(record, None) and starting(record, 7)
    assert not starting(record, 42) and not starting({"pid": 42, "alive": False}, None)
    assert not starting(None, None)


@pytest.mark.slow
def test_the_command_prints_its_url_and_checks_a_given_token(root, configs, tmp_path):
    server = Dashboard(root, configs, tmp_path, "--token", "abc123").start()
    try:
        assert server.banner.strip().endswith(f"{server.url}/?token=abc123")
        assert str(Path(root).resolve()) in server.banner
        assert httpx2.get(server.url + "/api/runs").status_code == 401
        response = httpx2.get(server.url + "/api/runs", params={"token": "abc123"})
        assert response.status_code == 200 and response.json()[0]["path"] == "tiny"
    finally:
        server.stop()
