"""Epoch-seeded loaders: `ArrayLoader` (a split held in memory) and `FolderLoader` (image files).

Both yield normalised float batches `(x, y)` already on the target device. Shuffling and
augmentation depend only on `(seed, epoch)`, and `batches(epoch, start=k)` yields exactly the
batches from index k on that a full pass over the epoch yields: a run resumed at an epoch
boundary, or in the middle of one, sees the batches of an uninterrupted run. `step=n` yields
every n-th of them (k, k + n, ...) without loading the others: one process's share of a
distributed run (lightnas.runtime.distributed).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lightnas.data.splits import _mix_seed
from lightnas.data.transforms import crop_and_flip, draw_crops_and_flips

Stats = tuple[tuple[float, ...], tuple[float, ...]]  # (mean, std) per channel, on the [0, 1] scale
Batch = tuple[Tensor, Tensor]


class _EpochLoader:
    """What both loaders share: epoch bookkeeping, batch count, transfer and normalisation."""

    num_samples: int

    def __init__(
        self,
        *,
        batch_size: int,
        stats: Stats,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        device: str | torch.device,
        pin_memory: bool,
    ) -> None:
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.device = torch.device(device)
        self.pin_memory = pin_memory and self.device.type == "cuda"
        self.mean = torch.tensor(stats[0], device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(stats[1], device=self.device).view(1, -1, 1, 1)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffling and augmentation the next iteration uses."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[Batch]:
        # Re-iterating without set_epoch moves on to the next epoch, so plain loops still reshuffle.
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self.batches(epoch)

    def batches(self, epoch: int, start: int = 0, step: int = 1) -> Iterator[Batch]:
        """The batches of `epoch` with index `start`, `start + step`, ..., exactly as a full pass
        yields them; the loader's own epoch counter (`set_epoch`, iteration) is left alone."""
        if not 0 <= start <= len(self):
            raise ValueError(f"start={start} is not a batch index in [0, {len(self)}]")
        if step < 1:
            raise ValueError(f"step={step} must be >= 1")
        return self._batches(int(epoch), int(start), int(step))

    def __len__(self) -> int:
        if self._drops_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    @property
    def _drops_last(self) -> bool:
        # The last partial batch is dropped unless it is the only one (tiny datasets).
        return self.drop_last and self.num_samples >= self.batch_size

    def _batches(self, epoch: int, start: int, step: int) -> Iterator[Batch]:
        raise NotImplementedError

    def _order(self, epoch: int, device: torch.device) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples, device=device)
        gen = torch.Generator(device=device).manual_seed(_mix_seed(self.seed, epoch, 0))
        return torch.randperm(self.num_samples, generator=gen, device=device)

    def _finish(self, x: Tensor, y: Tensor) -> Batch:
        """Move a raw batch to the device, then normalise: uint8 crosses the bus, not float."""
        if self.pin_memory and x.device.type == "cpu" and not x.is_pinned():
            x, y = x.pin_memory(), y.pin_memory()
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        return (x - self.mean) / self.std, y


class ArrayLoader(_EpochLoader):
    """Batches from a split held whole in memory: images (N, C, H, W) uint8 or float, labels (N,).

    Uint8 images are scaled to [0, 1] before normalisation. With `on_device` the split lives on
    `device` and shuffling and augmentation run there too, with no host round trip.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        *,
        batch_size: int,
        stats: Stats,
        shuffle: bool = False,
        augment: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
        on_device: bool = False,
        pin_memory: bool = False,
        pad: int | None = None,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            stats=stats,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=seed,
            device=device,
            pin_memory=pin_memory and not on_device,
        )
        store = self.device if on_device else torch.device("cpu")
        self.x = x.to(store)
        self.y = y.to(store, torch.long)
        self.num_samples = len(self.x)
        self.augment = augment
        self.pad = x.shape[-1] // 8 if pad is None else pad  # 4 pixels at 32x32, as for CIFAR

    def _batches(self, epoch: int, start: int, step: int) -> Iterator[Batch]:
        store = self.x.device
        order = self._order(epoch, store)
        # One augmentation generator per epoch, drawn batch after batch; a skipped batch still
        # draws its crops and flips, so the batches after it get the same ones as in a full pass.
        gen = torch.Generator(device=store).manual_seed(_mix_seed(self.seed, epoch, 1))
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            params = draw_crops_and_flips(len(idx), self.pad, gen, store) if self.augment else None
            if b < start or (b - start) % step:
                continue
            x = self.x[idx]
            if params is not None:
                x = crop_and_flip(x, params, self.pad)
            yield self._finish(x, self.y[idx])


class FolderLoader(_EpochLoader):
    """Batches decoded from image files by a `DataLoader` (workers, pinned memory).

    `dataset` is map-style with an `epoch` attribute that the loader sets before each epoch (as
    `ImageFolderDataset`), so that per-sample augmentation can be seeded by (seed, epoch, index).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        stats: Stats,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            stats=stats,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=seed,
            device=device,
            pin_memory=pin_memory,
        )
        self.dataset = dataset
        self.num_samples = len(dataset)
        self.num_workers = num_workers

    def _batches(self, epoch: int, start: int, step: int) -> Iterator[Batch]:
        # Workers are forked per iteration (not persistent), so they see this epoch's dataset state.
        self.dataset.epoch = epoch
        order = self._order(epoch, torch.device("cpu"))
        size = self.batch_size
        # the chunks of the order a full pass batches (len() drops a last partial one when it
        # should); skipped batches are never decoded
        chosen = [order[b * size : (b + 1) * size].tolist() for b in range(start, len(self), step)]
        loader = DataLoader(
            self.dataset,
            batch_sampler=chosen,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )
        for x, y in loader:
            yield self._finish(x, y)
