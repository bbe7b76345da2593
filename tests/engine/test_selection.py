"""lightnas.engine.selection: the final choice re-scores the top-k proposals with the final
weights and reports the winner on the test split."""

import json
from dataclasses import replace

import torch
from helpers.runs import make_engine, tiny_cfg

from lightnas.cli import search_main
from lightnas.engine.selection import Proposal, select_final, top_proposals


def test_the_final_selection_rescores_the_top_k_with_the_final_weights(write_config, tmp_path):
    cfg = write_config(epochs=3, search={"final_top_k": 3, "num_val_samples": 2})
    assert search_main(["-c", str(cfg)]) == 0
    folder = tmp_path / "trainings" / "tiny"
    final = json.loads((folder / "final_selection.json").read_text())
    candidates = final["candidates"]
    assert 1 <= len(candidates) <= 3
    assert len({json.dumps(c["architecture"], sort_keys=True) for c in candidates}) == len(
        candidates
    )
    winner = candidates[final["winner"]]
    assert winner["reward"] == max(c["reward"] for c in candidates)
    assert all(c["test_acc"] is not None for c in candidates)
    best = json.loads((folder / "best_architecture.json").read_text())
    assert best["architecture"]["choices"] == winner["architecture"]
    assert best["stats"]["selected_by"] == "final selection"
    assert best["stats"]["test_acc"] == winner["test_acc"]
    exported = folder / "exported_models" / "trainables" / "final.json"
    assert json.loads(exported.read_text())["architecture"]["choices"] == winner["architecture"]
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    proposed = {json.dumps(r["architecture"], sort_keys=True) for r in rows}
    assert json.dumps(winner["architecture"], sort_keys=True) in proposed or len(rows) == 3


def test_the_final_selection_leaves_the_supernet_state_as_the_last_epoch_left_it():
    engine = make_engine(tiny_cfg(epochs=2, search=replace(tiny_cfg().search, final_top_k=0)))
    engine.run()  # no final selection: the state of the last epoch
    kept = {k: v.clone() for k, v in engine.supernet.state_dict().items()}
    final = select_final(engine.evaluator, engine.proposals, 3, engine.epoch - 1)
    assert len(final.candidates) >= 2  # BN was re-estimated for other architectures
    after = engine.supernet.state_dict()
    assert all(torch.equal(after[k], v) for k, v in kept.items())


def test_the_top_proposals_are_the_best_distinct_architectures_later_epochs_winning_ties():
    a, b, c = {"p": "a"}, {"p": "b"}, {"p": "c"}
    proposals = [
        Proposal(1, "greedy", a, 0.5),
        Proposal(2, "sampled", b, 0.7),
        Proposal(3, "greedy", a, 0.6),  # a again, better: it replaces epoch 1's
        Proposal(4, "sampled", c, 0.6),  # ties with epoch 3's a: the later epoch ranks first
    ]
    top = top_proposals(proposals, 3)
    assert [(p.epoch, p.architecture) for p in top] == [(2, b), (4, c), (3, a)]
    assert top_proposals(proposals, 1) == [proposals[1]]
