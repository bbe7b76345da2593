"""The runs page's data: discovery, status (from status.json, else inferred), ETA, filter, sort."""

import json
import os
import time

import yaml
from helpers.dashboard import dead_pid, old, row, status, training

from lightnas.dashboard.listing import discover, filter_runs, list_runs, sort_runs, sweep_state


def by_path(runs):
    return {r.path: r for r in runs}


def test_discovery_finds_trainings_nested_folders_and_sweep_trials_but_not_hidden_or_links(
    tmp_path,
):
    training(tmp_path / "a", [row(1, 0.5, 100)], 2)
    training(tmp_path / "group" / "b", [], 2)
    sweep = tmp_path / "sweeps" / "s"
    sweep.mkdir(parents=True)
    (sweep / "sweep.yml").write_text("n_trials: 3\n")
    training(sweep / "trials" / "0", [row(1, 0.6, 90)], 1)
    training(sweep / "trials" / "1", [row(1, 0.7, 120)], 1)
    training(sweep / "trials" / "1_retrain", [row(1, 0.9, 120)], 1)  # not a trial: a retrain
    training(tmp_path / ".dashboard" / "c", [], 1)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    found = {(f.path.relative_to(tmp_path).as_posix(), f.kind) for f in discover(tmp_path)}
    assert found == {
        ("a", "training"),
        ("group/b", "training"),
        ("sweeps/s", "sweep"),
        ("sweeps/s/trials/0", "trial"),
        ("sweeps/s/trials/1", "trial"),
        ("sweeps/s/trials/1_retrain", "training"),
    }


def test_states_come_from_status_json_and_a_killed_run_is_not_running(tmp_path):
    rows = [row(1, 0.5, 100), row(2, 0.6, 90)]
    training(tmp_path / "live", rows, 5, status("running", 2, 5))
    training(tmp_path / "killed", rows, 5, status("running", 2, 5, pid=dead_pid()))
    training(tmp_path / "silent", rows, 5, status("running", 2, 5, age_s=600))
    training(tmp_path / "done", rows, 2, status("finished", 2, 2))
    training(tmp_path / "stopped", rows, 5, status("interrupted", 2, 5))
    training(tmp_path / "broken", rows, 5, status("failed", 2, 5, error="NaN loss"))
    runs = by_path(list_runs(tmp_path))
    states = {path: r.state for path, r in runs.items()}
    assert states == {
        "live": "running",
        "killed": "interrupted",
        "silent": "interrupted",
        "done": "finished",
        "stopped": "interrupted",
        "broken": "failed",
    }
    assert runs["broken"].error == "NaN loss"


def test_without_status_json_the_state_is_inferred_from_metrics_and_file_times(tmp_path):
    rows = [row(1, 0.5, 100), row(2, 0.6, 90)]
    training(tmp_path / "complete", rows, 2)
    fresh = training(tmp_path / "fresh", rows, 5)
    stale = training(tmp_path / "stale", rows, 5)
    old(stale / "metrics.jsonl")
    runs = by_path(list_runs(tmp_path))
    assert runs["complete"].state == "finished"
    assert runs["fresh"].state == "running" and (fresh / "metrics.jsonl").exists()
    assert runs["stale"].state == "interrupted"


def test_a_summary_has_progress_eta_and_the_result_so_far_of_a_running_search(tmp_path):
    rows = [
        row(1, 0.5, 100, reward=0.5),
        row(2, 0.8, 300, reward=0.9),
        row(3, 0.7, 200, reward=0.6),
    ]
    state = status("running", 3, 10, step=5, steps=10)
    training(tmp_path / "r", rows, 10, state, model="resnet18", dataset="cifar10")
    (r,) = list_runs(tmp_path)
    assert (r.state, r.epoch, r.epochs) == ("running", 3, 10)
    assert r.eta_s == (10 - 3 - 0.5) * 10.0  # 10 s per epoch, half of epoch 4 done
    # no best_architecture.json: the latest epoch, the engine's pick until the final selection
    # (not the highest accuracy, 0.8, nor the highest reward, epoch 2)
    assert (r.result_epoch, r.selected_by, r.val_acc, r.test_acc) == (3, "latest epoch", 0.7, None)
    assert (r.ops, r.model_bits, r.params) == (200, 1600, 20)
    assert (r.model, r.dataset, r.started) == ("resnet18", "cifar10", "2026-01-02T03:04:05+00:00")


def test_a_summary_shows_the_result_best_architecture_json_holds(tmp_path):
    rows = [row(1, 0.5, 100), row(2, 0.9, 300), row(3, 0.8, 200)]
    folder = training(tmp_path / "r", rows, 3, status("finished", 3, 3))
    stats = {
        "epoch": 1,
        "architecture": rows[0]["architecture"],
        "val_acc": 0.55,
        "reward": 0.5,
        "selected_by": "final selection",
        "test_acc": 0.52,
        "label": "greedy",
        "costs": {"ops": 120.0, "model_bits": 960, "params": 12},
    }
    (folder / "best_architecture.json").write_text(json.dumps({"stats": stats}))
    (r,) = list_runs(tmp_path)
    assert (r.result_epoch, r.selected_by) == (1, "final selection")
    assert (r.val_acc, r.test_acc, r.ops, r.model_bits, r.params) == (0.55, 0.52, 120.0, 960, 12)


def test_an_older_best_architecture_json_gets_its_costs_from_its_epoch(tmp_path):
    rows = [row(1, 0.5, 100), row(2, 0.9, 300)]
    rows[0]["architecture"] = {"stage1.block1.dense": "conv3x3"}
    folder = training(tmp_path / "r", rows, 2, status("finished", 2, 2))
    stats = {"epoch": 1, "architecture": rows[0]["architecture"], "val_acc": 0.5, "reward": 0.5}
    (folder / "best_architecture.json").write_text(json.dumps({"stats": stats}))
    (r,) = list_runs(tmp_path)
    assert (r.result_epoch, r.val_acc, r.ops, r.model_bits) == (1, 0.5, 100, 800)


def test_a_line_being_written_is_left_out_and_a_changed_file_is_read_again(tmp_path):
    folder = training(tmp_path / "r", [row(1, 0.5, 100)], 3)
    with open(folder / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "val_')
    assert list_runs(tmp_path)[0].epoch == 1
    time.sleep(0.01)
    training(tmp_path / "r", [row(1, 0.5, 100), row(2, 0.9, 100)], 3)
    assert list_runs(tmp_path)[0].val_acc == 0.9


def test_a_sweep_summarises_its_trials(tmp_path):
    sweep = tmp_path / "s"
    sweep.mkdir()
    (sweep / "sweep.yml").write_text(yaml.safe_dump({"n_trials": 4}))
    training(sweep / "trials" / "0", [row(1, 0.6, 90)], 1, status("finished", 1, 1))
    training(sweep / "trials" / "1", [row(1, 0.7, 120)], 2, status("running", 1, 2))
    runs = by_path(list_runs(tmp_path))
    s = runs["s"]
    # the best of the finished trials: the running one has only a result so far
    assert (s.kind, s.state, s.epoch, s.epochs, s.val_acc) == ("sweep", "running", 1, 4, 0.6)
    assert runs["s/trials/1"].sweep == "s" and runs["s/trials/1"].kind == "trial"


def test_filter_by_text_state_and_kind_and_sort_with_missing_values_last(tmp_path):
    training(tmp_path / "melius_a", [row(1, 0.5, 100)], 1, status("finished", 1, 1))
    training(tmp_path / "melius_b", [row(1, 0.9, 300)], 5, status("interrupted", 1, 5))
    training(tmp_path / "res_c", [], 5, status("interrupted", 0, 5), model="resnet18")
    runs = list_runs(tmp_path)
    assert [r.path for r in filter_runs(runs, "MELIUS")] == ["melius_a", "melius_b"]
    assert [r.path for r in filter_runs(runs, "resnet")] == ["res_c"]
    assert [r.path for r in filter_runs(runs, state="interrupted")] == ["melius_b", "res_c"]
    assert filter_runs(runs, kind="sweep") == []
    assert [r.path for r in sort_runs(runs, "val_acc", desc=True)] == [
        "melius_b",
        "melius_a",
        "res_c",
    ]
    assert [r.path for r in sort_runs(runs, "ops", desc=False)] == ["melius_a", "melius_b", "res_c"]
    assert sort_runs(runs, "no such key") == sort_runs(runs, "started")
    assert os.path.basename(sort_runs(runs, "name")[0].path) == "res_c"


def test_a_sweep_whose_trials_finished_or_were_pruned_is_finished(tmp_path):
    sweep = tmp_path / "s"
    sweep.mkdir()
    (sweep / "sweep.yml").write_text("n_trials: 2\n")
    training(sweep / "trials" / "trial_0000", [row(1, 0.6, 90)], 1, status("finished", 1, 1))
    training(sweep / "trials" / "trial_0001", [row(1, 0.5, 90)], 3, status("pruned", 1, 3))
    runs = by_path(list_runs(tmp_path))
    assert runs["s"].state == "finished" and runs["s/trials/trial_0001"].state == "pruned"
    assert sweep_state([]) == "interrupted"
