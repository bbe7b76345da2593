import pytest
import torch

from lightnas.search import Architecture, DecisionPoint, SearchSpace
from lightnas.search.strategies import EnasStrategy, FixedStrategy, RandomStrategy, Score


def score(reward: float) -> Score:
    return Score(reward, reward, 1.0)


def space(n=6):
    return SearchSpace("s", [DecisionPoint(f"p{i}", ("a", "b", "c")) for i in range(n)])


def test_random_strategy_is_uniform_and_seeded():
    s = space()
    a, b = RandomStrategy(s, seed=3), RandomStrategy(s, seed=3)
    assert [a.sample(0) for _ in range(5)] == [b.sample(0) for _ in range(5)]
    counts = torch.zeros(3)
    for _ in range(600):
        counts[a.sample(0).indices()[0]] += 1
    assert counts.min() > 150
    assert a.favourite() is None and not a.wants_rewards(5)


def test_fixed_strategy_always_returns_its_architecture():
    s = space()
    arch = s.from_indices([2, 1, 0, 2, 1, 0])
    f = FixedStrategy(s, arch)
    assert all(f.sample(e) == arch for e in range(3)) and f.favourite() == arch


def test_enas_warms_up_uniformly_then_learns_the_reward():
    s = space()
    target = Architecture(s, {p.name: "c" for p in s})
    enas = EnasStrategy(
        s, seed=0, warmup_epochs=1, lr=0.05, entropy_weight=0.03, baseline_decay=0.8
    )
    before = enas.controller.probabilities()
    enas.sample(0)  # warm-up: uniform, the controller is untouched
    assert enas.controller.probabilities() == before

    def reward(arch):
        return sum(arch[n] == target[n] for n in s.names) / len(s)

    assert not enas.wants_rewards(0) and enas.wants_rewards(1)
    for _ in range(80):
        asked = enas.ask(4)
        stats = enas.tell(asked, [score(reward(a)) for a in asked])
    assert set(stats) >= {"reward", "baseline", "entropy", "loss"}
    assert enas.favourite() == target


def test_enas_state_round_trip_continues_identically():
    s = space()
    a = EnasStrategy(s, seed=1)
    a.tell(a.ask(2), [score(0.5), score(0.5)])
    b = EnasStrategy(s, seed=7)
    b.load_state_dict(a.state_dict())
    assert [a.sample(1) for _ in range(4)] == [b.sample(1) for _ in range(4)]


def test_batched_sampling_follows_the_controller_distribution():
    from lightnas.search import Controller

    s = space(3)
    torch.manual_seed(0)
    c = Controller(s, hidden_size=16, temperature=None, tanh_constant=None)
    with torch.no_grad():
        c.heads[0].bias.copy_(torch.tensor([2.0, 0.0, -2.0]))
    gen = torch.Generator().manual_seed(0)
    archs = c.sample_many(4000, gen)
    freq = torch.bincount(torch.tensor([a.indices()[0] for a in archs]), minlength=3) / 4000
    expected = torch.tensor(c.probabilities()["p0"])
    assert torch.allclose(freq, expected, atol=0.03)


def test_enas_shared_phase_buffer_is_dropped_after_an_update():
    s = space()
    enas = EnasStrategy(s, seed=0)
    enas.sample(0)
    assert len(enas._buffer) == EnasStrategy.BUFFER - 1
    enas.tell(enas.ask(1), [score(1.0)])
    assert enas._buffer == []


def test_tell_refuses_candidates_it_did_not_ask_for():
    s = space()
    enas = EnasStrategy(s, seed=0)
    enas.ask(2)
    with pytest.raises(ValueError, match="candidates of the last ask"):
        enas.tell([s.default(), s.default()], [score(0.1), score(0.2)])


def test_batched_sampling_follows_the_controller_past_the_first_decision():
    from lightnas.search import Controller

    s = space(3)
    torch.manual_seed(0)
    c = Controller(s, hidden_size=16, temperature=None, tanh_constant=None)
    with torch.no_grad():
        for head in c.heads:
            head.bias.copy_(torch.tensor([1.5, 0.0, -1.5]))
        c.embeddings[0].weight.mul_(20)  # make the second decision depend on the first
    archs = c.sample_many(6000, torch.Generator().manual_seed(0))
    pairs = torch.tensor([a.indices()[:2] for a in archs])
    for first in range(3):
        forced = [first]
        indices, logits = c._decode(lambda lg, f=forced: f.pop() if f else int(lg.argmax()))
        expected = torch.softmax(logits[1], dim=-1)
        rows = pairs[pairs[:, 0] == first, 1]
        freq = torch.bincount(rows, minlength=3) / len(rows)
        assert torch.allclose(freq, expected, atol=0.05), (first, freq, expected)
