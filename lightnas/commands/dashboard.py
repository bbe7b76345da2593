"""`lightnas dashboard [ROOT] [--port 8990] [--host 127.0.0.1] [--token T] [--configs DIR]
[--allow-imports]`: argument parsing only; the server needs the `dashboard` extra
(pip install -e ".[dashboard]")."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from lightnas.config import ArgParser
from lightnas.errors import ConfigError
from lightnas.runtime.fileio import make_folder

REQUIRES = ("fastapi", "uvicorn", "jinja2", "plotly", "multipart", "optuna")


def port_number(text: str) -> int:
    """A TCP port, 1 to 65535 (checked before the root folder is made)."""
    port = int(text) if text.isdigit() else -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; valid: 1 to 65535")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = ArgParser(
        prog="lightnas dashboard",
        description="A dashboard in the browser: every run and sweep under ROOT, live curves, "
        "compare, downloads, launch / stop / resume.",
    )
    parser.add_argument("root", nargs="?", default="trainings", help="folder of the runs")
    parser.add_argument("--port", type=port_number, default=8990, help="port (default 8990)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; any other needs the token printed at start)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="access token (default: a random one when not on loopback; an empty one is "
        "refused there)",
    )
    parser.add_argument(
        "--configs", default="configs", help="configs offered on the launch page (default configs)"
    )
    parser.add_argument(
        "--allow-imports",
        action="store_true",
        help="let a search launched from the page import modules (`imports:` in an uploaded "
        "config or the overrides: code that runs on this machine); off by default",
    )
    return parser


def missing_packages() -> list[str]:
    return [name for name in REQUIRES if importlib.util.find_spec(name) is None]


def main(argv: list[str]) -> int:
    """Parse, check the extra is installed, then serve until Ctrl-C."""
    args = build_parser().parse_args(argv)
    missing = missing_packages()
    if missing:
        raise ConfigError(
            f'the dashboard needs {", ".join(missing)}: pip install -e ".[dashboard]"'
        )
    # imported here: the server's packages are an optional extra, checked just above
    from lightnas.dashboard.server import serve, settings_for

    root = Path(args.root)
    settings = settings_for(root, args.host, args.token, Path(args.configs), args.allow_imports)
    make_folder(root, "root")
    return serve(settings, args.port)
