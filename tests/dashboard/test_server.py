"""Every page and endpoint of the dashboard over a finished tiny search, and the refusals."""

import json
import os
import shutil

import pytest
from fastapi.testclient import TestClient

from lightnas.dashboard.app import Settings, create_app


def test_the_runs_page_lists_the_finished_search_with_its_numbers(client, root):
    page = client.get("/")
    assert page.status_code == 200
    assert 'data-path="tiny" data-state="finished"' in page.text
    rows = {r["path"]: r for r in client.get("/api/runs").json()}
    tiny = rows["tiny"]
    lines = (root / "tiny" / "metrics.jsonl").read_text().splitlines()
    metrics = [json.loads(line) for line in lines]
    assert (tiny["state"], tiny["epoch"], tiny["epochs"]) == ("finished", 2, 2)
    assert len(metrics) == 2
    final = json.loads((root / "tiny" / "final_selection.json").read_text())
    winner = final["candidates"][final["winner"]]  # the run's result (test_result.py: more)
    assert (tiny["val_acc"], tiny["ops"]) == (winner["val_acc"], winner["costs"]["ops"])
    assert (tiny["model"], tiny["dataset"]) == ("meliusnet_flex", "mock")


def test_the_runs_table_filters_and_sorts(client, root):
    shutil.copytree(root / "tiny", root / "other")
    assert client.get("/runs-table", params={"q": "oth"}).text.count('class="run"') == 1
    assert client.get("/runs-table", params={"state": "running"}).text.count('class="run"') == 0
    names = [r["path"] for r in client.get("/api/runs?sort=name&order=asc").json()]
    assert names == ["other", "tiny"]
    names = [r["path"] for r in client.get("/api/runs?sort=name&order=desc").json()]
    assert names == ["tiny", "other"]


def test_the_run_data_has_curves_heat_map_scatter_architectures_log_and_downloads(client, root):
    assert 'data-page="run" data-path="tiny"' in client.get("/run/tiny").text
    data = client.get("/api/run/tiny").json()
    charts = {c["id"]: c for c in data["charts"]}
    assert charts["accuracy"]["traces"][0]["x"] == [1, 2]
    assert charts["entropy"]["traces"]  # the controller ran in epoch 2
    heat = data["heatmap"]
    assert heat["epochs"] == [1, 2] and heat["labels"] and len(heat["z"][0]) == 2
    assert len(data["scatter"]["points"]) >= 2 and data["scatter"]["front"]["ops"]
    assert data["scatter"]["base"]["ops"] > 0
    assert data["architecture_epochs"] == [1, 2]
    assert data["log"][0].startswith("training folder:")
    kinds = {d["kind"] for d in data["downloads"]}
    assert {"pt2", "ONNX", "safetensors", "JSON", "yml"} <= kinds


def test_the_architecture_is_served_as_svg(client):
    svg = client.get("/api/architecture/tiny", params={"epoch": 2})
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content and b"stage1.block1.dense" in svg.content
    assert client.get("/api/architecture/tiny", params={"epoch": 9}).status_code == 404
    assert client.get("/api/architecture/tiny", params={"epoch": 0}).status_code == 422


def test_a_download_returns_the_exact_bytes_of_the_file(client, root):
    data = client.get("/api/run/tiny").json()
    for item in data["downloads"]:
        response = client.get(f"/download/{item['path']}")
        assert response.status_code == 200
        assert response.content == (root / item["path"]).read_bytes()
        assert "attachment" in response.headers["content-disposition"]


@pytest.mark.parametrize(
    "url",
    [
        "/download/%2e%2e/%2e%2e/etc/passwd",
        "/download/tiny/%2e%2e/%2e%2e/secret.txt",
        "/download/..%2F..%2Fsecret.txt",
        "/download/%2Fetc%2Fpasswd",
        "/download/.dashboard/launches/x.log",
        "/download/escape/secret.txt",
        "/download/tiny/no-such-file",
        "/download/tiny",
        "/api/run/..%2F..",
        "/run/%2e%2e",
        "/api/architecture/escape?epoch=1",
    ],
)
def test_downloads_and_pages_refuse_paths_outside_the_root(client, root, tmp_path, url):
    (tmp_path / "secret.txt").write_text("TOP-SECRET-CONTENT")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET-CONTENT")
    (root / "escape").symlink_to(outside)
    (root / ".dashboard" / "launches").mkdir(parents=True)
    (root / ".dashboard" / "launches" / "x.log").write_text("TOP-SECRET-CONTENT")
    response = client.get(url)
    assert response.status_code == 404
    assert b"TOP-SECRET" not in response.content and b"root:" not in response.content


def test_compare_shows_two_runs_curves_and_their_architectures(client, root):
    shutil.copytree(root / "tiny", root / "other")
    page = client.get("/compare", params={"run": ["tiny", "other"]})
    assert page.status_code == 200 and "compare-charts" in page.text
    data = client.get("/api/compare", params={"run": ["tiny", "other"]}).json()
    assert [r["summary"]["path"] for r in data["runs"]] == ["tiny", "other"]
    assert all(len(c["traces"]) == 2 for c in data["charts"])
    assert data["choices"] and not any(c["differs"] for c in data["choices"])
    assert client.get("/api/compare", params={"run": ["tiny"]}).status_code == 400
    assert client.get("/api/compare", params={"run": ["tiny", "nope"]}).status_code == 404
    assert "Pick two or more runs" in client.get("/compare").text


def test_static_files_and_plotly_come_from_the_installed_packages(client):
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert "max-age" in js.headers["cache-control"]
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/dashboard.css").status_code == 200
    for page in ("/", "/run/tiny", "/compare", "/launch"):
        assert "http" not in "".join(
            line for line in client.get(page).text.splitlines() if "src=" in line or "href=" in line
        ).replace("http://127.0.0.1", "")


def test_pages_forbid_scripts_from_elsewhere_and_framing(client):
    csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert client.get("/api/runs").headers["x-content-type-options"] == "nosniff"


def test_unknown_runs_and_sweeps_are_404(client):
    assert client.get("/run/nope").status_code == 404
    assert client.get("/api/run/nope").status_code == 404
    assert client.get("/sweep/tiny").status_code == 404
    assert client.get("/api/sweep/nope").status_code == 404


# ---- safety -------------------------------------------------------------------------------
def test_a_token_is_needed_on_every_request_when_set(root):
    app = create_app(Settings(root=root, token="s3cret", host="0.0.0.0"))
    with TestClient(app, base_url="http://example.org:8990") as c:
        for url in ("/", "/api/runs", "/download/tiny/config.yml", "/static/dashboard.css"):
            assert c.get(url).status_code == 401
        assert c.get("/", params={"token": "wrong"}).status_code == 401
        assert c.post("/stop/tiny").status_code in (401, 403)
        first = c.get("/", params={"token": "s3cret"})
        assert (
            first.status_code == 200 and "lightnas_dashboard_token" in first.headers["set-cookie"]
        )
        assert c.get("/api/runs").status_code == 200  # the cookie now
    with TestClient(app, base_url="http://example.org:8990") as c:
        headers = {"Authorization": "Bearer s3cret"}
        assert c.get("/api/run/tiny", headers=headers).status_code == 200


def test_on_loopback_a_foreign_host_header_and_cross_site_posts_are_refused(client):
    assert client.get("/", headers={"host": "evil.example:8990"}).status_code == 403
    assert client.get("/", headers={"host": "localhost:8990"}).status_code == 200
    evil = {"origin": "http://evil.example"}
    assert client.post("/stop/tiny", headers=evil).status_code == 403
    assert client.post("/launch", data={"config": "tiny.yml"}, headers=evil).status_code == 403
    cross = {"sec-fetch-site": "cross-site"}
    assert client.post("/stop/tiny", headers=cross).status_code == 403
    opaque = {"origin": "null", "sec-fetch-site": "cross-site"}
    assert client.post("/stop/tiny", headers=opaque).status_code == 403
    same = {"origin": "null", "sec-fetch-site": "same-origin"}
    assert client.post("/stop/tiny", headers=same).status_code == 409  # not running
    assert list((client.app.state.settings.root).iterdir()) == [
        client.app.state.settings.root / "tiny"
    ]


def test_stop_and_resume_refuse_what_they_cannot_do(client, root):
    stop = client.post("/stop/tiny")
    assert stop.status_code == 409 and "not running" in stop.text
    resume = client.post("/resume/tiny")
    assert resume.status_code == 409 and "raise epochs" in resume.text
    assert client.post("/resume/tiny", data={"epochs": "x"}).status_code == 409
    assert client.post("/stop/nope").status_code == 404
    assert not (root / ".dashboard" / "launches").exists() or not os.listdir(
        root / ".dashboard" / "launches"
    )


# ---- launch refusals ----------------------------------------------------------------------
def test_the_launch_page_offers_the_configs(client):
    page = client.get("/launch")
    assert page.status_code == 200 and '<option value="tiny.yml"' in page.text


@pytest.mark.parametrize(
    ("form", "upload", "message"),
    [
        ({}, None, "pick a config"),
        ({"config": "../secret.yml"}, None, "pick a config"),
        ({}, "epochs: [1, 2\n", "not valid YAML"),
        ({}, "- a\n- b\n", "mapping"),
        ({}, "!!python/object/apply:os.system ['touch pwned']\n", "not valid YAML"),
        ({}, "epochs: 2\nno_such_key: 1\n", "no_such_key"),
        ({}, "model:\n  name: not_a_model\n", "not_a_model"),
        ({"config": "tiny.yml", "epochs": "0"}, None, "epochs=0 must be &gt;= 1"),
        ({"config": "tiny.yml", "overrides": "search.cost_weight=0.5"}, None, "cost_weight"),
        ({"config": "tiny.yml", "overrides": "output_dir=/tmp"}, None, "not a config key"),
        ({"config": "tiny.yml", "overrides": "resume=x"}, None, "not a config key"),
        ({"config": "tiny.yml", "overrides": "justaword"}, None, "key=value"),
        ({"config": "tiny.yml", "name": "../x"}, None, "name"),
        ({}, "epochs: 1\n" + "#" * 300_000, "larger than"),
    ],
)
def test_an_invalid_config_is_refused_before_anything_starts(
    client, root, tmp_path, form, upload, message
):
    files = {"upload": ("bad.yml", upload.encode(), "application/x-yaml")} if upload else None
    response = client.post("/launch", data=form, files=files)
    assert response.status_code == 400
    assert message in response.text
    assert sorted(p.name for p in root.iterdir()) == ["tiny"] or not list(
        (root / ".dashboard" / "launches").glob("*")
    )
    assert not list(root.glob(".dashboard/uploads/*"))  # a refused upload is not kept
    assert not (tmp_path / "pwned").exists()
