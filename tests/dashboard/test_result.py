"""The dashboard shows the run's result that the files hold (the final selection's winner, in
best_architecture.json and final_selection.json, read here independently) on the runs list, the
run page, its architecture and the compare page."""

import json
import re
import shutil

from lightnas.dashboard.rundata import pareto_indices


def winner(root, name="tiny") -> dict:
    final = json.loads((root / name / "final_selection.json").read_text())
    return final["candidates"][final["winner"]]


def test_the_runs_list_and_the_run_page_show_the_final_selections_winner(client, root):
    w = winner(root)
    best = json.loads((root / "tiny" / "best_architecture.json").read_text())
    assert best["architecture"]["choices"] == w["architecture"]
    (row,) = [r for r in client.get("/api/runs").json() if r["path"] == "tiny"]
    assert (row["result_epoch"], row["selected_by"]) == (w["proposed_epoch"], "final selection")
    assert (row["val_acc"], row["test_acc"]) == (w["val_acc"], w["test_acc"])
    costs = w["costs"]
    assert (row["ops"], row["model_bits"], row["params"]) == (
        costs["ops"],
        costs["model_bits"],
        costs["params"],
    )
    data = client.get("/api/run/tiny").json()
    assert data["summary"] == row
    result = data["result"]
    assert result["final"] and result["epoch"] == w["proposed_epoch"]
    assert result["architecture"] == w["architecture"] and result["costs"] == costs


def drawn(svg: str) -> dict[str, str]:
    """The decision points and choices an architecture's SVG shows (its nodes' two lines)."""
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    pairs = zip(texts, texts[1:], strict=False)
    return {a: b for a, b in pairs if a.startswith("stage") and "." in a}


def test_the_architecture_without_an_epoch_is_the_results(client, root):
    w = winner(root)
    svg = client.get("/api/architecture/tiny")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert drawn(svg.text) == w["architecture"]
    assert ">selected_by: final selection</text>" in svg.text
    assert f">epoch: {w['proposed_epoch']}</text>" in svg.text
    # another result in the file: the drawing follows it
    path = root / "tiny" / "best_architecture.json"
    best = json.loads(path.read_text())
    other = {p: ("conv1x1" if c == "conv3x3" else c) for p, c in w["architecture"].items()}
    assert other != w["architecture"]
    best["architecture"]["choices"] = best["stats"]["architecture"] = other
    path.write_text(json.dumps(best))
    assert drawn(client.get("/api/architecture/tiny").text) == other


def test_without_a_result_the_architecture_is_404(client, root):
    (root / "tiny" / "best_architecture.json").unlink()
    (root / "tiny" / "metrics.jsonl").write_text("")
    assert client.get("/api/run/tiny").json()["result"] is None
    assert client.get("/api/architecture/tiny").status_code == 404


def test_compare_shows_each_runs_result(client, root):
    shutil.copytree(root / "tiny", root / "other")
    data = client.get("/api/compare", params={"run": ["tiny", "other"]}).json()
    arch = winner(root)["architecture"]
    assert [r["result"]["architecture"] for r in data["runs"]] == [arch, arch]
    assert [c["point"] for c in data["choices"]] == list(arch)


def test_the_pareto_front_keeps_equal_points_as_optuna_does():
    points = [(100, 0.5), (90, 0.6), (90, 0.6), (150, 0.7), (150, 0.6), (300, 0.7), (80, 0.4)]
    assert pareto_indices(points) == [6, 1, 2, 3]
    assert pareto_indices([]) == []
