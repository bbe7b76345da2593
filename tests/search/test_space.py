import json

import pytest
import torch

from lightnas.search import Architecture, DecisionPoint, SearchSpace


@pytest.fixture
def space():
    return SearchSpace(
        "toy",
        [
            DecisionPoint("stage1.block1.dense", ("conv3x3", "conv1x1"), "dense"),
            DecisionPoint("stage1.block1.improvement", ("conv3x3", "identity"), "improvement"),
            DecisionPoint("stage2.block1.basic", ("1bit", "4bit", "32bit"), "basic"),
        ],
    )


def test_size_names_and_default(space):
    assert space.size == 12
    assert space.names[1] == "stage1.block1.improvement"
    assert space.default().indices() == [0, 0, 0]


def test_json_round_trip(space):
    arch = space.from_indices([1, 0, 2])
    data = json.loads(arch.to_json())
    assert data == {
        "space": "toy",
        "choices": {
            "stage1.block1.dense": "conv1x1",
            "stage1.block1.improvement": "conv3x3",
            "stage2.block1.basic": "32bit",
        },
    }
    assert Architecture.from_json(space, arch.to_json()) == arch


def test_unknown_point_is_named_with_valid_ones(space):
    with pytest.raises(ValueError, match="unknown decision point 'stage9.x'.*valid: stage1"):
        Architecture(space, {**space.default(), "stage9.x": "conv3x3"})


def test_unknown_choice_lists_valid_choices(space):
    bad = {**space.default(), "stage2.block1.basic": "3bit"}
    with pytest.raises(
        ValueError, match="'3bit' at 'stage2.block1.basic'; valid: 1bit, 4bit, 32bit"
    ):
        Architecture(space, bad)


def test_missing_point_and_wrong_space_are_refused(space):
    choices = dict(space.default())
    choices.pop("stage1.block1.dense")
    with pytest.raises(ValueError, match="no choice for decision point 'stage1.block1.dense'"):
        Architecture(space, choices)
    with pytest.raises(ValueError, match="for space 'other'"):
        Architecture.from_dict(space, {"space": "other", "choices": dict(space.default())})


def test_seeded_sampling_is_reproducible_and_covers_the_space(space):
    a = [space.sample(torch.Generator().manual_seed(3)) for _ in range(2)]
    assert a[0] == a[1]
    gen = torch.Generator().manual_seed(0)
    seen = {space.sample(gen) for _ in range(400)}
    assert len(seen) == space.size


def test_duplicate_points_or_choices_are_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        DecisionPoint("a", ("x", "x"))
    with pytest.raises(ValueError, match="duplicate"):
        SearchSpace("s", [DecisionPoint("a", ("x",)), DecisionPoint("a", ("y",))])
