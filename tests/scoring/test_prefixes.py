"""Rewards stage by stage, by architecture prefix: the same numbers as the whole network."""

from dataclasses import replace

import pytest
import torch
from helpers.runs import make_engine, tiny_cfg

from lightnas.scoring.prefixes import stages


@pytest.mark.parametrize("model", ["meliusnet_flex", "resnet18"])
def test_logits_by_prefix_are_those_of_the_whole_network(model):
    cfg = tiny_cfg()
    if model == "resnet18":
        cfg.model.name, cfg.model.kwargs = "resnet18", {"width": 8}
    engine = make_engine(cfg)
    evaluator, space = engine.evaluator, engine.supernet.space
    x, y = next(iter(engine.data.train.batches(0)))
    engine.train_step([engine.sampler.largest, engine.sampler.smallest], x, y)  # not the init
    gen = torch.Generator().manual_seed(3)
    first = space.sample(gen)
    # candidates that agree with the first on ever fewer leading choices, and random ones
    archs = [first]
    for cut in range(len(space), 0, -2):
        archs.append(
            space.from_indices([*first.indices()[:cut], *space.sample(gen).indices()[cut:]])
        )
    archs += [space.sample(gen) for _ in range(4)]
    batches = evaluator.draw()
    whole = [evaluator.accuracies([a], batches, 0)[0] for a in archs]  # no draw: whole network
    evaluator.prefixes.stages_run = 0
    by_prefix = [evaluator.accuracies([a], batches, 0, draw="d")[0] for a in archs]
    assert by_prefix == whole
    assert evaluator.prefixes.stages_run < len(archs) * len(stages(engine.supernet))
    assert evaluator.prefixes.entries  # outputs kept

    # a kept prefix's numbers are those of the network, logits included
    evaluator.known_scores().clear()
    arch = archs[1]
    engine.supernet.set_architecture(arch)
    evaluator.recalibrate_bn(engine.supernet, 0, evaluator.reward_calibration())
    engine.supernet.eval()
    with torch.no_grad():
        expected = [engine.supernet(bx) for bx, _ in batches]
    calibration = [bx for bx, _ in engine.data.train.batches(0)][: evaluator.reward_calibration()]
    logits = evaluator.prefixes.logits(
        arch, "e", lambda: (calibration, [b for b, _ in batches]), evaluator.placement.autocast
    )
    assert all(torch.equal(a, b) for a, b in zip(logits, expected, strict=True))


def test_the_kept_outputs_stay_within_their_memory_and_go_with_the_weights():
    engine = make_engine(tiny_cfg())
    evaluator, space = engine.evaluator, engine.supernet.space
    gen = torch.Generator().manual_seed(4)
    archs = [space.sample(gen) for _ in range(6)]
    batches = evaluator.draw()
    evaluator.accuracies(archs[:1], batches, 0, draw="d")
    one = evaluator.prefixes.bytes
    limit = 2 * one  # room for about two architectures' outputs
    evaluator.prefixes.limit = limit
    evaluator.accuracies(archs, batches, 0, draw="d")
    assert 0 < evaluator.prefixes.bytes <= limit
    x, y = next(iter(engine.data.train.batches(0)))
    engine.train_step([archs[0]], x, y)
    evaluator.known_scores()  # the evaluator sees new weights: nothing kept is valid
    assert not evaluator.prefixes.entries and evaluator.prefixes.bytes == 0


def test_no_outputs_are_kept_when_the_memory_is_zero_or_for_batch_statistics():
    engine = make_engine(tiny_cfg())
    evaluator = engine.evaluator
    archs = [engine.sampler.largest, engine.sampler.smallest]
    for options in (
        replace(evaluator.options, reward_cache_mb=0),
        replace(evaluator.options, reward_bn="batch"),
    ):
        evaluator.options = options
        evaluator.scores(archs, 0)
        assert not evaluator.prefixes.entries


def test_a_draw_whose_stage_outputs_do_not_fit_runs_batch_by_batch():
    engine = make_engine(tiny_cfg())
    evaluator = engine.evaluator
    archs = [engine.sampler.largest, engine.sampler.smallest]
    batches = evaluator.draw()
    expected = evaluator.accuracies(archs, batches, 0)  # no draw key: the whole network
    evaluator.prefixes.fits(
        1, torch.zeros(1, *engine.data.input_shape), evaluator.placement.autocast
    )
    images = sum(len(y) for _, y in batches) + evaluator.reward_calibration() * 16
    evaluator.prefixes.limit = 2 * images * evaluator.prefixes.per_image - 1  # just too small
    assert evaluator.accuracies(archs, batches, 0, draw="d") == expected
    assert not evaluator.prefixes.entries and evaluator.prefixes.stages_run == 0


def test_validation_by_prefix_gives_the_numbers_of_the_whole_network():
    engine = make_engine(tiny_cfg())
    evaluator, space = engine.evaluator, engine.supernet.space
    gen = torch.Generator().manual_seed(5)
    archs = [space.sample(gen) for _ in range(4)]
    by_prefix = [evaluator.evaluate(a, engine.data.val, 0) for a in archs]
    assert evaluator.prefixes.stages_run > 0
    evaluator.known_scores().clear()
    evaluator.options = replace(evaluator.options, reward_cache_mb=0)
    assert [evaluator.evaluate(a, engine.data.val, 0) for a in archs] == by_prefix
