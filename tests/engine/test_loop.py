"""The engine on tiny supernets: phases, GPU options on CPU, NaN handling, no files written."""

import math

import pytest
import torch
from helpers.runs import make_engine, tiny_cfg

from lightnas.engine.loop import Callback
from lightnas.engine.loss import NonFiniteLossError
from lightnas.models import child
from lightnas.run.parts import build_engine, build_parts, space_of
from lightnas.search import Architecture


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_phase(self, engine, phase, total):
        self.events.append(("phase", phase))

    def on_epoch_end(self, engine, result):
        self.events.append(("epoch", result.epoch))


def test_epoch_runs_all_phases_and_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rec = Recorder()
    engine = make_engine(tiny_cfg(), [rec])
    engine.run()
    assert rec.events == [
        ("phase", "train"),
        ("phase", "controller"),
        ("phase", "valid"),
        ("epoch", 1),
        ("phase", "final"),
    ]
    result = engine.history[0]
    assert 0 <= result.val_acc <= 1 and math.isfinite(result.train_loss)
    assert result.controller["reward"] is not None
    assert engine.best.epoch == 1
    assert list(tmp_path.iterdir()) == []


def test_update_arch_frequency_runs_controller_during_training():
    rec = Recorder()
    cfg = tiny_cfg()
    cfg.search.update_arch_frequency = 1
    make_engine(cfg, [rec]).run()
    phases = [p for kind, p in rec.events if kind == "phase"]
    assert phases.count("controller") == 3  # 3 training batches of 16 from 48 samples


def test_channels_last_and_bf16_run_on_cpu():
    cfg = tiny_cfg(channels_last=True, bf16=True)
    engine = make_engine(cfg)
    engine.run()
    conv = next(m for m in engine.supernet.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert math.isfinite(engine.history[0].train_loss)


def test_non_finite_loss_stops_the_run():
    engine = make_engine(tiny_cfg())
    with torch.no_grad():
        engine.supernet.head[-1].weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="non-finite training loss"):
        engine.run()
    assert engine.history == []


def test_cost_weight_prefers_cheaper_architectures():
    cfg = tiny_cfg()
    cfg.search.cost_weight = -1.0
    engine = make_engine(cfg)
    space = engine.supernet.space
    cheap = {n: ("conv1x1" if n.endswith("dense") else "identity") for n in space.names}
    cheap = Architecture(space, cheap)
    assert (
        engine.evaluator.reward(cheap, 0.5)
        > engine.evaluator.reward(space.default(), 0.5)
        == pytest.approx(0.5)
    )


def test_ctrl_c_during_epoch_end_bookkeeping_is_held_until_it_is_done():
    import os
    import signal

    class InterruptMidway(Callback):
        def __init__(self):
            self.finished = False

        def on_epoch_end(self, engine, result):
            os.kill(os.getpid(), signal.SIGINT)  # arrives while files would be half written
            self.finished = True

    cb = InterruptMidway()
    cfg = tiny_cfg(epochs=3)
    engine = make_engine(cfg, [cb])
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    assert cb.finished and engine.epoch == 1 and len(engine.history) == 1


@pytest.mark.parametrize("cost", ["model_bits", "latency"])
def test_other_costs_drive_the_reward_inside_the_engine(cost):
    cfg = tiny_cfg()
    cfg.search.cost, cfg.search.cost_weight = cost, -0.5
    engine = make_engine(cfg)
    engine.run()
    result = engine.history[0]
    arch = Architecture(engine.supernet.space, result.architecture)
    if cost == "model_bits":
        assert result.cost == result.costs["model_bits"]
    assert result.cost == engine.evaluator.cost(arch) > 0
    base = engine.evaluator.cost(engine.supernet.space.default())
    expected = result.val_acc * (result.cost / base) ** -0.5
    assert result.reward == pytest.approx(expected)


def test_on_device_keeps_the_whole_split_on_the_run_device():
    cfg = tiny_cfg()
    cfg.data.on_device = True
    engine = make_engine(cfg)
    train = engine.data.train
    assert train.x.device == engine.placement.device and not train.pin_memory
    assert len(train.x) == len(train.y) == 48  # the split itself, not a batch
    engine.run()
    plain = make_engine(tiny_cfg())
    plain.run()
    assert engine.history[0].train_loss == plain.history[0].train_loss


def test_an_exported_child_scores_the_val_acc_logged_for_its_epoch(tmp_path):
    from lightnas.commands.evaluate import accuracy
    from lightnas.export import export_child, load_child

    engine = make_engine(tiny_cfg(epochs=2))
    engine.run()
    result = engine.history[-1]
    arch = Architecture(engine.supernet.space, result.architecture)
    net = engine.evaluator.trained_child(arch, result.epoch - 1)
    info = {"name": "meliusnet_flex", "num_classes": 4, "stem": "thumbnail", "search_space": None}
    info |= {"kwargs": engine.cfg.model.kwargs, "input_shape": [3, 8, 8]}
    paths = export_child(net, arch, info, tmp_path, "epoch_2", formats=())
    exported = load_child(paths["safetensors"])
    assert accuracy(exported, engine.data.val, 4)["top1"] == pytest.approx(result.val_acc)


def test_export_leaves_the_supernet_state_alone():
    engine = make_engine(tiny_cfg())
    engine.run()
    before = {k: v.clone() for k, v in engine.supernet.state_dict().items()}
    engine.evaluator.trained_child(engine.supernet.space.default(), 0)
    after = engine.supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_fixed_architecture_trains_alone_whatever_the_config_says():
    cfg = tiny_cfg()
    space = space_of(cfg)
    arch = space.from_indices([1] * len(space))
    cfg.search.strategy = "fixed"
    cfg.search.sampling, cfg.search.inplace_distill = "sandwich", True  # as a search's config
    engine = build_engine(cfg, build_parts(cfg, architecture=arch))
    assert engine.fixed_architecture and not engine.sampler.rule.inplace_distill
    assert [engine.training_architectures(e) for e in (0, 1)] == [[arch], [arch]]
    cfg.search.strategy = "enas"  # a weight-sharing strategy follows the config
    assert len(make_engine(cfg).training_architectures(0)) == 2 + cfg.search.sandwich_k


@pytest.mark.slow
def test_regional_compilation_stops_after_one_pass_over_the_choices():
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    cfg = tiny_cfg(epochs=2, compile="regional", compile_backend="aot_eager")
    cfg.search.sampling = "uniform"
    engine = make_engine(cfg)
    space = engine.supernet.space
    x, y = next(iter(engine.data.train.batches(0)))
    for arch in (engine.sampler.largest, engine.sampler.smallest):  # every (block, choice)
        engine.train_step([arch], x, y)
    engine.evaluator.scores([engine.sampler.largest, engine.sampler.smallest], 0)
    compiled = counters["stats"]["unique_graphs"]
    assert compiled > 0
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        engine.train_step([space.sample(gen)], x, y)
    engine.evaluator.scores([space.sample(gen) for _ in range(4)], 0)
    assert counters["stats"]["unique_graphs"] == compiled  # no new compilation
    plain = make_engine(tiny_cfg())
    arch = space.default()
    engine.supernet.eval(), plain.supernet.load_state_dict(engine.supernet.state_dict())
    plain.supernet.eval()
    engine.supernet.set_architecture(arch), plain.supernet.set_architecture(arch)
    with torch.no_grad():
        assert torch.allclose(engine.supernet(x), plain.supernet(x), atol=1e-5)
        sub = child(engine.supernet, arch).eval()  # a copy that runs its own weights
        for p in sub.parameters():
            p.data.zero_()
        assert not torch.allclose(sub(x), engine.supernet(x))
