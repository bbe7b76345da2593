"""Distributed runs on the CPU with gloo: ranks started by torch.multiprocessing, by torchrun in a
subprocess, or as plain processes given torchrun's environment, on free loopback ports.

Each check compares a run on several ranks with what one process computes: the gradient step, the
rewards, validation and BN re-estimation, the training folder, the weights after every epoch.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from helpers import ROOT
from helpers.runs import TINY_MELIUS
from torch import nn

from lightnas.cli import evaluate_main, search_main
from lightnas.config import Config, ModelConfig, OptimConfig, SearchConfig
from lightnas.data import DataOptions
from lightnas.engine.loop import Callback
from lightnas.errors import ConfigError
from lightnas.outputs.checkpoint import load_checkpoint
from lightnas.run.parts import build_engine, build_parts
from lightnas.run.search import search
from lightnas.runtime import distributed
from lightnas.runtime.distributed import LOCAL, Dist
from lightnas.search.strategies import ControllerOptions

ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    "OMP_NUM_THREADS": "1",
}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, world: int, port: int) -> dict[str, str]:
    """What torchrun puts in a rank's environment."""
    return {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world),
    }


def spawn(worker, world: int, *args) -> None:
    """Run `worker(rank, world, port, *args)` in `world` processes joined by gloo."""
    mp.spawn(worker, args=(world, free_port(), *args), nprocs=world, join=True)


def rows(folder: Path) -> list[dict]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# ---- the index arithmetic of sharding (no process group needed) -------------------------------
class Indices:
    """A loader whose batches are their own indices."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def batches(self, epoch: int, start: int = 0, step: int = 1):
        return iter(range(start, self.n, step))

    def __iter__(self):
        return self.batches(0)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("start", [0, 1, 4])
def test_the_ranks_shards_make_up_the_single_process_epoch(world, start):
    loader = Indices(10)
    shards = [list(Dist(r, world).shard(loader, 0, start)) for r in range(world)]
    steps = (10 - start) // world
    assert all(len(s) == steps == Dist(r, world).steps(10, start) for r, s in enumerate(shards))
    for r, shard in enumerate(shards):
        assert shard == [(start + k * world, start + k * world + r) for k in range(steps)]
    trained = sorted(b for s in shards for _, b in s)
    assert trained == list(range(start, start + steps * world))  # each batch once, in order


@pytest.mark.parametrize("world", [1, 2, 3])
def test_splits_first_batches_and_cycles_cover_the_single_process_batches(world):
    loader = Indices(5)
    ranks = [Dist(r, world) for r in range(world)]
    assert sorted(b for d in ranks for b in d.split(loader)) == list(range(5))
    assert sorted(b for d in ranks for b in d.first(loader, 0, 4)) == [0, 1, 2, 3]
    for d in ranks:  # the repeated sequence 0..4 0..4 ..., from position 3, every world-th
        cycle = d.cycle(loader, start=3)
        assert [next(cycle) for _ in range(7)] == [(3 + d.rank + k * world) % 5 for k in range(7)]


def test_one_process_passes_everything_through():
    net = nn.Linear(2, 2)
    loss, correct = torch.tensor(0.5), torch.tensor(3)
    assert LOCAL.wrap(net) is net and LOCAL.step_totals(loss, correct, 4) == (loss, correct, 4)
    assert LOCAL.sum_floats([1.0, 2.0]) == [1.0, 2.0] and LOCAL.any(True) and not LOCAL.any(False)
    marker = object()
    assert LOCAL.broadcast_object(marker) is marker and LOCAL.from_main(lambda: marker) is marker
    assert LOCAL.agree(lambda: marker) is marker and LOCAL.is_main and not LOCAL.distributed
    with distributed.session() as dist:  # no torchrun environment: one process
        assert dist is LOCAL


def test_the_process_group_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(distributed.TIMEOUT_ENV, raising=False)
    assert distributed.timeout().total_seconds() == 30 * 60
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "2.5")
    assert distributed.timeout().total_seconds() == 150
    for bad in ("0", "soon", "nan", "inf"):
        monkeypatch.setenv(distributed.TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match=distributed.TIMEOUT_ENV):
            distributed.timeout()


def test_synced_batchnorm_lasts_only_for_the_training_step():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.BatchNorm1d(2))
    with Dist(0, 2).synced_batchnorm(net, enabled=True):
        assert [type(m) for m in net[1:]] == [nn.SyncBatchNorm, nn.SyncBatchNorm]
    assert [type(m) for m in net[1:]] == [nn.BatchNorm2d, nn.BatchNorm1d]
    with Dist(0, 2).synced_batchnorm(net, enabled=False), LOCAL.synced_batchnorm(net, True):
        assert type(net[1]) is nn.BatchNorm2d


# ---- the gradient step, the rewards, validation and BN re-estimation ----------------------------
BATCH = 16  # the samples of one step over all ranks


def small_config(**search) -> Config:
    return Config(
        model=ModelConfig(TINY_MELIUS["name"], TINY_MELIUS["stem"], TINY_MELIUS["kwargs"]),
        data=DataOptions(
            dataset="mock", image_size=8, num_samples=96, num_classes=4, val_size=32, batch_size=8
        ),
        search=SearchConfig(
            controller_batch=2,
            num_val_samples=2,
            bn_recalibration_batches=3,  # 2 ranks: batches 0 and 2 on rank 0, 1 on rank 1
            cost_weight=-0.1,
            **search,
        ),
        controller=ControllerOptions(lr=0.01),
        optim=OptimConfig(optimizer="sgd", lr=0.1, momentum=0.9),
        epochs=1,
        device="cpu",
        progress=False,
    )


def without_batchnorm(net: nn.Module) -> None:
    for module in list(net.modules()):
        for name, sub in list(module.named_children()):
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                setattr(module, name, nn.Identity())


def step_weights(dist: Dist, sampling: str) -> dict[str, torch.Tensor]:
    """The supernet (without batch statistics) after one step on BATCH samples over the ranks."""
    cfg = small_config(sampling=sampling)
    parts = build_parts(cfg, dist)
    without_batchnorm(parts.supernet)
    engine = build_engine(cfg, parts, dist=dist)
    space, gen = engine.supernet.space, torch.Generator().manual_seed(1)
    archs = [space.sample(gen)]
    if sampling == "sandwich":  # several children's gradients summed, then averaged over ranks
        archs = [engine.sampler.largest, engine.sampler.smallest, *archs, space.sample(gen)]
    x = torch.randn(BATCH, 3, 8, 8, generator=gen)
    y = torch.randint(4, (BATCH,), generator=gen)
    mine = slice(dist.rank * BATCH // dist.world_size, (dist.rank + 1) * BATCH // dist.world_size)
    engine.train_step(archs, x[mine], y[mine])
    return {k: v.clone() for k, v in engine.supernet.state_dict().items()}


def scoring(dist: Dist) -> dict:
    """A controller step's statistics and rewards, validation and BN statistics; every rank's
    reward draw is one batch, so the union is the single process's two."""
    cfg = small_config(reward_batches=2 // dist.world_size)
    engine = build_engine(cfg, build_parts(cfg, dist), dist=dist)
    stats = engine.controller_step(0)
    candidates = [engine.supernet.space.default(), engine.sampler.smallest]
    scores = engine.evaluator.scores(candidates, 0)
    loss, acc = engine.evaluator.evaluate(engine.sampler.smallest, engine.data.val, 0)
    return {
        "stats": stats,
        "controller": engine.strategy.controller.state_dict(),
        "scores": scores,
        "validation": (loss, acc),
        "bn": {k: v.clone() for k, v in engine.supernet.state_dict().items() if "running" in k},
        "reward_batches_used": engine.evaluator.reward_batches_used,
    }


def measured_costs(dist: Dist) -> dict:
    """Rewards under costs each process would measure differently: rank 0's count everywhere."""
    out = {}
    for cost in ("latency", "latency_table"):
        cfg = small_config(cost=cost)
        engine = build_engine(cfg, build_parts(cfg, dist), dist=dist)
        candidates = [engine.supernet.space.default(), engine.sampler.smallest]
        out[cost] = [s.reward for s in engine.evaluator.scores(candidates, 0)]
        out[cost].append(engine.evaluator.target_cost)
    return out


def collectives_worker(rank: int, world: int, port: int, out: Path) -> None:
    os.environ.update(rank_env(rank, world, port))
    torch.set_num_threads(1)
    with distributed.session() as dist:
        results = {s: step_weights(dist, s) for s in ("controller", "sandwich")}
        results["scoring"] = scoring(dist)
        results["measured"] = measured_costs(dist)
    torch.save(results, out / f"rank{rank}.pt")


@pytest.mark.slow
def test_two_ranks_step_score_and_validate_as_one_process_on_all_their_batches(tmp_path):
    spawn(collectives_worker, 2, tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    for sampling in ("controller", "sandwich"):
        one = step_weights(LOCAL, sampling)  # one process, both ranks' samples in one batch
        for r in ranks:
            assert r[sampling].keys() == one.keys()
            for k, v in one.items():
                assert torch.allclose(r[sampling][k], v, rtol=0, atol=1e-6), (sampling, k)
    one, two = scoring(LOCAL), [r["scoring"] for r in ranks]
    for r in two:
        # the controller received the accuracy on the union of the ranks' reward batches
        assert r["stats"] == pytest.approx(one["stats"], abs=1e-9)
        assert [s.accuracy for s in r["scores"]] == [s.accuracy for s in one["scores"]]
        assert [s.reward for s in r["scores"]] == pytest.approx([s.reward for s in one["scores"]])
        assert r["validation"][1] == one["validation"][1]
        assert r["validation"][0] == pytest.approx(one["validation"][0], rel=1e-6)
        assert r["reward_batches_used"] == one["reward_batches_used"] == 4
        for k, v in one["bn"].items():
            assert torch.allclose(r["bn"][k], v, rtol=1e-5, atol=1e-6), k
    ctrl = [r["controller"] for r in two]
    assert all(torch.equal(ctrl[0][k], one["controller"][k]) for k in ctrl[0])
    assert ranks[0]["measured"] == ranks[1]["measured"]  # measured on rank 0 only


# ---- a whole search ---------------------------------------------------------------------------
class SaveWeights(Callback):
    """Every rank saves its supernet after every epoch (a test probe: only it writes there)."""

    def __init__(self, out: Path, rank: int) -> None:
        self.out, self.rank = out, rank

    def on_epoch_end(self, engine, result) -> None:
        state = {k: v.clone() for k, v in engine.supernet.state_dict().items()}
        torch.save(state, self.out / f"rank{self.rank}_epoch{result.epoch}.pt")


def search_worker(rank: int, world: int, port: int, config: Path, probes: Path) -> None:
    os.environ.update(rank_env(rank, world, port))
    torch.set_num_threads(1)
    assert search(["-c", str(config)], callbacks=[SaveWeights(probes, rank)]) == 0


def contract(folder: Path) -> list[str]:
    """The files of a training folder, TensorBoard's event files (named by host and time) as
    one entry."""
    paths = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    return sorted({"tensorboard/<events>" if p.startswith("tensorboard/") else p for p in paths})


@pytest.mark.slow
@pytest.mark.e2e
def test_two_ranks_leave_the_folder_of_one_process_and_the_same_weights(write_config, tmp_path):
    probes = tmp_path / "probes"
    probes.mkdir()
    spawn(search_worker, 2, write_config("two.yml", name="two"), probes)
    assert search_main(["-c", str(write_config("one.yml", name="one"))]) == 0
    trainings = tmp_path / "trainings"
    assert sorted(p.name for p in trainings.iterdir()) == ["one", "two"]  # rank 1 wrote nothing
    one, two = trainings / "one", trainings / "two"
    assert contract(two) == contract(one)
    assert [r.keys() for r in rows(two)] == [r.keys() for r in rows(one)]
    assert json.loads((two / "status.json").read_text())["state"] == "finished"
    assert "training folder:" in (two / "log.txt").read_text()
    for epoch in (1, 2):
        a, b = (torch.load(probes / f"rank{r}_epoch{epoch}.pt") for r in range(2))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), epoch
    saved = load_checkpoint(two / "enas_checkpoint")["supernet"]
    assert all(torch.equal(saved[k], a[k]) for k in a)


@pytest.mark.slow
@pytest.mark.e2e
def test_torchrun_on_two_ranks_then_resume_on_one(write_config, tmp_path):
    config = write_config(epochs=1, name="dist")
    done = subprocess.run(
        [*TORCHRUN, "--standalone", "--nproc_per_node", "2", str(ROOT / "train_enas.py")]
        + ["-c", str(config)],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "trainings" / "dist"
    assert len(rows(folder)) == 1 and done.stdout.count("training folder:") == 1
    assert search_main(["--resume", str(folder), "--epochs", "2"]) == 0
    assert [r["epoch"] for r in rows(folder)] == [1, 2]
    assert load_checkpoint(folder / "enas_checkpoint")["epoch"] == 2


@pytest.mark.slow
@pytest.mark.e2e
def test_ctrl_c_to_torchrun_stops_every_rank_at_one_checkpointed_batch(write_config, tmp_path):
    config = write_config(epochs=20, name="stopped", data={"num_samples": 320})
    folder = tmp_path / "trainings" / "stopped"
    proc = subprocess.Popen(
        [*TORCHRUN, "--standalone", "--nproc_per_node", "2", str(ROOT / "train_enas.py")]
        + ["-c", str(config)],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (folder / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.02)
    while proc.poll() is None and not rows(folder) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends torchrun; it passes it to the ranks
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "interrupted", (status, err[-4000:])
    assert "continue with: python train_enas.py --resume" in err
    state = load_checkpoint(folder / "enas_checkpoint")
    assert 1 <= state["epoch"] < 20, out
    progress = state["progress"]
    assert progress is None or progress["step"] % 2 == 0  # steps of 2 batches, one per rank


@pytest.mark.slow
@pytest.mark.e2e
def test_retrain_and_evaluate_under_torchrun(write_config, tmp_path):
    assert search_main(["-c", str(write_config(epochs=1, name="s"))]) == 0
    search_folder = tmp_path / "trainings" / "s"

    def torchrun(*args: str) -> subprocess.CompletedProcess:
        command = [*TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "lightnas", *args]
        return subprocess.run(
            command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300
        )

    retrained = torchrun("retrain", str(search_folder), "--epochs", "1")
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    folder = tmp_path / "trainings" / "s_retrain"
    assert len(rows(folder)) == 1 and not (tmp_path / "trainings" / "s_retrain_2").exists()
    evaluated = torchrun("evaluate", str(folder))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert evaluated.stdout.count("written to") == 1
    two = json.loads((folder / "evaluation.json").read_text())
    assert evaluate_main([str(folder), "-o", str(tmp_path / "one.json")]) == 0
    one = json.loads((tmp_path / "one.json").read_text())
    assert two["samples"] == one["samples"] > 0
    for key in ("top1", "top5", "samples", "params", "ops"):
        assert two["results"]["model"][key] == one["results"]["model"][key], key


def launch_ranks(args: list[str], world: int, cwds: list[Path]) -> list[subprocess.Popen]:
    """`world` processes of `args` with torchrun's environment, without torchrun: nothing but
    LightNAS itself watches over them."""
    port = free_port()
    return [
        subprocess.Popen(
            args,
            cwd=cwds[rank],
            env={**ENV, **rank_env(rank, world, port)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(world)
    ]


@pytest.mark.slow
@pytest.mark.e2e
def test_killing_a_rank_stops_the_other_and_keeps_its_checkpoint(write_config, tmp_path):
    config = write_config(
        epochs=3, name="killed", data={"num_samples": 320}, checkpoint={"every_minutes": 0}
    )
    folder = tmp_path / "trainings" / "killed"
    rank0, rank1 = launch_ranks(
        [sys.executable, str(ROOT / "train_enas.py"), "-c", str(config)], 2, [tmp_path] * 2
    )
    last = folder / "enas_checkpoint" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and rank0.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert rank0.poll() is None, rank0.communicate()[1][-3000:]
    rank1.send_signal(signal.SIGKILL)
    killed = time.time()
    rank1.wait()
    _, err = rank0.communicate(timeout=60)
    assert time.time() - killed < 60
    assert rank0.returncode not in (0, None), err[-3000:]
    assert json.loads((folder / "status.json").read_text())["state"] == "failed"
    state = load_checkpoint(folder / "enas_checkpoint")  # intact
    assert state["epoch"] < 3
    assert search_main(["--resume", str(folder)]) == 0  # on one rank
    assert [r["epoch"] for r in rows(folder)] == [1, 2, 3]


@pytest.mark.slow
@pytest.mark.e2e
def test_two_machines_on_loopback_run_one_search(write_config, tmp_path):
    config = write_config(epochs=1, name="nodes")
    port = free_port()
    nodes = [
        subprocess.Popen(
            [*TORCHRUN, "--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(node)]
            + ["--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}"]
            + ["--rdzv_id", "lightnas-test", str(ROOT / "train_enas.py"), "-c", str(config)],
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in (0, 1)
    ]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-3000:]
    assert sum(out.count("training folder:") for out, _ in outputs) == 1
    assert sorted(p.name for p in (tmp_path / "trainings").iterdir()) == ["nodes"]
    assert len(rows(tmp_path / "trainings" / "nodes")) == 1


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("where", ["every rank", "rank 1"])
def test_bad_input_on_any_rank_is_one_line_from_rank_0_and_writes_nothing(
    write_config, tmp_path, where
):
    cwds = [tmp_path / "rank0", tmp_path / "rank1"]
    for cwd in cwds:
        cwd.mkdir()
    (cwds[0] / "extension.py").write_text("")  # rank 1's working directory lacks it
    if where == "every rank":  # only a distributed run can tell
        config = write_config(distributed={"sync_bn": True})
        expected = "error: distributed.sync_bn=true needs CUDA devices"
    else:
        config = write_config(imports=["extension.py"])
        expected = "error: rank 1: imports: extension.py does not exist"
    ranks = launch_ranks([sys.executable, str(ROOT / "train_enas.py"), "-c", str(config)], 2, cwds)
    (out0, err0), (out1, err1) = (r.communicate(timeout=120) for r in ranks)
    assert [r.returncode for r in ranks] == [2, 2], err0[-3000:]
    assert [line for line in err0.splitlines() if line.strip()] == [err0.strip()]
    assert err0.startswith(expected)
    assert out0 == out1 == "" and "error" not in err1
    assert not (tmp_path / "trainings").exists()
    assert not any((cwd / "configs").exists() for cwd in cwds)


def test_several_ranks_need_at_least_one_training_batch_each():
    cfg = small_config()
    cfg.data.num_samples = 40  # 8 training samples: one batch of 8
    with pytest.raises(ConfigError, match="1 batches, fewer than the 2 processes"):
        build_parts(cfg, Dist(0, 2))
    build_parts(cfg, LOCAL)
