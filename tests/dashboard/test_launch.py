"""Searches started from the dashboard: their own process and session, into the root, surviving
a dashboard restart; uploaded configs; the launch record of a search that cannot start."""

import os

import httpx2
import pytest
import yaml
from helpers.dashboard_server import Dashboard, status, wait_for
from helpers.runs import tiny_config


def finished(folder):
    return status(folder).get("state") == "finished"


@pytest.mark.slow
def test_a_launched_search_runs_in_its_own_session_and_survives_a_dashboard_restart(
    root, configs, tmp_path
):
    server = Dashboard(root, configs, tmp_path).start()
    try:
        form = {"config": "tiny.yml", "name": "launched", "overrides": "search.warmup_epochs=0"}
        # the config is parsed in a process of its own first (it imports torch): seconds
        response = httpx2.post(
            server.url + "/launch", data=form, follow_redirects=False, timeout=120
        )
        assert response.status_code == 303 and response.headers["location"] == "/run/launched"
        record = httpx2.get(server.url + "/api/run/launched").json()["launch"]
        pid = record["pid"]
        assert os.getsid(pid) == pid  # a session of its own: no Ctrl-C from the dashboard's
    finally:
        server.stop()
    folder = root / "launched"
    wait_for(lambda: finished(folder), 90, "the search to finish without the dashboard")
    assert status(folder)["pid"] == pid
    config = yaml.safe_load((folder / "config.yml").read_text())
    assert config["output_dir"] == str(root) and config["search"]["warmup_epochs"] == 0
    server = Dashboard(root, configs, tmp_path).start()
    try:
        runs = {r["path"]: r for r in httpx2.get(server.url + "/api/runs").json()}
        assert runs["launched"]["state"] == "finished" and runs["launched"]["epoch"] == 2
    finally:
        server.stop()


@pytest.mark.slow
def test_an_uploaded_config_with_overrides_runs_and_a_taken_name_gets_a_suffix(
    client, root, tmp_path
):
    text = yaml.safe_dump(tiny_config(tmp_path, name="tiny", epochs=5))
    files = {"upload": ("my config.yml", text.encode(), "application/x-yaml")}
    response = client.post("/launch", data={"epochs": "1"}, files=files, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/run/tiny_2"
    (upload,) = root.glob(".dashboard/uploads/*_my_config_*.yml")
    assert upload.read_text() == text
    page = client.get("/run/tiny_2")  # before or after its folder exists
    assert page.status_code == 200
    wait_for(lambda: finished(root / "tiny_2"), 90, "the uploaded search to finish")
    data = client.get("/api/run/tiny_2").json()
    assert data["summary"]["epoch"] == 1 and data["summary"]["epochs"] == 1
    ended = lambda: not client.get("/api/run/tiny_2").json()["launch"]["alive"]  # noqa: E731
    wait_for(ended, 30, "the search's process to end")


@pytest.mark.slow
def test_a_search_that_fails_while_starting_shows_why(client, root, configs):
    (configs / "missing_data.yml").write_text(
        yaml.safe_dump({**tiny_config(configs), "data": {"dataset": "cifar10", "data_dir": "x"}})
    )
    # valid as a config (the CLI checks the dataset only once it builds the run's parts)
    response = client.post("/launch", data={"config": "missing_data.yml", "name": "nodata"})
    assert response.status_code == 200  # redirected to the run's page, which shows the output
    data = wait_for(
        lambda: (d := client.get("/api/run/nodata").json())["summary"]["state"] == "failed" and d,
        60,
        "the search to fail",
    )
    assert any("cifar" in line.lower() for line in data["launch"]["log"])
    assert not (root / "nodata").exists()
