"""Several processes, one run: torchrun and DistributedDataParallel.

`torchrun --nproc_per_node N train_enas.py -c x.yml` starts N processes (ranks) of one run.
`session()` joins them into a process group (on a GPU machine NCCL for CUDA tensors and gloo for
CPU ones, on a CPU machine gloo) and hands the run a `Dist`: its rank, the world size W and the few
collectives LightNAS uses. A plain `python train_enas.py` gets `LOCAL`, whose every method passes
its input through, so code written against `Dist` runs unchanged, bit for bit, in one process.

How a run is divided:
- training data: step k of an epoch trains the loader's batches kW ... kW + W - 1, batch kW + rank
  on this rank (`shard`). The order and augmentation are the single process's, the global batch is
  data.batch_size x W, and a last step with fewer than W batches is dropped;
- architectures: rank 0's strategy and sampler decide (the controller lives on rank 0); the other
  ranks receive its decisions (`from_main`). Identical strategies on every rank would save a
  broadcast per step, but one rounding difference between two machines' CPUs would let them
  drift apart, and the ranks would silently train different children;
- gradients: averaged over the ranks by DDP (`wrap`);
- rewards, validation and BN re-estimation: each rank takes its share of the batches and counts
  and sums are added over the ranks (`split`, `cycle`, `first`, `sum_floats`,
  `reduce_bn_statistics`), so every rank gets the figure one process computes on the union;
- files: only rank 0 writes (lightnas.run); the other ranks print nothing but errors.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from itertools import islice
from typing import Any, Protocol, TypeVar

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from lightnas.errors import ConfigError, LightNASError, ReportedError

T = TypeVar("T")
TIMEOUT_ENV = "LIGHTNAS_DIST_TIMEOUT_MINUTES"
DEFAULT_TIMEOUT_MINUTES = 30.0
"""How long a rank waits in a collective for the others (then it fails instead of hanging): long
enough for rank 0 to write an epoch's exports and checkpoint while the others wait."""
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# DDP must not broadcast rank 0's buffers before every forward (torch >= 2.13 renamed the flag)
NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


class Loader(Protocol):
    """What sharding needs of a loader (lightnas.data's ArrayLoader and FolderLoader)."""

    def __len__(self) -> int: ...
    def batches(self, epoch: int, start: int = 0, step: int = 1) -> Iterator: ...


class Dist:
    """This process's place in a run (`rank` of `world_size`) and the collectives of LightNAS.

    Every collective must be called by every rank in the same order; the engine and the
    evaluator do so by running the same code on every rank."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0) -> None:
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that decides, writes and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def __repr__(self) -> str:
        return f"Dist(rank={self.rank}, world_size={self.world_size})"

    # ---- setup --------------------------------------------------------------------------------
    def place(self, device: torch.device) -> torch.device:
        """This rank's device: CUDA means the GPU of its LOCAL_RANK (one GPU per process)."""
        if not self.distributed or device.type != "cuda":
            return device
        if device.index is not None:
            raise ConfigError(
                f"device={device}: under torchrun each process uses the GPU of its LOCAL_RANK; "
                "use device: cuda or auto"
            )
        if self.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={self.local_rank} but this machine has "
                f"{torch.cuda.device_count()} GPUs: start at most that many processes per node"
            )
        return torch.device("cuda", self.local_rank)

    def check(self, device: torch.device, train_batches: int, sync_bn: bool) -> None:
        """Refuse a run these processes cannot share (a `ConfigError`)."""
        if not self.distributed:
            return
        if train_batches < self.world_size:
            raise ConfigError(
                f"the training split has {train_batches} batches, fewer than the "
                f"{self.world_size} processes: lower data.batch_size or start fewer processes"
            )
        if sync_bn and device.type != "cuda":
            raise ConfigError(
                f"distributed.sync_bn=true needs CUDA devices (NCCL); this run computes on "
                f"{device.type}: set it to false"
            )

    # ---- collectives --------------------------------------------------------------------------
    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        """`tensor` summed over the ranks, in place."""
        if self.distributed:
            torch_dist.all_reduce(tensor)
        return tensor

    def sum_floats(self, values: Sequence[float]) -> list[float]:
        """Plain numbers (counts, sums) added over the ranks, in float64 on the CPU."""
        if not self.distributed:
            return list(values)
        return self.all_reduce_sum(torch.tensor(values, dtype=torch.float64)).tolist()

    def any(self, flag: bool) -> bool:
        """Whether `flag` holds on some rank: how every rank stops at the same safe point."""
        if not self.distributed:
            return flag
        return self.sum_floats([float(flag)])[0] > 0

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's `obj` (any picklable object) on every rank."""
        if not self.distributed:
            return obj
        box = [obj if self.is_main else None]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather_object(self, obj: T) -> list[T]:
        """Every rank's `obj`, in rank order."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(out, obj)
        return out

    def from_main(self, fn: Callable[[], T]) -> T:
        """`fn()` computed on rank 0 and shared: a decision every rank must take alike (the
        architectures of a step, a measured cost). Bad input there stops every rank."""
        if not self.distributed:
            return fn()
        if not self.is_main:
            ok, value = self.broadcast_object(None)
            if not ok:
                raise ReportedError(value)
            return value
        try:
            value = fn()
        except LightNASError as err:
            self.broadcast_object((False, str(err)))
            raise
        self.broadcast_object((True, value))
        return value

    def agree(self, fn: Callable[[], T]) -> T:
        """`fn()` on every rank (it must run no collective); bad input (a LightNASError) on any
        rank stops all of them before anything is written: rank 0 says why, the others exit
        silently (a `ReportedError`)."""
        if not self.distributed:
            return fn()
        try:
            result, error = fn(), None
        except LightNASError as err:
            result, error = None, err
        messages = self.all_gather_object(None if error is None else str(error))
        failed = [(rank, m) for rank, m in enumerate(messages) if m is not None]
        if not failed:
            return result
        if not self.is_main:
            raise ReportedError(failed[0][1])
        if error is not None:
            raise error
        rank, message = failed[0]
        raise LightNASError(f"rank {rank}: {message}")

    def step_totals(self, loss: Tensor, correct: Tensor, n: int) -> tuple[Tensor, Tensor, int]:
        """A training step's mean loss, correct count and sample count over every rank's batch
        (what a checkpoint inside an epoch must hold, whichever rank writes it)."""
        if not self.distributed:
            return loss, correct, n
        sums = self.all_reduce_sum(torch.stack([loss.detach().double() * n, correct.double()]))
        count = int(self.sum_floats([n])[0])
        return sums[0] / count, sums[1], count

    # ---- sharding ------------------------------------------------------------------------------
    def steps(self, batches: int, start: int = 0) -> int:
        """Training steps of an epoch of `batches` batches from global batch `start` on."""
        return max(batches - start, 0) // self.world_size

    def shard(self, loader: Loader, epoch: int, start: int = 0) -> Iterator[tuple[int, Any]]:
        """(i, this rank's batch) for each training step of `epoch` from global batch `start`
        on; i is the step's first global batch index (the step trains batches i ... i + W - 1,
        batch i + rank here)."""
        steps = self.steps(len(loader), start)
        if steps == 0:
            return
        batches = loader.batches(epoch, start=start + self.rank, step=self.world_size)
        for k, batch in enumerate(islice(batches, steps)):
            yield start + k * self.world_size, batch

    def split(self, loader: Loader | Any) -> Iterator:
        """This rank's share of one pass over `loader` (batches rank, rank + W, ...): the ranks
        together see every batch once."""
        if not self.distributed:
            return iter(loader)
        if self.rank >= len(loader):
            return iter(())
        return loader.batches(0, start=self.rank, step=self.world_size)

    def first(self, loader: Loader, epoch: int, count: int) -> Iterator:
        """This rank's share of the first `count` batches of `epoch`."""
        count = min(count, len(loader))
        mine = len(range(self.rank, count, self.world_size))
        if mine == 0:
            return iter(())
        return islice(loader.batches(epoch, start=self.rank, step=self.world_size), mine)

    def cycle(self, loader: Loader, start: int = 0) -> Iterator:
        """This rank's share of `loader` repeated without end from global batch `start`: the
        batches at positions start + rank, start + rank + W, ... of the repeated sequence."""
        n, position = len(loader), start + self.rank
        while n:
            first = position % n
            yield from loader.batches(0, start=first, step=self.world_size)
            position += len(range(first, n, self.world_size)) * self.world_size

    # ---- the model -----------------------------------------------------------------------------
    def wrap(self, net: nn.Module, static: bool = False) -> nn.Module:
        """The module a training step runs: `net` itself in one process, else DDP, which averages
        the gradients over the ranks during the backward pass.

        The parameters a step uses change with its architecture, so DDP looks for the unused
        ones after every forward (find_unused_parameters) unless the architecture never changes
        (`static`, a retrain). BN running statistics are not broadcast at every step;
        `average_buffers` merges them."""
        if not self.distributed:
            return net
        device = next(net.parameters()).device
        return DistributedDataParallel(
            net,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=not static,
            static_graph=static,
            **NO_BUFFER_SYNC,
        )

    def accumulating(self, model: nn.Module, accumulate: bool) -> contextlib.AbstractContextManager:
        """Inside it, a backward pass only adds to the local gradients (DDP's no_sync): a step
        that sums several children's gradients (sandwich sampling) averages them over the
        ranks once, in its last backward."""
        if accumulate and isinstance(model, DistributedDataParallel):
            return model.no_sync()
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def synced_batchnorm(self, net: nn.Module, enabled: bool) -> Iterator[None]:
        """BatchNorm on the statistics of the global batch (SyncBatchNorm) during a training
        step only: the layers change class for the step and back. Rewards, validation, BN
        re-estimation, exports and cost measurements keep plain BatchNorm, because they run on
        uneven shares of the batches or on rank 0 alone, where a synced layer would wait for
        ranks that never come."""
        if not (enabled and self.distributed):
            yield
            return
        layers = [(m, type(m)) for m in net.modules() if type(m) in BATCHNORMS]
        for m, _ in layers:
            m.__class__ = nn.SyncBatchNorm
            m.process_group = None  # the whole world
        try:
            yield
        finally:
            for m, cls in layers:
                m.__class__ = cls

    @torch.no_grad()
    def average_buffers(self, net: nn.Module) -> None:
        """Average the floating-point buffers (BN running statistics) over the ranks: each rank
        updated them from its own batches."""
        buffers = [b for b in net.buffers() if b.is_floating_point()]
        if not self.distributed or not buffers:
            return
        flat = self.all_reduce_sum(torch.cat([b.reshape(-1).double() for b in buffers]))
        flat /= self.world_size
        for b, part in zip(buffers, flat.split([b.numel() for b in buffers]), strict=True):
            b.copy_(part.view_as(b))

    @torch.no_grad()
    def reduce_bn_statistics(self, bns: Sequence[nn.modules.batchnorm._BatchNorm]) -> None:
        """After each rank re-estimated BN statistics on its share of the batches (cumulative
        averages: momentum None), make them the averages over every rank's batches, as one
        process computes them on all the batches."""
        if not self.distributed or not bns:
            return
        parts = []
        for bn in bns:
            n = bn.num_batches_tracked.double().reshape(1)
            parts += [bn.running_mean.double() * n, bn.running_var.double() * n, n]
        flat = self.all_reduce_sum(torch.cat(parts))
        sizes = [s for bn in bns for s in (bn.num_features, bn.num_features, 1)]
        chunks = iter(flat.split(sizes))
        for bn in bns:
            mean, var, n = next(chunks), next(chunks), next(chunks)
            seen = n > 0  # no rank ran the layer: it keeps its reset statistics
            total = n.clamp_min(1)
            bn.running_mean.copy_(torch.where(seen, mean / total, bn.running_mean))
            bn.running_var.copy_(torch.where(seen, var / total, bn.running_var))
            bn.num_batches_tracked.copy_(n.squeeze().long())


LOCAL = Dist()
"""One process: no process group, every method a pass-through."""

_active: Dist | None = None  # the session's Dist while one is open


def timeout() -> timedelta:
    """The process group's timeout: LIGHTNAS_DIST_TIMEOUT_MINUTES, default 30."""
    text = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_MINUTES))
    try:
        minutes = float(text)
    except ValueError:
        minutes = math.nan
    if not minutes > 0 or not math.isfinite(minutes):
        raise ConfigError(f"{TIMEOUT_ENV}={text!r} must be a number of minutes > 0")
    return timedelta(minutes=minutes)


def join() -> Dist:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT)."""
    world = int(os.environ["WORLD_SIZE"])
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "gloo"
    if torch.cuda.is_available():
        if local_rank < torch.cuda.device_count():
            torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl"  # objects and flags live on the CPU
    torch_dist.init_process_group(backend, timeout=timeout())
    return Dist(rank, world, local_rank)


@contextlib.contextmanager
def session() -> Iterator[Dist]:
    """The processes of this command: under torchrun with several processes, join the process
    group (left at the end) and keep the ranks other than 0 quiet (no output but errors);
    otherwise `LOCAL`. Nested sessions (retrain --resume runs a search) share the outer one."""
    global _active
    if _active is not None or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield _active or LOCAL
        return
    _active = join()
    try:
        with quiet(_active.is_main):
            yield _active
        leave_together()
    finally:
        _active = None
        torch_dist.destroy_process_group()


def leave_together() -> None:
    """After a command that ended normally on every rank: free what may still hold gloo work
    (DDP's reducer in a reference cycle), then wait for every rank (rank 0 may still be writing)
    before the group is torn down. A rank that tore its connections down while another still
    used the group was aborted by gloo ("terminate called without an active exception", seen
    once in CI). After an exception the ranks do not wait: a dead peer must not hang the rest."""
    gc.collect()
    torch_dist.barrier()


@contextlib.contextmanager
def quiet(main: bool) -> Iterator[None]:
    """On ranks other than 0: nothing on stdout, no warnings (rank 0 shows the same ones)."""
    if main:
        yield
        return
    with (
        open(os.devnull, "w") as null,
        contextlib.redirect_stdout(null),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield
