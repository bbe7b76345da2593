"""The dashboard's Spaces page: the space files of <configs>/spaces, the editor's check endpoint
and a search launched on a space; the page itself in Chromium (Playwright, Debian's chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers.dashboard_server import status, wait_for
from playwright.sync_api import expect

from lightnas.dashboard.launch import launches_dir

SPACE = """\
version: 1
name: tiny
description: a tiny space for the dashboard's tests
input: [3, 8, 8]
nodes:
  - {name: stem, op: stem, type: thumbnail, channels: 16}
  - {name: stage1.block1.dense, op: dense_block, growth: 8}
  - {name: stage1.block1.improvement, op: improvement_block, growth: 8}
  - {name: stage1.transition, op: transition, channels: 16}
  - name: stage2.block1.conv
    choice:
      conv3x3: [{op: qconv, kernel: 3}, {op: bn}]
      conv1x1: [{op: qconv, kernel: 1}, {op: bn}]
      skip: identity
  - {name: stage2.add, op: add, inputs: [stage2.block1.conv, stage1.transition]}
  - {name: stage2.bits, op: qconv, kernel: 3, bits: [1, 2, 32], relu_at_32: true}
  - {name: head, op: head}
"""
SIZE = 2 * 2 * 3 * 3


@pytest.fixture
def spaces(configs: Path) -> Path:
    folder = configs / "spaces"
    folder.mkdir()
    (folder / "tiny.yml").write_text(SPACE)
    (folder / "broken.yml").write_text(SPACE.replace("op: transition", "op: transitoin"))
    (folder / "notes.txt").write_text("not a space")
    return folder


def test_the_list_shows_each_space_with_its_size_or_its_error(client, spaces):
    html = client.get("/spaces").text
    assert 'href="/spaces/tiny.yml"' in html and f'title="{SIZE}"' in html
    assert (
        "broken.yml, line 9: node stage1.transition: op &#39;transitoin&#39; is not known" in html
    )
    assert "notes.txt" not in html
    assert '<a href="/spaces">Spaces</a>' in client.get("/").text  # in the navigation


def test_the_summary_gives_the_cost_range(client, spaces):
    data = client.get("/api/space/tiny.yml").json()
    assert data["ok"] and data["size"] == str(SIZE) and len(data["points"]) == 4
    assert set(data["costs"]) == {"cheapest", "base", "largest"}
    assert data["svg"].lstrip().startswith("<?xml")
    assert client.get("/api/space/broken.yml").json()["line"] == 9
    for name in ("missing.yml", "..%2Fconfigs%2Ftiny.yml", "notes.txt"):
        assert client.get(f"/api/space/{name}").status_code == 404


def test_the_check_endpoint_answers_the_error_line_or_the_graph(client, spaces):
    bad = SPACE.replace("kernel: 1}", "kernel: 1, stride: 2}")
    answer = client.post("/api/space/check", content=bad, headers={"content-type": "text/plain"})
    data = answer.json()
    assert not data["ok"] and data["line"] == 10
    assert "candidate conv3x3 gives (16, 4, 4) but conv1x1 gives (16, 2, 2)" in data["error"]
    good = client.post("/api/space/check", content=SPACE, headers={"content-type": "text/plain"})
    data = good.json()
    assert data["ok"] and data["size"] == str(SIZE) and "<svg" in data["svg"]
    assert [p["name"] for p in data["points"]][-1] == "stage2.bits"


def test_a_launch_on_a_bad_space_starts_nothing(client, spaces, root):
    form = {"file": "tiny.yml", "text": SPACE.replace("op: head", "op: hed"), "config": "tiny.yml"}
    answer = client.post("/spaces/launch", data=form, follow_redirects=False)
    assert answer.status_code == 400
    assert "op &#39;hed&#39; is not known" in answer.text
    form = {"file": "tiny.yml", "text": SPACE, "config": ""}
    answer = client.post("/spaces/launch", data=form, follow_redirects=False)
    assert answer.status_code == 400 and "pick the config" in answer.text
    assert not list(launches_dir(root).iterdir())
    assert not list((root / ".dashboard" / "spaces").glob("*"))  # nothing kept


@pytest.mark.slow
def test_the_page_shows_edits_and_launches_a_space_in_the_browser(dashboard, page, spaces):
    page.goto(dashboard.url + "/spaces")
    row = page.locator("#spaces tr[data-file='tiny.yml']")
    expect(row.locator("td.num").nth(1)).to_have_text(str(SIZE))
    row.locator("a").click()
    page.wait_for_url("**/spaces/tiny.yml")
    expect(page.locator("#check")).to_have_text(
        f"valid: tiny, 4 decision points, {SIZE} architectures", timeout=30_000
    )
    expect(page.locator("#points tbody tr")).to_have_count(4)
    wait_for(
        lambda: page.evaluate("document.getElementById('graph').naturalWidth") > 0, 20, "the graph"
    )
    expect(page.locator("#costs tr[data-row='base'] td").nth(1)).not_to_be_empty(timeout=60_000)
    expect(page.locator("#summary-facts dd[data-term='architectures']")).to_have_text(str(SIZE))

    page.fill("#editor", SPACE.replace("op: dense_block", "op: dense_blok"))
    expect(page.locator("#check")).to_contain_text(
        "line 7: node stage1.block1.dense: op 'dense_blok'"
    )
    expect(page.locator("#check-line")).to_contain_text(
        "7 |   - {name: stage1.block1.dense, op: dense_blok"
    )
    expect(page.locator("#launch")).to_be_disabled()
    expect(page.locator("#editor")).to_have_class("invalid")

    edited = SPACE.replace("      skip: identity\n", "")  # the choice loses its skip
    page.fill("#editor", edited)
    expect(page.locator("#check")).to_have_text(
        f"valid: tiny, 4 decision points, {SIZE // 3 * 2} architectures"
    )
    expect(page.locator("#points tbody tr").nth(2)).to_contain_text("conv3x3 | conv1x1")
    expect(page.locator("#launch")).to_be_enabled()

    page.select_option("#config", "tiny.yml")
    page.fill("#name", "onspace")
    page.click("#launch")
    page.wait_for_url("**/run/onspace")
    expect(page.locator("#state")).to_have_text("finished", timeout=120_000)
    folder = dashboard.root / "onspace"
    assert status(folder)["state"] == "finished"
    config = yaml.safe_load((folder / "config.yml").read_text())
    assert config["model"]["name"] == "graph" and config.get("search_space") is None
    assert Path(config["model"]["file"]).read_text() == edited  # the edited text, kept
    best = yaml.safe_load((folder / "best_architecture.json").read_text())
    assert best["architecture"]["space"] == "tiny"
    assert best["architecture"]["choices"]["stage2.block1.conv"] in ("conv3x3", "conv1x1")
