"""`build_data`: the dataset registry, the source contract and the bundle of loaders it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from lightnas.data.loaders import ArrayLoader, FolderLoader, Stats
from lightnas.data.options import DataOptions
from lightnas.data.splits import split_indices
from lightnas.errors import ConfigError
from lightnas.registry import Registry


@dataclass
class DataBundle:
    """The splits of one dataset plus what a model needs to know about its input."""

    train: ArrayLoader | FolderLoader  # augmented, shuffled
    val: ArrayLoader | FolderLoader  # carved from the training set; not augmented, not shuffled
    test: ArrayLoader | FolderLoader | None  # the dataset's own test split
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W) as the model sees it
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)


@dataclass
class Arrays:
    """A dataset held in memory: training pool (train + val) and test split, uint8 NCHW."""

    x: Tensor
    y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    stats: Stats | None = None  # None: computed from the training split


@dataclass(frozen=True)
class BuildContext:
    """What a source may need beyond its options: the run's seed and the loaders' device."""

    seed: int
    device: torch.device

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"


Source = Callable[[DataOptions, BuildContext], Arrays | DataBundle]
DATASETS: Registry[Source] = Registry("dataset", "data.dataset")


def build_data(
    options: DataOptions, *, seed: int = 0, device: str | torch.device = "cpu"
) -> DataBundle:
    """Train / validation / test loaders of `options.dataset` (one of `DATASETS`).

    `options.num_samples` is the size of mock's training set; for the other datasets it caps the
    training pool (a seeded subset) before the validation split is carved from it. Batches are
    pinned in host memory when `device` is a GPU.
    """
    source = DATASETS[options.dataset]
    options.check()
    ctx = BuildContext(int(seed), torch.device(device))
    made = source(options, ctx)
    if options.num_classes is not None and options.num_classes != made.num_classes:
        raise ConfigError(
            f"data.num_classes={options.num_classes} but {options.dataset} has "
            f"{made.num_classes} classes"
        )
    return made if isinstance(made, DataBundle) else _array_bundle(made, options, ctx)


def _array_bundle(arrays: Arrays, options: DataOptions, ctx: BuildContext) -> DataBundle:
    train_idx, val_idx = split_indices(
        len(arrays.x), options.val_size, ctx.seed, options.num_samples
    )
    train_x = arrays.x[train_idx]
    stats = arrays.stats or channel_stats(train_x)
    common = dict(
        stats=stats,
        seed=ctx.seed,
        device=ctx.device,
        on_device=options.on_device,
        pin_memory=ctx.pin_memory,
    )
    eval_batch_size = options.eval_batch_size or options.batch_size
    train = ArrayLoader(
        train_x,
        arrays.y[train_idx],
        batch_size=options.batch_size,
        shuffle=True,
        augment=options.augment,
        drop_last=True,
        **common,
    )
    val = ArrayLoader(arrays.x[val_idx], arrays.y[val_idx], batch_size=eval_batch_size, **common)
    test = ArrayLoader(arrays.test_x, arrays.test_y, batch_size=eval_batch_size, **common)
    return DataBundle(
        train, val, test, arrays.num_classes, tuple(arrays.x.shape[1:]), stats[0], stats[1]
    )


def channel_stats(x: Tensor) -> Stats:
    """Per-channel mean and std of uint8 images, on the [0, 1] scale."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1).double() / 255.0
    std = flat.std(dim=1).clamp_min(1e-3)
    return tuple(flat.mean(dim=1).tolist()), tuple(std.tolist())
