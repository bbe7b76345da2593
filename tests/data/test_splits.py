"""lightnas.data.splits: the seeded validation split and seed mixing."""

import pytest
import torch

from lightnas.data import split_indices
from lightnas.data.splits import _mix_seed
from lightnas.errors import ConfigError


@pytest.mark.parametrize("val_size, expected", [(0.25, 25), (10, 10), (0.001, 1)])
def test_val_split_sizes_disjoint_and_complete(val_size, expected):
    train, val = split_indices(100, val_size, seed=3)
    assert len(val) == expected and len(train) == 100 - expected
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(100))


def test_val_split_is_deterministic_per_seed():
    assert torch.equal(split_indices(50, 0.2, seed=1)[1], split_indices(50, 0.2, seed=1)[1])
    assert not torch.equal(split_indices(50, 0.2, seed=1)[1], split_indices(50, 0.2, seed=2)[1])


def test_num_samples_caps_the_training_pool():
    train, val = split_indices(1000, 0.5, seed=0, num_samples=40)
    assert len(train) == 20 and len(val) == 20


@pytest.mark.parametrize("val_size", [0.0, 1.0, 1.5, -0.1, 0, 100, 500, True, "0.1"])
def test_bad_val_size_is_a_config_error_naming_the_key(val_size):
    with pytest.raises(ConfigError, match=r"^data\.val_size=") as err:
        split_indices(100, val_size, seed=0)
    assert "\n" not in str(err.value)


def test_mixed_seeds_differ_per_part_and_order():
    seeds = {_mix_seed(s, e, k) for s in range(4) for e in range(4) for k in range(2)}
    assert len(seeds) == 32
    assert _mix_seed(1, 2) != _mix_seed(2, 1)
    assert all(0 <= s < 1 << 63 for s in seeds)
