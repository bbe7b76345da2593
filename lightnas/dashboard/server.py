"""Serving the dashboard with uvicorn: the token when reachable from elsewhere, the URL printed."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from lightnas.dashboard.app import Settings, create_app
from lightnas.dashboard.security import is_loopback, new_token


def url(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def settings_for(root: Path, host: str, token: str | None, configs: Path | None) -> Settings:
    """The served settings: a random token unless bound to loopback (or one was given)."""
    if token is None and not is_loopback(host):
        token = new_token()
    return Settings(root.resolve(), configs, Path.cwd(), token, host)


def serve(root: Path, host: str, port: int, token: str | None, configs: Path | None) -> int:
    """Serve the dashboard over `root` until interrupted; searches it started keep running."""
    settings = settings_for(root, host, token, configs)
    app = create_app(settings)
    print(f"LightNAS dashboard over {settings.root}: {url(host, port, settings.token)}", flush=True)
    if settings.token is not None:
        print("every request needs that token (it is kept in a cookie after the first)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
