"""Dashboard fixtures: a finished tiny search (run once per session, copied per test), a
TestClient over a root, a real dashboard process on a free loopback port and a real browser
page on it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from helpers.dashboard_server import BASE_URL, Dashboard, stop_searches
from helpers.runs import tiny_config
from playwright.sync_api import Browser, Page, sync_playwright

from lightnas.dashboard.app import Settings, create_app
from lightnas.run.search import search

CHROMIUM = "/usr/bin/chromium"


def write_tiny(tmp: Path, filename: str = "tiny.yml", **overrides) -> Path:
    path = tmp / filename
    path.write_text(yaml.safe_dump(tiny_config(tmp, **overrides)))
    return path


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished tiny search (2 epochs, pt2 + ONNX exports of the last, SVG graphs)."""
    tmp = tmp_path_factory.mktemp("finished")
    export = {"formats": ["pt2", "onnx"], "every": 0, "graph_formats": ["png"]}
    cfg = write_tiny(tmp, export=export)
    assert search(["-c", str(cfg)]) == 0
    return tmp / "trainings" / "tiny"


@pytest.fixture
def root(tmp_path, finished_run) -> Path:
    """A dashboard root holding a copy of the finished tiny search as `tiny`."""
    root = tmp_path / "trainings"
    shutil.copytree(finished_run, root / "tiny")
    return root


@pytest.fixture
def configs(tmp_path) -> Path:
    """A configs/ folder with a tiny config (writing into the test's own trainings/)."""
    folder = tmp_path / "configs"
    folder.mkdir()
    write_tiny(folder, "tiny.yml", name=None, output_dir="ignored")
    return folder


@pytest.fixture
def client(root, configs, tmp_path) -> Iterator[TestClient]:
    settings = Settings(root=root, configs=configs, cwd=tmp_path)
    with TestClient(create_app(settings), base_url=BASE_URL) as c:
        yield c
    stop_searches(root)


# ---- processes --------------------------------------------------------------------------
@pytest.fixture
def dashboard(root, configs, tmp_path) -> Iterator[Dashboard]:
    server = Dashboard(root, configs, tmp_path).start()
    yield server
    server.stop()
    stop_searches(root)


# ---- the real browser (Debian's chromium through Playwright) -------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    """What the page's console reported as errors; a test removes those it expects."""
    return []


@pytest.fixture
def page(browser, console_errors) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = console_errors
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()
    assert errors == []  # no script failed, nothing was refused (CSP) or missing on any page
