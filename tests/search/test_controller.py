import math
import time

import pytest
import torch

from lightnas.search.controller import Controller, ControllerSample, Reinforce
from lightnas.search.space import Architecture, DecisionPoint, SearchSpace


def make_space(num_points: int = 5, name: str = "toy") -> SearchSpace:
    """Mixed choice counts (2, 3, 4, 2, 3, ...) and dotted names, like real supernets."""
    return SearchSpace(
        name,
        [
            DecisionPoint(f"stage{i // 4}.block{i % 4}", tuple(f"op{j}" for j in range(2 + i % 3)))
            for i in range(num_points)
        ],
    )


@pytest.fixture(autouse=True)
def single_thread():
    """Controller tensors are tiny: extra OpenMP threads only add wake-up latency on a busy host."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def space() -> SearchSpace:
    return make_space()


@pytest.fixture
def controller(space: SearchSpace) -> Controller:
    torch.manual_seed(0)
    return Controller(space, hidden_size=16)


def test_sample_is_valid_architecture_with_differentiable_scalars(space, controller):
    sample = controller.sample(torch.Generator().manual_seed(0))
    assert isinstance(sample, ControllerSample)
    assert isinstance(sample.architecture, Architecture)
    assert sample.architecture.space == space
    for value in (sample.log_prob, sample.entropy):
        assert value.shape == () and value.requires_grad and torch.isfinite(value)
    assert sample.log_prob.item() < 0 < sample.entropy.item()

    (sample.log_prob + sample.entropy).backward()
    for name in ("g_emb", "lstm.0.weight_ih", "heads.0.weight", "embeddings.0.weight"):
        grad = controller.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_uniform_policy_gives_exact_log_prob_and_entropy(space, controller):
    for head in controller.heads:
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    sample = controller.sample()
    assert sample.log_prob.item() == pytest.approx(-math.log(space.size))
    assert sample.entropy.item() == pytest.approx(math.log(space.size))


def test_same_seed_same_architectures(controller):
    def draw(seed: int) -> list[Architecture]:
        gen = torch.Generator().manual_seed(seed)
        return [controller.sample(gen).architecture for _ in range(10)]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def test_greedy_is_deterministic_argmax_of_probabilities(space, controller):
    greedy = controller.greedy()
    assert greedy == controller.greedy()
    probs = controller.probabilities()
    assert list(probs) == space.names
    for point in space:
        p = probs[point.name]
        assert len(p) == len(point.choices)
        assert sum(p) == pytest.approx(1.0)
        assert point.choices[max(range(len(p)), key=p.__getitem__)] == greedy[point.name]


@pytest.mark.parametrize(
    ("temperature", "tanh_constant", "expected"),
    [
        (None, 1.5, math.exp(1.5) / (1 + math.exp(1.5))),  # tanh caps the logit at 1.5
        (None, None, 1 / (1 + math.exp(-100.0))),
        (200.0, None, 1 / (1 + math.exp(-0.5))),
    ],
)
def test_temperature_and_tanh_shape_the_logits(temperature, tanh_constant, expected):
    space = SearchSpace("two", [DecisionPoint("a", ("x", "y"))])
    controller = Controller(
        space, hidden_size=8, temperature=temperature, tanh_constant=tanh_constant
    )
    head = controller.heads[0]
    torch.nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([100.0, 0.0]))
    assert controller.probabilities()["a"][0] == pytest.approx(expected)


def test_reinforce_baseline_and_stats(controller):
    reinforce = Reinforce(controller, lr=0.01, baseline_decay=0.9)
    gen = torch.Generator().manual_seed(0)
    before = [p.detach().clone() for p in controller.parameters()]

    stats = reinforce.step([controller.sample(gen) for _ in range(2)], [0.2, 0.6])
    assert set(stats) == {"reward", "baseline", "entropy", "loss", "advantage"}
    assert stats["reward"] == pytest.approx(0.4)
    assert reinforce.baseline == stats["baseline"] == pytest.approx(0.4)  # first reward
    assert stats["advantage"] == pytest.approx(0.0)
    assert any(not torch.equal(a, b) for a, b in zip(before, controller.parameters(), strict=True))

    stats = reinforce.step([controller.sample(gen)], [1.4])
    assert reinforce.baseline == pytest.approx(0.9 * 0.4 + 0.1 * 1.4)  # updated before advantage
    assert stats["advantage"] == pytest.approx(1.4 - 0.5)

    with pytest.raises(ValueError, match="rewards"):
        reinforce.step([controller.sample(gen)], [1.0, 2.0])


def test_reinforce_clips_gradients(controller):
    reinforce = Reinforce(controller, grad_clip=1e-3)
    gen = torch.Generator().manual_seed(0)
    reinforce.step([controller.sample(gen)], [0.0])
    reinforce.step([controller.sample(gen)], [5.0])
    grads = [p.grad for p in controller.parameters() if p.grad is not None]
    assert torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) <= 1e-3 + 1e-6


def test_state_dict_round_trip(space, tmp_path):
    def train(controller: Controller, reinforce: Reinforce, seed: int, steps: int) -> dict:
        gen = torch.Generator().manual_seed(seed)
        stats = {}
        for step in range(steps):
            samples = [controller.sample(gen) for _ in range(3)]
            stats = reinforce.step(samples, [0.1 * step, 0.5, 0.3 * len(samples[0].architecture)])
        return stats

    torch.manual_seed(0)
    original = Controller(space, hidden_size=16)
    reinforce = Reinforce(original, lr=0.01, grad_clip=5.0)
    train(original, reinforce, seed=0, steps=3)

    path = tmp_path / "controller.pt"
    torch.save({"controller": original.state_dict(), "reinforce": reinforce.state_dict()}, path)
    state = torch.load(path, weights_only=True)
    restored = Controller(space, hidden_size=16)
    restored.load_state_dict(state["controller"])
    restored_reinforce = Reinforce(restored, lr=0.5, grad_clip=5.0)  # lr comes from the state
    restored_reinforce.load_state_dict(state["reinforce"])
    assert restored_reinforce.baseline == reinforce.baseline

    assert train(original, reinforce, 1, 2) == train(restored, restored_reinforce, 1, 2)
    for (name, a), b in zip(original.named_parameters(), restored.parameters(), strict=True):
        assert torch.equal(a, b), name


# The planted-reward test: a hidden target architecture, reward = fraction of matching decisions.
PLANTED_POINTS = 16  # 2^8 * 3^8 ≈ 1.7e6 architectures
PLANTED_STEPS = 60
PLANTED_BATCH = 4


def match(arch: Architecture, target: Architecture) -> float:
    return sum(arch[name] == target[name] for name in target) / len(target)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_controller_finds_planted_architecture(seed):
    space = SearchSpace(
        "planted",
        [
            DecisionPoint(f"block{i}", tuple(f"op{j}" for j in range(2 + i % 2)))
            for i in range(PLANTED_POINTS)
        ],
    )
    assert space.size >= 2**16
    target = space.sample(torch.Generator().manual_seed(1000 + seed))

    start = time.perf_counter()
    torch.manual_seed(seed)
    controller = Controller(space, hidden_size=32)
    # A high lr for a fast test; the entropy bonus and a short baseline memory keep it from
    # collapsing onto the first lucky choices.
    reinforce = Reinforce(controller, lr=0.02, entropy_weight=0.03, baseline_decay=0.8)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(PLANTED_STEPS):
        samples = [controller.sample(gen) for _ in range(PLANTED_BATCH)]
        reinforce.step(samples, [match(s.architecture, target) for s in samples])
    greedy_match = match(controller.greedy(), target)
    elapsed = time.perf_counter() - start

    num_samples = PLANTED_STEPS * PLANTED_BATCH
    random_gen = torch.Generator().manual_seed(2000 + seed)
    best_random = max(match(space.sample(random_gen), target) for _ in range(num_samples))
    print(
        f"\nplanted seed={seed}: {PLANTED_STEPS} steps, {num_samples} samples, "
        f"greedy match {greedy_match:.0%}, best random match {best_random:.0%}, {elapsed:.1f}s"
    )
    assert greedy_match >= 0.9
    assert best_random < 0.9
