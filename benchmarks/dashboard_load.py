"""How fast the dashboard's pages load with many runs in its root.

Copies one finished training folder N times into a temporary root (states cycling through
finished, interrupted, failed and running; accuracies and OPs varied), starts
`python -m lightnas dashboard` on a free loopback port and measures: the server's time for the
runs page (first request, then the median of repeats), for a run's JSON, and, when Debian's
chromium is installed, the browser's time until the runs table is shown and until a run page has
drawn its charts (Playwright, headless). Prints a narrow table, then one JSON line.

    python benchmarks/dashboard_load.py [--runs 50] [--source trainings/quickstart] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import yaml
from playwright.sync_api import sync_playwright

from lightnas.run.search import search

STATES = ("finished", "interrupted", "failed", "running")
CHROMIUM = "/usr/bin/chromium"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=50, help="training folders in the root")
    p.add_argument("--source", help="a finished training folder to copy (default: a tiny search)")
    p.add_argument("--repeats", type=int, default=5, help="timed requests per measurement")
    p.add_argument("--browser", default=CHROMIUM, help="chromium binary ('' = no browser)")
    return p.parse_args(argv)


def tiny_search(where: Path) -> Path:
    """A finished 2-epoch search on mock data (seconds on a CPU)."""
    cfg = {
        "model": {
            "name": "meliusnet_flex",
            "kwargs": {"block_config": [1, 1], "growth_rate": 8, "init_features": 16},
        },
        "data": {"dataset": "mock", "image_size": 8, "num_samples": 96, "num_classes": 4},
        "search": {"controller_steps": 3, "num_val_samples": 2, "warmup_epochs": 1},
        "export": {"formats": [], "every": 0},
        "epochs": 2,
        "device": "cpu",
        "name": "source",
        "output_dir": str(where),
        "progress": False,
    }
    path = where / "source.yml"
    path.write_text(yaml.safe_dump(cfg))
    if search(["-c", str(path)]) != 0:
        raise SystemExit("the tiny search failed")
    return where / "source"


def copy_run(source: Path, target: Path, i: int) -> None:
    """A copy of `source` with its own state and slightly different accuracies and OPs."""
    shutil.copytree(source, target)
    metrics = target / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    for r in rows:
        r["val_acc"] = min(1.0, r["val_acc"] * (0.8 + 0.01 * i))
        r["ops"] = r["ops"] * (0.9 + 0.005 * i)
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    status = json.loads((target / "status.json").read_text())
    state = STATES[i % len(STATES)]
    status.update(state=state, pid=os.getpid(), host=socket.gethostname())
    status.update(heartbeat_unix=time.time() + 3600)  # "running" ones stay fresh meanwhile
    (target / "status.json").write_text(json.dumps(status))


def make_root(source: Path, root: Path, n: int) -> None:
    for i in range(n):
        copy_run(source, root / f"run_{i:03d}", i)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dashboard(root: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "lightnas", "dashboard", str(root), "--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"http://127.0.0.1:{port}/static/dashboard.css", timeout=2)
            return proc
        except httpx2.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the dashboard did not start")


def timed_get(url: str) -> float:
    start = time.perf_counter()
    response = httpx2.get(url, timeout=60)
    response.raise_for_status()
    return time.perf_counter() - start


def server_times(base: str, repeats: int) -> dict:
    first = timed_get(base + "/")
    warm = [timed_get(base + "/") for _ in range(repeats)]
    run = [timed_get(base + "/api/run/run_000") for _ in range(repeats)]
    return {
        "runs_page_first_s": first,
        "runs_page_s": statistics.median(warm),
        "run_json_s": statistics.median(run),
    }


def browser_times(base: str, chromium: str, repeats: int, n: int) -> dict:
    runs_page, run_page = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page()
        for _ in range(repeats):
            start = time.perf_counter()
            page.goto(base + "/")
            page.wait_for_function(f"document.querySelectorAll('tr.run').length === {n}")
            runs_page.append(time.perf_counter() - start)
            start = time.perf_counter()
            page.goto(base + "/run/run_000")
            page.wait_for_function("document.querySelector('main').dataset.loaded")
            page.wait_for_function("(document.getElementById('heatmap').data || []).length")
            run_page.append(time.perf_counter() - start)
        browser.close()
    return {"browser_runs_page_s": statistics.median(runs_page),
            "browser_run_page_s": statistics.median(run_page)}  # fmt: skip


def measure(args: argparse.Namespace, tmp: Path) -> dict:
    source = Path(args.source) if args.source else tiny_search(tmp)
    root = tmp / "root"
    make_root(source, root, args.runs)
    port = free_port()
    proc = start_dashboard(root, port)
    base = f"http://127.0.0.1:{port}"
    try:
        result = {"runs": args.runs, **server_times(base, args.repeats)}
        if args.browser and Path(args.browser).exists():
            result |= browser_times(base, args.browser, args.repeats, args.runs)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    return result


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args, Path(tmp))
    print(f"{'measurement':<24}{'seconds':>10}")
    for key, value in result.items():
        if key.endswith("_s"):
            print(f"{key:<24}{value:>10.3f}")
    print(json.dumps({"benchmark": "dashboard_load", "results": result}))
    return result


if __name__ == "__main__":
    main()
