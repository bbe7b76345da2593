"""Every page and endpoint of the dashboard over a finished tiny search, and the refusals."""

import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
import yaml
from fastapi.testclient import TestClient
from helpers.dashboard import status, sweep
from helpers.dashboard_server import BASE_URL, child_env
from helpers.locks import HOLD
from helpers.runs import tiny_config

from lightnas.dashboard.app import Settings, create_app
from lightnas.dashboard.checking import MAX_FORM_BYTES

SECRET = "TOP-SECRET-CONTENT"


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
        ({"config": "tiny.yml", "overrides": "output_dir=/tmp"}, None, "inside the dashboard"),
        ({"config": "tiny.yml", "overrides": "resume=x"}, None, "may not set"),
        ({"config": "tiny.yml", "overrides": "no_such.key=1"}, None, "not a config key"),
        ({"config": "tiny.yml", "overrides": "name=x"}, None, "Name field"),
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


def test_an_opaque_or_https_origin_fails_the_same_origin_check(client):
    assert client.post("/stop/tiny", headers={"origin": "null"}).status_code == 403
    assert client.post("/stop/tiny", headers={"origin": "https://127.0.0.1"}).status_code == 403
    assert client.post("/stop/tiny", headers={"origin": "http://127.0.0.1"}).status_code == 409


# ---- files out of the root -------------------------------------------------------------------
def test_the_architecture_and_the_run_data_follow_no_link_out_of_the_root(client, root, tmp_path):
    secret = tmp_path / "secret.svg"
    secret.write_text(f"<svg>{SECRET}</svg>")
    tiny = root / "tiny"
    for suffix in (".svg", ".txt", ".dot", ".json"):
        (tiny / "logs" / "architectures" / f"epoch_9{suffix}").symlink_to(secret)
    response = client.get("/api/architecture/tiny", params={"epoch": 9})
    assert response.status_code == 404 and SECRET not in response.text
    (root / "inside.svg").write_text("<svg>inside the root</svg>")  # a link inside is followed
    (tiny / "logs" / "architectures" / "epoch_8.svg").symlink_to(root / "inside.svg")
    assert client.get("/api/architecture/tiny", params={"epoch": 8}).text == (
        "<svg>inside the root</svg>"
    )
    (tiny / "exported_models" / "inference_only" / "epoch_9.onnx").symlink_to(secret)
    (tiny / "log.txt").unlink()
    (tiny / "log.txt").symlink_to(secret)
    response = client.get("/api/run/tiny")
    assert response.status_code == 200 and SECRET not in response.text
    names = [d["name"] for d in response.json()["downloads"]]
    assert "config.yml" in names and "epoch_9.onnx" not in names and "log.txt" not in names
    for item in response.json()["downloads"]:
        assert client.get(f"/download/{item['path']}").status_code == 200


def test_the_sweep_page_opens_no_storage_but_sqlite_files_inside_the_root(client, root, tmp_path):
    folder = sweep(root / "sweeps" / "s", root / "tiny", [0.5, 0.7], [100, 90])
    config = yaml.safe_load((folder / "sweep.yml").read_text())
    outside, missing = tmp_path / "new.db", folder / "other.db"
    (folder / "linked.db").symlink_to(outside)
    for url, opened in (
        (f"sqlite:///{outside}", False),
        (f"sqlite:///{folder / 'linked.db'}", False),
        ("postgresql://user:pw@127.0.0.1:1/db", False),
        (f"sqlite:///{missing}", True),  # inside the root, not there yet: nothing to read
        (f"sqlite:///{folder / 'study.db'}", True),
    ):
        (folder / "sweep.yml").write_text(yaml.safe_dump({**config, "storage": url}))
        data = client.get("/api/sweep/sweeps/s").json()
        refused = "the sweep's storage is not a SQLite file inside the dashboard's root"
        assert (data["error"] is None) is opened and refused in (data["error"] or refused)
        assert len(data["studies"]) == (1 if url.endswith("study.db") else 0)
    assert not outside.exists() and not missing.exists()


# ---- stop ------------------------------------------------------------------------------------
def _running(folder: Path, pid: int) -> None:
    (folder / "status.json").write_text(json.dumps(status("running", 1, 2, pid=pid)))


def test_stop_signals_no_process_but_the_one_holding_the_runs_lock(client, root):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _running(root / "tiny", stranger.pid)
        response = client.post("/stop/tiny")
        # the folder's free lock already says the run is not alive; either refusal names why
        assert response.status_code == 409
        assert any(
            why in shown_error(response)
            for why in ("is not seen holding the folder's lock", "is not running")
        )
        with pytest.raises(subprocess.TimeoutExpired):
            stranger.wait(timeout=1)  # no SIGINT: it still sleeps
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_interrupts_the_process_holding_the_runs_lock(client, root):
    command = [sys.executable, "-c", HOLD, str(root / "tiny" / ".lock")]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert run.stdout.readline() == "held\n"
        _running(root / "tiny", run.pid)
        response = client.post("/stop/tiny", follow_redirects=False)
        assert response.status_code == 303
        assert run.wait(timeout=20) == -signal.SIGINT  # Ctrl-C, not handled: it ends by it
    finally:
        run.kill()
        run.wait()


# ---- what a launch may set -------------------------------------------------------------------
def shown_error(response) -> str:
    """The error line a page shows (unescaped)."""
    found = re.search(r'<p class="error" id="error">(.*?)</p>', response.text, re.DOTALL)
    return html.unescape(found[1]) if found else ""


def upload(client: TestClient, text: str, **form):
    files = {"upload": ("up.yml", text.encode(), "application/x-yaml")}
    return client.post("/launch", data=form, files=files, follow_redirects=False)


def launched(root: Path) -> list[Path]:
    return list(root.glob(".dashboard/launches/*")) + list(root.glob(".dashboard/uploads/*"))


@pytest.fixture
def secrets(tmp_path) -> dict[str, Path]:
    """Files outside the root no answer may show: plain text and a YAML mapping."""
    (tmp_path / "secret.txt").write_text(f"{SECRET} line one\nline two\n")
    (tmp_path / "secret.yml").write_text(f"{SECRET}: 1\n")
    return {"txt": tmp_path / "secret.txt", "yml": tmp_path / "secret.yml"}


@pytest.mark.parametrize("kind", ["txt", "yml"])
@pytest.mark.parametrize("key", ["config", "model", "data", "search"])
def test_a_config_may_not_name_another_file_to_load(client, root, tmp_path, secrets, key, kind):
    text = yaml.safe_dump({**tiny_config(tmp_path), key: str(secrets[kind])})
    response = upload(client, text)
    assert response.status_code == 400 and key in response.text
    assert SECRET not in response.text
    response = client.post(
        "/launch", data={"config": "tiny.yml", "overrides": f"{key}={secrets[kind]}"}
    )
    assert response.status_code == 400 and SECRET not in response.text
    assert not launched(root)


def test_a_config_may_not_resume_force_or_write_outside_the_root(client, root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(root / "tiny", elsewhere)
    before = {p: p.read_bytes() for p in elsewhere.rglob("*") if p.is_file()}
    for extra, message in (
        ({"resume": str(elsewhere)}, "resume: a launch from the dashboard may not set it"),
        ({"resume": str(elsewhere), "force": True}, "a launch from the dashboard may not set it"),
        ({"force": True}, "force: a launch from the dashboard may not set it"),
        ({"output_dir": str(tmp_path / "out")}, "is not a folder inside the dashboard's root"),
        ({"output_dir": str(root / ".dashboard")}, "is not a folder inside the dashboard's root"),
        ({"output_dir": str(root / "tiny" / "..") + "/../out"}, "inside the dashboard's root"),
    ):
        response = upload(client, yaml.safe_dump({**tiny_config(tmp_path), **extra}))
        assert response.status_code == 400 and message in shown_error(response)
    response = client.post(
        "/launch", data={"config": "tiny.yml", "overrides": f"output_dir={tmp_path / 'out'}"}
    )
    assert response.status_code == 400 and "inside the dashboard's root" in shown_error(response)
    assert not launched(root) and not (tmp_path / "out").exists()
    assert {p: p.read_bytes() for p in elsewhere.rglob("*") if p.is_file()} == before


def test_an_output_dir_inside_the_root_is_where_the_search_writes(client, root, tmp_path):
    text = yaml.safe_dump(tiny_config(tmp_path, output_dir=str(root / "group"), name="inner"))
    response = upload(client, text)
    assert response.status_code == 303 and response.headers["location"] == "/run/group/inner"
    argv = client.get("/api/run/group/inner").json()["launch"]["argv"]
    assert argv[-4:] == ["--output_dir", str(root.resolve() / "group"), "--name", "inner"]


IMPORTED = "import os, pathlib\npathlib.Path({marker!r}).write_text(str(os.getpid()))\n"


@pytest.fixture
def extension(tmp_path) -> tuple[Path, Path]:
    """A module that writes the pid of the process importing it into a marker file."""
    marker = tmp_path / "imported_by"
    module = tmp_path / "marker_extension.py"
    module.write_text(IMPORTED.format(marker=str(marker)))
    return module, marker


def test_a_launch_may_not_import_modules_unless_the_dashboard_allows_it(
    client, root, tmp_path, extension
):
    module, marker = extension
    response = upload(client, yaml.safe_dump(tiny_config(tmp_path, imports=[str(module)])))
    assert response.status_code == 400 and "--allow-imports" in response.text
    overrides = f"imports=[{module}]"
    response = client.post("/launch", data={"config": "tiny.yml", "overrides": overrides})
    assert response.status_code == 400 and "--allow-imports" in response.text
    assert not marker.exists() and not launched(root)
    assert "--allow-imports" in client.get("/launch").text


def test_allowed_imports_run_in_the_checking_process_never_in_the_server(
    root, configs, tmp_path, extension
):
    module, marker = extension
    settings = Settings(root=root, configs=configs, cwd=tmp_path, allow_imports=True)
    with TestClient(create_app(settings), base_url=BASE_URL) as c:
        text = yaml.safe_dump(tiny_config(tmp_path, imports=[str(module)], epochs=0))
        response = upload(c, text)  # imports, then refused for its epochs
    assert response.status_code == 400 and "epochs=0" in response.text
    assert int(marker.read_text()) != os.getpid()


def test_a_configs_folder_config_and_a_resumed_one_import_only_in_the_checking_process(
    client, root, configs, tmp_path, extension
):
    module, marker = extension
    bad = {"imports": [str(module)], "model": {"name": "not_a_model"}}
    (configs / "ext.yml").write_text(yaml.safe_dump({**tiny_config(tmp_path), **bad}))
    response = client.post("/launch", data={"config": "ext.yml"})
    assert response.status_code == 400 and "not_a_model" in response.text
    assert int(marker.read_text()) != os.getpid()
    marker.unlink()
    config = yaml.safe_load((root / "tiny" / "config.yml").read_text())
    (root / "tiny" / "config.yml").write_text(yaml.safe_dump({**config, **bad}))
    response = client.post("/resume/tiny", data={"epochs": "3"})
    assert response.status_code == 409 and "not_a_model" in response.text
    assert int(marker.read_text()) != os.getpid()


# ---- the size of a form ----------------------------------------------------------------------
BOUNDARY = "lightnasboundary"
CHUNK = 64 * 1024


def post_launch(app, body_chunks: int, length: int | None) -> tuple[int, bytes, int]:
    """POST /launch straight to the ASGI app: a multipart upload of `body_chunks` 64 KiB chunks
    made as they are read; its status, its body and how many chunks the app read."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="upload"; filename="big.yml"\r\n'
        "Content-Type: application/x-yaml\r\n\r\n"
    ).encode()
    chunks = iter([head])
    filler = (b"#" * CHUNK for _ in range(body_chunks))
    read, answer = 0, {"body": b""}
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
    ]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))

    async def receive() -> dict:
        nonlocal read
        chunk = next(chunks, None) or next(filler, None)
        if chunk is None:
            return {"type": "http.request", "body": f"\r\n--{BOUNDARY}--\r\n".encode()}
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/launch",
        "raw_path": b"/launch",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8990),
    }
    anyio.run(app, scope, receive, send)
    return answer["status"], answer["body"], read


@pytest.mark.parametrize("declared", [True, False])
def test_a_huge_upload_is_refused_without_being_read_whole(root, configs, tmp_path, declared):
    app = create_app(Settings(root=root, configs=configs, cwd=tmp_path))
    chunks = 200 * 1024 * 1024 // CHUNK  # 200 MiB
    code, body, read = post_launch(app, chunks, chunks * CHUNK if declared else None)
    assert code == 413 and b"the form is larger than" in body
    # by its Content-Length before reading anything; a chunked body once past the limit
    assert read == 0 if declared else read <= MAX_FORM_BYTES // CHUNK + 2
    assert not list(root.glob(".dashboard/uploads/*"))
