"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright (no browser
download), against `python -m lightnas dashboard` on a free loopback port."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helpers.dashboard import sweep
from helpers.dashboard_server import Dashboard, status, wait_for
from helpers.runs import tiny_config
from playwright.sync_api import Page, expect

from lightnas.dashboard.formatting import percent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shown(tmp_path_factory, finished_run) -> Iterator[Dashboard]:
    """A dashboard over a root with the finished search, a copy of it and a sweep (read only)."""
    tmp = tmp_path_factory.mktemp("shown")
    root = tmp / "trainings"
    shutil.copytree(finished_run, root / "tiny")
    shutil.copytree(finished_run, root / "copy")
    sweep(root / "sweeps" / "s", finished_run, [0.5, 0.7, 0.6], [100, 150, 90])
    server = Dashboard(root, tmp, tmp).start()
    yield server
    server.stop()


def plot(page: Page, element: str) -> dict:
    """What Plotly drew into #element: its traces (type, name, number of x / z values)."""
    return page.evaluate(
        """(id) => (document.getElementById(id).data || []).map((t) => ({
            type: t.type, name: t.name, n: (t.x || []).length, z: (t.z || []).length,
            width: t.z && t.z.length ? t.z[0].length : 0}))""",
        element,
    )


def open_run(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => document.querySelector('main').dataset.loaded")


# ---- reading -------------------------------------------------------------------------------
def test_the_runs_list_shows_the_finished_tiny_search(shown, page):
    page.goto(shown.url + "/")
    row = page.locator("tr.run[data-path='tiny']")
    expect(row.locator(".badge")).to_have_text("finished")
    expect(row.locator("td.num").first).to_have_text("2 / 2")
    expect(page.locator("tr.run[data-path='sweeps/s']")).to_contain_text("sweep")
    page.fill("input[name=q]", "cop")
    page.click("form.filters button")
    expect(page.locator("tr.run")).to_have_count(1)
    expect(page.locator("tr.run")).to_have_attribute("data-path", "copy")


def test_the_run_page_draws_curves_heat_map_scatter_architecture_and_log(shown, page):
    page.goto(shown.url + "/")
    page.click("tr.run[data-path='tiny'] td.name a")
    page.wait_for_function("() => document.querySelector('main').dataset.loaded")
    expect(page.locator("#state")).to_have_text("finished")
    for chart in ("chart-accuracy", "chart-reward", "chart-entropy", "chart-cost"):
        traces = plot(page, chart)
        assert traces and all(t["n"] >= 1 for t in traces), chart
        assert page.locator(f"#{chart} .scatterlayer .trace").count() == len(traces)
    assert {t["name"] for t in plot(page, "chart-accuracy")} >= {"train", "validation"}
    (heat,) = plot(page, "heatmap")
    assert heat["type"] == "heatmap" and heat["z"] >= 4 and heat["width"] == 2
    assert page.locator("#heatmap .hm image").count() == 1  # the drawn heat map
    traces = {t["name"]: t for t in plot(page, "scatter")}
    assert traces["evaluated"]["n"] >= 2 and traces["Pareto front"]["n"] >= 1
    assert any(name.startswith("base network") for name in traces)
    assert page.locator("#scatter .scatterlayer .point").count() >= 3
    image = page.locator("#arch-img")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.getElementById('arch-img').naturalWidth > 0")
    # the run's result, as the files hold it: the final selection's winner, drawn first
    final = json.loads((shown.root / "tiny" / "final_selection.json").read_text())
    won = final["candidates"][final["winner"]]
    result = f"result: epoch {won['proposed_epoch']} (final selection)"
    expect(page.locator("#arch-epoch option").first).to_have_text(result)
    expect(page.locator("#arch-epoch")).to_have_value("")
    summary = page.locator("#summary")
    expect(summary).to_contain_text(f"Val acc (result){percent(won['val_acc'])}")
    expect(summary).to_contain_text(f"Test acc (result){percent(won['test_acc'])}")
    expect(page.locator("#log")).to_contain_text("training folder:")
    expect(page.locator("#downloads a")).not_to_have_count(0)
    expect(page.locator("#stop-form")).to_be_hidden()


def test_a_download_from_the_page_returns_the_exact_bytes_of_the_file(shown, page):
    open_run(page, shown.url + "/run/tiny")
    for name, where in (
        ("epoch_2.onnx", "exported_models/inference_only"),
        ("config.yml", ""),
    ):
        with page.expect_download() as info:
            page.click(f"#downloads a:text-is('{name}')")
        got = Path(info.value.path()).read_bytes()
        assert got == (shown.root / "tiny" / where / name).read_bytes()


def test_compare_draws_both_runs_and_their_architectures(shown, page):
    page.goto(shown.url + "/")
    page.check("input[value='tiny']")
    page.check("input[value='copy']")
    page.click("#compare-form button")
    page.wait_for_function("() => document.getElementById('compare').dataset.loaded")
    for chart in ("compare-val_acc", "compare-reward", "compare-ops"):
        assert [t["n"] for t in plot(page, chart)] == [2, 2]
    assert [t["n"] for t in plot(page, "compare-entropy")] == [1, 1]  # epoch 1 is warm-up
    expect(page.locator("#compare-archs img")).to_have_count(2)
    expect(page.locator("#choices tbody tr")).not_to_have_count(0)


def test_the_sweep_page_draws_its_trials_front_and_importances(shown, page):
    page.goto(shown.url + "/sweep/sweeps/s")
    page.wait_for_function("() => document.querySelector('main').dataset.loaded")
    front = {t["name"]: t["n"] for t in plot(page, "sweep-front")}
    assert front == {"trials": 3, "Pareto front": 2}  # 0.5 at 100 OPs loses to 0.6 at 90
    expect(page.locator("#studies table tr")).to_have_count(4)  # header + 3 trials
    expect(page.locator("#importances .chart")).to_have_count(2)  # val_acc and ops
    expect(page.locator("#trial-folders tbody tr")).to_have_count(3)
    accuracies = page.locator("#trial-folders tbody tr td:nth-child(4)").all_inner_texts()
    assert sorted(accuracies) == ["50.0 %", "60.0 %", "70.0 %"]  # each trial's result
    expect(page.locator("#sweep-best")).to_have_text("70.0 %")  # the best of them


# ---- launching -----------------------------------------------------------------------------
def launch_from_page(page: Page, url: str, config: Path, name: str) -> None:
    page.goto(url + "/launch")
    page.set_input_files("#upload", str(config))
    page.fill("#name", name)
    page.click("#start")
    page.wait_for_url(f"**/run/{name}")


def test_a_search_launched_from_the_page_appears_runs_and_finishes(dashboard, page, tmp_path):
    config = tmp_path / "upload.yml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path, name="ignored")))
    launch_from_page(page, dashboard.url, config, "fromweb")
    expect(page.locator("#state")).to_have_text("finished", timeout=90_000)
    traces = plot(page, "chart-accuracy")
    assert traces and traces[0]["n"] == 2
    page.goto(dashboard.url + "/")
    expect(page.locator("tr.run[data-path='fromweb'] .badge")).to_have_text("finished")


def test_a_refused_upload_says_why_in_one_line_and_shows_no_file_it_names(
    dashboard, page, console_errors, tmp_path
):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT\n")
    config = tmp_path / "names_a_file.yml"
    config.write_text(yaml.safe_dump({**tiny_config(tmp_path), "config": str(secret)}))
    page.goto(dashboard.url + "/launch")
    expect(page.locator("#rules")).to_contain_text("--allow-imports")
    page.set_input_files("#upload", str(config))
    page.fill("#name", "refused")
    page.click("#start")
    expect(page.locator("#error")).to_have_text(
        "config: a launch from the dashboard may not set it"
    )
    expect(page.locator("body")).not_to_contain_text("TOP-SECRET")
    expect(page.locator("#name")).to_have_value("refused")  # the form is kept
    assert not (dashboard.root / "refused").exists()
    console_errors.remove(  # the page answered 400 Bad Request, as it should
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    )


def test_stop_from_the_page_leaves_a_resumable_checkpoint(dashboard, page, tmp_path):
    config = tmp_path / "long.yml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path, epochs=200)))
    launch_from_page(page, dashboard.url, config, "long")
    folder = dashboard.root / "long"
    wait_for(lambda: (status(folder).get("epoch") or 0) >= 1, 90, "a first epoch")
    expect(page.locator("#state")).to_have_text("running", timeout=10_000)
    page.click("#stop")
    expect(page.locator("#state")).to_have_text("interrupted", timeout=60_000)
    assert (folder / "enas_checkpoint" / "last.pt").is_file()
    done = status(folder)["epoch"]
    assert 1 <= done < 200
    page.fill("#resume-form input[name=epochs]", str(done + 1))
    page.click("#resume")
    expect(page.locator("#state")).to_have_text("finished", timeout=90_000)
    log = (folder / "log.txt").read_text()
    assert "interrupted after" in log and f"resuming {folder}" in log
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == done + 1
