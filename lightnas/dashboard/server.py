"""Serving the dashboard with uvicorn: the token when reachable from elsewhere, the URL printed."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from lightnas.dashboard.app import Settings, create_app
from lightnas.dashboard.security import is_loopback, new_token
from lightnas.errors import ConfigError


def url(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def settings_for(
    root: Path, host: str, token: str | None, configs: Path | None, allow_imports: bool = False
) -> Settings:
    """The served settings: a random token unless bound to loopback (or one was given). An empty
    token is none: refused (ConfigError) where one is needed."""
    if token is not None and not token.strip():
        if not is_loopback(host):
            raise ConfigError(
                f"--token '' on --host {host} would let anyone who reaches it start and stop "
                "searches: give a token, or leave --token out for a random one"
            )
        token = None
    if token is None and not is_loopback(host):
        token = new_token()
    return Settings(root.resolve(), configs, Path.cwd(), token, host, allow_imports)


def serve(settings: Settings, port: int) -> int:
    """Serve the dashboard over `settings.root` until interrupted; searches it started keep
    running."""
    app = create_app(settings)
    host = settings.host
    print(f"LightNAS dashboard over {settings.root}: {url(host, port, settings.token)}", flush=True)
    if settings.token is not None:
        print("every request needs that token (it is kept in a cookie after the first)", flush=True)
    if settings.allow_imports:
        print("a search launched from the page may import modules (--allow-imports)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
