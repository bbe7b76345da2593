"""lightnas.engine.sampler: the architectures each training step trains (controller, uniform,
sandwich with its largest and smallest children)."""

import pytest
import torch
import torch.nn.functional as F
from helpers.runs import make_engine, tiny_cfg

from lightnas.engine.loss import distillation_loss
from lightnas.engine.sampler import TrainingSampler
from lightnas.scoring.costs import extreme_architectures
from lightnas.search.strategies import TrainingRule


@pytest.mark.parametrize("sampling", ["uniform", "sandwich"])
def test_sampling_options(sampling):
    cfg = tiny_cfg()
    cfg.search.sampling, cfg.search.sandwich_k = sampling, 1
    engine = make_engine(cfg)
    archs = engine.training_architectures(0)
    largest, smallest = extreme_architectures(engine.supernet.space, engine.evaluator.costs)
    if sampling == "sandwich":
        assert archs[:2] == [largest, smallest] and len(archs) == 3
        assert largest == engine.supernet.space.default()
        assert all(c in ("conv1x1", "identity") for c in smallest.values())
    else:
        assert len(archs) == 1
    engine.run()
    assert engine.history[0].train_loss > 0


def test_a_sandwich_draws_from_its_own_generator_and_resumes_exactly():
    engine = make_engine(tiny_cfg())
    strategy, costs = engine.strategy, engine.evaluator.costs
    sampler = TrainingSampler(TrainingRule("sandwich", False), strategy, costs, k=2, seed=3)
    state = sampler.state_dict()
    first = [sampler.architectures(0) for _ in range(3)]
    assert all(a[:2] == [sampler.largest, sampler.smallest] and len(a) == 4 for a in first)
    again = TrainingSampler(TrainingRule("sandwich", False), strategy, costs, k=2, seed=0)
    again.load_state_dict(state)
    assert [again.architectures(0) for _ in range(3)] == first


def test_an_unknown_sampling_is_refused():
    engine = make_engine(tiny_cfg())
    with pytest.raises(ValueError, match="unknown sampling 'all'; valid: controller, uniform"):
        TrainingSampler(TrainingRule("all", False), engine.strategy, engine.evaluator.costs)


def test_a_sandwich_every_second_step_trains_the_uniform_child_alone_between():
    engine = make_engine(tiny_cfg())
    strategy, costs = engine.strategy, engine.evaluator.costs
    rule = TrainingRule("sandwich", True)
    sampler = TrainingSampler(rule, strategy, costs, k=1, seed=3, every=2)
    whole = TrainingSampler(rule, strategy, costs, k=1, seed=3)
    steps = [sampler.architectures(0, step) for step in range(4)]
    assert [len(a) for a in steps] == [3, 1, 3, 1]
    assert steps[0][:2] == steps[2][:2] == [sampler.largest, sampler.smallest]
    # the same uniform draws as a whole sandwich every step: only the extremes are left out
    assert [a[-1] for a in steps] == [whole.architectures(0, s)[-1] for s in range(4)]
    assert sampler.children_per_step() == 2.0 and whole.children_per_step() == 3.0
    assert len(sampler.architectures(0, 4)) == 3
    state = sampler.state_dict()
    again = TrainingSampler(rule, strategy, costs, k=1, seed=0, every=2)
    again.load_state_dict(state)  # resumed at step 5, mid-period: the step count says which
    resumed = [again.architectures(0, step) for step in (5, 6, 7)]
    assert resumed == [sampler.architectures(0, step) for step in (5, 6, 7)]
    assert [len(a) for a in resumed] == [1, 3, 1]


def test_a_step_between_sandwiches_is_distilled_from_the_largest():
    cfg = tiny_cfg()
    cfg.search.sampling, cfg.search.inplace_distill = "sandwich", True
    cfg.search.sandwich_every = 2
    engine = make_engine(cfg)
    x, y = next(iter(engine.data.train))
    sandwich = engine.training_architectures(0)
    assert len(sandwich) == 3
    engine.train_step(sandwich, x, y)  # the engine's step 0; step 1 trains one child alone
    alone = engine.training_architectures(0)
    assert len(alone) == 1 and alone[0] != engine.sampler.largest
    net = engine.supernet.train()
    with torch.no_grad():  # in train mode: BatchNorm on the batch's statistics, as in the step
        net.set_architecture(engine.sampler.largest)
        teacher = net(x).float()
        net.set_architecture(alone[0])
        expected = distillation_loss(net(x).float(), teacher, y, alpha=1.0, temperature=1.0)
        plain = F.cross_entropy(net(x).float(), y)
    loss, _ = engine.train_step(alone, x, y)
    assert torch.allclose(loss, expected, atol=1e-6) and not torch.allclose(loss, plain)
    engine.run()
    assert engine.history[0].train_loss > 0
