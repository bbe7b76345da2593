"""The contract every registered search strategy must meet (lightnas.search.strategies.base).

A new strategy registered in STRATEGIES is picked up here automatically."""

import inspect
import io

import pytest
import torch

from lightnas.config import Config, strategy_options
from lightnas.errors import ConfigError
from lightnas.search import Architecture, DecisionPoint, SearchSpace
from lightnas.search.strategies import (
    SAMPLINGS,
    STRATEGIES,
    FixedStrategy,
    Score,
    Strategy,
    TrainingRule,
)

SPACE = SearchSpace(
    "conformance", [DecisionPoint(f"p{i}", ("a", "b", "c")[: 2 + i % 2]) for i in range(5)]
)
EPOCHS = (0, 1, 3)  # warm-up (1 epoch in the config below) and after


def make(name: str, seed: int = 0) -> Strategy:
    cfg = Config(seed=seed)
    cfg.search.strategy = name
    cfg.search.warmup_epochs = 1
    if issubclass(STRATEGIES[name], FixedStrategy):  # built from its architecture, not a config
        return FixedStrategy.from_options(SPACE, SPACE.from_indices([1, 0, 1, 0, 1]), seed)
    options = strategy_options(cfg)  # its own options, never the whole config
    STRATEGIES[name].check_options(options)
    return STRATEGIES[name].from_options(SPACE, options, seed)


def exercise(s: Strategy) -> list:
    """A fixed sequence of every call of the contract; returns what the strategy proposed."""
    seen: list = []
    for epoch in EPOCHS:
        seen += [s.sample(epoch) for _ in range(3)]
        if s.wants_rewards(epoch):
            asked = s.ask(2)
            seen += asked
            s.tell(asked, [Score(sum(a.indices()) / 5, sum(a.indices()) / 5, 1.0) for a in asked])
        seen += s.candidates(epoch, 2)
        seen.append(s.favourite())
    return seen


@pytest.fixture(params=STRATEGIES.names())
def name(request):
    return request.param


def test_proposals_are_architectures_of_the_space(name):
    s = make(name)
    for arch in exercise(s):
        assert arch is None or (isinstance(arch, Architecture) and arch.space == SPACE)
    has_favourite = s.favourite() is not None
    for epoch in EPOCHS:
        assert len(s.candidates(epoch, 3)) in (0, 3)  # all it is asked for, or none to offer
        assert (s.favourite() is not None) == has_favourite  # it has one always or never
        # validation needs something to score
        assert has_favourite or len(s.candidates(epoch, 3)) == 3


def test_the_contract_is_three_abstract_methods_and_hooks():
    assert Strategy.__abstractmethods__ == {"sample", "ask", "tell"}
    for name in STRATEGIES.names():
        # built from its own options and a seed (never the whole config)
        params = list(inspect.signature(STRATEGIES[name].from_options).parameters)
        assert params == ["space", "options", "seed"]


def test_same_seed_same_proposals_other_seed_other_proposals(name):
    a, b = exercise(make(name)), exercise(make(name))
    assert a == b
    if name != "fixed":
        assert exercise(make(name, seed=1)) != a


def test_draws_only_from_its_own_generator(name):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    exercise(make(name))
    assert torch.equal(torch.get_rng_state(), before)


def test_tell_returns_plain_statistics(name):
    s = make(name)
    for epoch in EPOCHS:
        if s.wants_rewards(epoch):
            asked = s.ask(3)
            assert len(asked) == 3
            stats = s.tell(asked, [Score(r, r, 1.0) for r in (0.1, 0.5, 0.9)])
            assert all(isinstance(v, float) for v in stats.values())


def test_state_round_trip_continues_identically(name):
    first = make(name)
    exercise(first)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # checkpoints load without allow-listing
    second = make(name, seed=99)
    second.load_state_dict(state)
    assert exercise(first) == exercise(second)


def test_training_rule_is_the_strategys_own(name):
    cls = STRATEGIES[name]
    if cls.shares_weights:  # null = its default; what the config sets, otherwise
        assert cls.training_rule(None, None) == cls.default_rule
        assert cls.default_rule.sampling in SAMPLINGS
        assert cls.training_rule("uniform", False) == TrainingRule("uniform", False)
        cls.check_rule(name, "uniform", True)  # any rule is accepted
        return
    cls.check_rule(name, None, None)
    cls.check_rule(name, "controller", False)
    with pytest.raises(ConfigError, match=f"search.sampling='uniform': strategy {name}"):
        cls.check_rule(name, "uniform", None)
    with pytest.raises(ConfigError, match=f"search.inplace_distill=true: strategy {name}"):
        cls.check_rule(name, None, True)
    # trains its own sample alone, every step, whatever an inherited config says
    for sampling in (None, *SAMPLINGS):
        for distill in (None, False, True):
            assert cls.training_rule(sampling, distill) == TrainingRule("controller", False)
    s = make(name)
    assert len({s.sample(epoch) for epoch in EPOCHS for _ in range(3)}) == 1
