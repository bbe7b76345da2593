"""lightnas.engine.sampler: the architectures each training step trains (controller, uniform,
sandwich with its largest and smallest children)."""

import pytest
from helpers.runs import make_engine, tiny_cfg

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
