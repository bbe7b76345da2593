"""The search's protocol (issue: search quality): fair reward draws, one BatchNorm protocol,
supernet-training options, the final selection and the hard budget."""

import json
from dataclasses import replace

import pytest
import torch
from helpers.runs import make_engine, tiny_cfg

from lightnas.cli import search_main
from lightnas.search import Architecture


def test_every_candidate_of_a_step_sees_the_same_reward_batches(monkeypatch):
    engine = make_engine(tiny_cfg())
    hits = engine.evaluator._hits
    seen_batches: list = []

    def spy(arch, batches, epoch, **kw):
        seen_batches.append(batches[0][0])  # the first batch's images
        return hits(arch, batches, epoch, **kw)

    monkeypatch.setattr(engine.evaluator, "_hits", spy)
    gen = torch.Generator().manual_seed(0)
    archs = [engine.supernet.space.sample(gen) for _ in range(3)]
    engine.evaluator.scores(archs, 0)
    assert len(seen_batches) == 3
    assert all(torch.equal(seen_batches[0], b) for b in seen_batches)
    used = engine.evaluator.reward_batches_used
    engine.evaluator.scores(archs, 0)
    assert engine.evaluator.reward_batches_used == 2 * used  # the next draw is new data


@pytest.mark.parametrize("reward_bn", ["recalibrate", "batch"])
def test_a_step_scores_its_candidates_with_one_reduction_and_each_as_if_alone(
    monkeypatch, reward_bn
):
    engine = make_engine(tiny_cfg())
    evaluator = engine.evaluator
    evaluator.options = replace(evaluator.options, reward_bn=reward_bn)
    gen = torch.Generator().manual_seed(1)
    archs = [engine.supernet.space.sample(gen) for _ in range(4)]
    batches = evaluator.draw()
    state = {k: v.clone() for k, v in engine.supernet.state_dict().items()}
    alone = []
    for arch in archs:
        engine.supernet.load_state_dict(state)  # batch BN moves the running statistics
        alone += evaluator.accuracies([arch], batches, 0)
    engine.supernet.load_state_dict(state)
    reductions = []
    sum_floats = evaluator.dist.sum_floats
    monkeypatch.setattr(
        evaluator.dist, "sum_floats", lambda v: reductions.append(v) or sum_floats(v)
    )
    together = evaluator.accuracies(archs, batches, 0)
    assert len(reductions) == 1  # one host sync and one all-reduce for the whole step
    assert together == alone
    assert all(0 <= a <= 1 for a in together)
    assert reward_bn == "batch" or len(set(together)) > 1  # batch BN: all alike, untrained


def test_rewards_never_put_validation_data_into_batchnorm_and_leave_no_trace():
    engine = make_engine(tiny_cfg())
    bn = next(m for m in engine.supernet.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    seen = []  # BN's statistics after each of its forwards during the reward
    bn.register_forward_hook(lambda m, i, o: seen.append(m.running_mean.clone()))
    arch = engine.supernet.space.default()
    engine.evaluator.scores([arch], 0)
    assert torch.equal(bn.running_mean, before)  # what a checkpoint holds is untouched
    engine.evaluator.recalibrate_bn(engine.supernet, 0)  # training batches only
    assert torch.equal(seen[-1], bn.running_mean)  # the validation forwards left it as it was


def test_the_reward_uses_the_validation_protocol_of_bn():
    engine = make_engine(tiny_cfg())
    arch = engine.supernet.space.default()
    engine.cfg.search.reward_batches = None  # the whole validation split
    engine.evaluator.options = replace(
        engine.evaluator.options, reward_batches=None, bn_recalibration_batches=1
    )
    score = engine.evaluator.scores([arch], 0)[0]
    _, acc = engine.evaluator.evaluate(arch, engine.data.val, 0)
    assert score.accuracy == pytest.approx(acc)


def test_inplace_distillation_teaches_the_other_children_the_largest_ones_output():
    cfg = tiny_cfg()
    cfg.search.sampling, cfg.search.sandwich_k, cfg.search.inplace_distill = "sandwich", 0, True
    engine = make_engine(cfg)
    x, y = next(iter(engine.data.train.batches(0)))
    largest, smallest = engine.sampler.largest, engine.sampler.smallest
    engine.supernet.train()
    engine.supernet.set_architecture(largest)
    with torch.no_grad():
        teacher = engine.supernet(x)
    losses = []
    original = engine.child_loss

    def record(logits, y, x, soft):
        losses.append(soft)
        return original(logits, y, x, soft)

    engine.child_loss = record
    engine.train_step([largest, smallest], x, y)
    assert losses[0] is None  # the largest learns from the labels
    assert torch.allclose(losses[1], teacher, atol=1e-5)  # the smallest from the largest


def test_hard_budget_penalises_costlier_architectures():
    cfg = tiny_cfg()
    engine = make_engine(cfg)
    space, ev = engine.supernet.space, engine.evaluator
    cheap = Architecture(space, {n: engine.sampler.smallest[n] for n in space.names})
    base = space.default()
    budget = (ev.cost(cheap) + ev.cost(base)) / 2
    ev.options = replace(ev.options, cost_weight=0.0, cost_budget=budget)
    assert ev.reward(cheap, 0.8) == pytest.approx(0.8)
    assert ev.reward(base, 0.8) == pytest.approx(0.8 * budget / ev.cost(base))


@pytest.mark.e2e
def test_evolution_searches_and_resumes_exactly(write_config, tmp_path):
    from lightnas.outputs import tracking

    common = {"epochs": 3, "search": {"strategy": "evolution", "controller_steps": 3}}
    assert search_main(["-c", str(write_config(name="straight", **common))]) == 0
    save = tracking.Checkpointer.on_epoch_end

    def stop_after_first(self, engine, result):
        save(self, engine, result)
        if engine.epoch == 1:
            raise KeyboardInterrupt

    tracking.Checkpointer.on_epoch_end = stop_after_first
    try:
        assert search_main(["-c", str(write_config(name="cut", **common))]) == 130
    finally:
        tracking.Checkpointer.on_epoch_end = save
    cut = tmp_path / "trainings" / "cut"
    assert search_main(["--resume", str(cut)]) == 0

    def rows(name):
        lines = (tmp_path / "trainings" / name / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in lines]

    assert rows("cut") == rows("straight")
    assert rows("cut")[-1]["val_acc_evolved"] >= 0


def _counting_hits(monkeypatch, evaluator) -> list:
    scored = []
    hits = evaluator._hits

    def spy(arch, batches, epoch, **kw):
        scored.append(dict(arch))
        return hits(arch, batches, epoch, **kw)

    monkeypatch.setattr(evaluator, "_hits", spy)
    return scored


def test_a_score_is_computed_once_per_set_of_weights(monkeypatch):
    engine = make_engine(tiny_cfg())
    evaluator = engine.evaluator
    evaluator.options = replace(evaluator.options, reward_batches=None)  # the whole split
    scored = _counting_hits(monkeypatch, evaluator)
    gen = torch.Generator().manual_seed(2)
    a, b = (engine.supernet.space.sample(gen) for _ in range(2))
    first = evaluator.scores([a, b, a], 0)
    assert len(scored) == 2 and first[0] == first[2]  # twice in one step: scored once
    assert evaluator.scores([b, a], 0) == [first[1], first[0]] and len(scored) == 2
    assert len(evaluator.scores([b], 1)) == 1 and len(scored) == 3  # another epoch's BN batches
    x, y = next(iter(engine.data.train.batches(0)))
    engine.train_step([a], x, y)  # new weights: everything is scored again
    evaluator.scores([a, b], 0)
    assert len(scored) == 5
    state = {k: v.clone() for k, v in engine.supernet.state_dict().items()}
    evaluator.scores([a], 0)
    engine.supernet.load_state_dict(state)  # a loaded checkpoint is new weights too
    evaluator.scores([a], 0)
    assert len(scored) == 6
    evaluator.known_scores().clear()  # and what was known is what scoring again gives
    evaluator.options = replace(evaluator.options, reward_batches=1)
    evaluator.scores([a, a], 0)
    evaluator.scores([a], 0)  # a draw of batches is new data each time
    assert len(scored) == 8


def test_validation_scores_are_computed_once_per_set_of_weights(monkeypatch):
    engine = make_engine(tiny_cfg())
    evaluator, arch = engine.evaluator, engine.sampler.smallest
    runs = []
    compute = evaluator._evaluate
    monkeypatch.setattr(evaluator, "_evaluate", lambda *a: runs.append(a) or compute(*a))
    val = evaluator.evaluate(arch, engine.data.val, 0)
    assert evaluator.evaluate(arch, engine.data.val, 0) == val and len(runs) == 1
    evaluator.evaluate(arch, engine.data.test, 0)  # other data
    evaluator.evaluate(engine.sampler.largest, engine.data.val, 0)
    assert len(runs) == 3
    evaluator.known_scores().clear()
    assert evaluator.evaluate(arch, engine.data.val, 0) == val and len(runs) == 4


def test_known_scores_change_nothing_a_search_reports(tmp_path, monkeypatch):
    """The same seeded search, scoring every candidate again, whole, every time, reports the
    same: scores known for the weights and stage outputs kept by prefix are the same numbers."""
    from helpers.runs import tiny_config

    def run(name, cache_mb):
        # controller phases every 2 batches: scores between optimizer steps of one epoch
        search = {"reward_batches": None, "controller_steps": 6, "update_arch_frequency": 2}
        search["reward_cache_mb"] = cache_mb
        cfg = tiny_config(tmp_path, name=name, search=search, epochs=3)
        (tmp_path / f"{name}.yml").write_text(json.dumps(cfg))
        search_main(["-c", str(tmp_path / f"{name}.yml")])
        folder = tmp_path / "trainings" / name
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        rows = [{k: v for k, v in r.items() if not k.startswith("time")} for r in rows]
        return rows, json.loads((folder / "best_architecture.json").read_text())

    known = run("known", 512)
    from lightnas.scoring.evaluator import Evaluator

    monkeypatch.setattr(Evaluator, "known_scores", lambda self, with_buffers=False: {})
    again = run("again", 0)
    assert known == again


def test_validation_on_a_list_of_batches_is_scored_as_on_its_loader():
    engine = make_engine(tiny_cfg())
    arch = engine.sampler.smallest
    batches = list(engine.data.val)
    by_loader = engine.evaluator.evaluate(arch, engine.data.val, 0)
    assert engine.evaluator.evaluate(arch, batches, 0) == pytest.approx(by_loader)
