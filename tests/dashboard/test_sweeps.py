"""A sweep's page: trials from the Optuna storage, the Pareto front across trials, importances."""

from helpers.dashboard import sweep

from lightnas.dashboard.listing import list_runs
from lightnas.dashboard.sweeps import accuracy_front, trial_numbers


def test_the_sweep_page_data_reads_the_study_trials_front_and_importances(client, root):
    sweep(root / "sweeps" / "s", root / "tiny", [0.5, 0.7, 0.6, 0.9], [100, 150, 90, 300])
    assert "Sweep sweeps/s" in client.get("/sweep/sweeps/s").text
    assert client.get("/run/sweeps/s", follow_redirects=False).status_code == 303
    data = client.get("/api/sweep/sweeps/s").json()
    assert (data["summary"]["kind"], data["summary"]["epochs"]) == ("sweep", 5)
    assert data["error"] is None
    (study,) = data["studies"]
    assert study["name"] == "study_s"
    assert study["objectives"] == ["val_acc", "ops"]
    assert study["directions"] == ["maximize", "minimize"]
    assert [t["number"] for t in study["trials"]] == [0, 1, 2, 3]
    assert study["trials"][1]["values"] == {"val_acc": 0.7, "ops": 150}
    assert study["trials"][1]["params"]["search.cost_weight"] == -0.1
    assert study["trials"][2]["run"] == "sweeps/s/trials/trial_0002"
    assert set(study["importances"]) == {"val_acc", "ops"}
    assert set(study["importances"]["val_acc"]) == {"search.cost_weight", "optim.lr"}
    assert study["objective_front"]["front"] == [1, 2, 3]  # trial 2 beats trial 0 in both
    front = data["accuracy_front"]["front"]
    paths = [f"sweeps/s/trials/trial_000{i}" for i in (2, 1, 3)]
    assert front == {"ops": [90, 150, 300], "val_acc": [0.6, 0.7, 0.9], "paths": paths}
    assert [f["name"] for f in data["report"]] == ["trials.csv"]
    runs = {r["path"]: r for r in client.get("/api/runs").json()}
    assert (
        runs["sweeps/s"]["kind"] == "sweep"
        and runs["sweeps/s/trials/trial_0003"]["kind"] == "trial"
    )


def test_trial_folders_are_matched_by_the_number_their_name_ends_with(client, root):
    sweep(root / "s", root / "tiny", [0.5, 0.6], [100, 90])
    trials = [r for r in client.get("/api/runs").json() if r["kind"] == "trial"]
    assert len(trials) == 2
    summaries = [r for r in list_runs(root) if r.kind == "trial"]
    assert sorted(trial_numbers(summaries)) == [0, 1]
    assert accuracy_front(summaries)["front"]["ops"] == [90]
