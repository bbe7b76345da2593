"""Datasets by name (mock, digits, cifar10, cifar100, imagefolder) and their fast loaders.

Every loader yields normalised float batches `(x, y)` already on the target device, and its
shuffling and augmentation depend only on `(seed, epoch)`: `set_epoch(e)` before iterating makes
a run resumed at an epoch boundary see exactly the batches of an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import pickle
import tarfile
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

DATASETS = ("mock", "digits", "cifar10", "cifar100", "imagefolder")

Stats = tuple[tuple[float, ...], tuple[float, ...]]  # (mean, std) per channel, on the [0, 1] scale
Batch = tuple[Tensor, Tensor]

CIFAR10_STATS: Stats = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS: Stats = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
IMAGENET_STATS: Stats = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
DIGITS_TEST_FRACTION = 0.2
CIFAR_URL_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"


@dataclass(frozen=True)
class _CifarSpec:
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: bytes
    num_classes: int
    stats: Stats
    url: str


_CIFAR = {
    "cifar10": _CifarSpec(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        b"labels",
        10,
        CIFAR10_STATS,
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ),
    "cifar100": _CifarSpec(
        "cifar-100-python",
        ("train",),
        "test",
        b"fine_labels",
        100,
        CIFAR100_STATS,
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    ),
}


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


# --------------------------------------------------------------------------- seeds and splits


def _mix_seed(*parts: int) -> int:
    """One 63-bit seed from several integers, so (seed, epoch) pairs never collide."""
    h = 0
    for p in parts:
        h = (h * 1_000_003 + int(p) + 0x9E3779B9) % (1 << 63)
    return h


def split_indices(
    n: int, val_size: float | int, seed: int, num_samples: int | None = None
) -> tuple[Tensor, Tensor]:
    """Seeded (train, val) index split of `n` samples, optionally from a subset of `num_samples`."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if num_samples is not None:
        order = order[:num_samples]
    k = _val_count(val_size, len(order))
    return order[k:].sort().values, order[:k].sort().values


def _val_count(val_size: float | int, n: int) -> int:
    valid = f"use a fraction in (0, 1) or a sample count in [1, {n - 1}]"
    if isinstance(val_size, bool) or not isinstance(val_size, (int, float)):
        raise ValueError(f"data.val_size={val_size!r} is invalid: {valid}")
    if isinstance(val_size, float):
        if not 0.0 < val_size < 1.0:
            raise ValueError(f"data.val_size={val_size!r} is out of range: {valid}")
        return min(max(round(val_size * n), 1), n - 1)
    if not 1 <= val_size <= n - 1:
        raise ValueError(f"data.val_size={val_size!r} is out of range: {valid}")
    return val_size


# --------------------------------------------------------------------------- augmentation


def augment_batch(x: Tensor, generator: torch.Generator, pad: int) -> Tensor:
    """Per-sample random crop of the zero-padded images plus random horizontal flip, batched.

    Works on any dtype and device; `generator` must live on `x.device`.
    """
    n, c, h, w = x.shape
    dev = x.device
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
    flip = torch.rand((n, 1), generator=generator, device=dev) < 0.5
    if pad > 0:
        x = F.pad(x, (pad, pad, pad, pad))
    rows = dy + torch.arange(h, device=dev)
    cols = torch.arange(w, device=dev)
    cols = torch.where(flip, cols.flip(0), cols) + dx  # a flipped crop reads its window backwards
    x = x.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, x.shape[3]))
    return x.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


# --------------------------------------------------------------------------- loaders


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
        return self._batches(epoch)

    def __len__(self) -> int:
        if self._drops_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    @property
    def _drops_last(self) -> bool:
        # The last partial batch is dropped unless it is the only one (tiny datasets).
        return self.drop_last and self.num_samples >= self.batch_size

    def _batches(self, epoch: int) -> Iterator[Batch]:
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

    def _batches(self, epoch: int) -> Iterator[Batch]:
        store = self.x.device
        order = self._order(epoch, store)
        gen = torch.Generator(device=store).manual_seed(_mix_seed(self.seed, epoch, 1))
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.x[idx]
            if self.augment:
                x = augment_batch(x, gen, self.pad)
            yield self._finish(x, self.y[idx])


class FolderLoader(_EpochLoader):
    """Batches decoded from image files by a `DataLoader` (workers, pinned memory)."""

    def __init__(
        self,
        dataset: ImageFolderDataset,
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

    def _batches(self, epoch: int) -> Iterator[Batch]:
        # Workers are forked per iteration (not persistent), so they see this epoch's dataset state.
        self.dataset.epoch = epoch
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=self._order(epoch, torch.device("cpu")).tolist(),
            drop_last=self._drops_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )
        for x, y in loader:
            yield self._finish(x, y)


# --------------------------------------------------------------------------- image folders


class ImageFolderDataset(Dataset):
    """(path, label) samples decoded with PIL to uint8 (3, size, size) tensors.

    Training crops are seeded by (seed, epoch, index), so they do not depend on worker count.
    """

    def __init__(
        self, samples: Sequence[tuple[Path, int]], size: int, train: bool, seed: int = 0
    ) -> None:
        self.samples = list(samples)
        self.size = size
        self.train = train
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        with Image.open(path) as img:
            img = img.convert("RGB")
        if self.train:
            gen = torch.Generator().manual_seed(_mix_seed(self.seed, self.epoch, index))
            img = random_resized_crop(img, self.size, gen)
            if torch.rand((), generator=gen).item() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        else:
            img = center_crop(resize_shorter(img, round(self.size * 8 / 7)), self.size)
        return pil_to_tensor(img), label


def random_resized_crop(
    img: Image.Image,
    size: int,
    gen: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Image.Image:
    """Inception-style crop of random area and aspect ratio, resized to size x size."""
    width, height = img.size
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        u = torch.rand(4, generator=gen).tolist()
        area = width * height * (scale[0] + u[0] * (scale[1] - scale[0]))
        aspect = math.exp(log_lo + u[1] * (log_hi - log_lo))
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(u[2] * (width - w + 1)), int(u[3] * (height - h + 1))
            return _resize_box(img, size, (left, top, left + w, top + h))
    # Fallback after 10 misses: the whole image at the nearest allowed aspect ratio.
    w, h = width, height
    if width / height < ratio[0]:
        h = round(width / ratio[0])
    elif width / height > ratio[1]:
        w = round(height * ratio[1])
    left, top = (width - w) // 2, (height - h) // 2
    return _resize_box(img, size, (left, top, left + w, top + h))


def _resize_box(img: Image.Image, size: int, box: tuple[int, int, int, int]) -> Image.Image:
    return img.resize((size, size), Image.Resampling.BILINEAR, box=box)


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """Resize so that the shorter side is `size`, keeping the aspect ratio."""
    width, height = img.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    return img.resize(new, Image.Resampling.BILINEAR)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    width, height = img.size
    left, top = (width - size) // 2, (height - size) // 2
    return img.crop((left, top, left + size, top + size))


def pil_to_tensor(img: Image.Image) -> Tensor:
    """RGB PIL image → uint8 (3, H, W) tensor."""
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def _list_images(split_dir: Path, class_to_idx: dict[str, int]) -> list[tuple[Path, int]]:
    samples = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        if class_dir.name not in class_to_idx:
            raise ValueError(f"class folder {class_dir} has no counterpart in the train/ folder")
        label = class_to_idx[class_dir.name]
        files = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS)
        samples += [(p, label) for p in files]
    return samples


# --------------------------------------------------------------------------- in-memory datasets


@dataclass
class _Arrays:
    """A dataset held in memory: training pool (train + val) and test split, uint8 NCHW."""

    x: Tensor
    y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    stats: Stats | None = None  # None: computed from the training split


def _resize_uint8(x: Tensor, size: int, chunk: int = 4096) -> Tensor:
    """Bilinear resize of uint8 NCHW images, in chunks to bound the float copy."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = [
        F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=size < c.shape[-1])
        .round_()
        .clamp_(0, 255)
        .to(torch.uint8)
        for c in x.split(chunk)
    ]
    return torch.cat(out)


def _channel_stats(x: Tensor) -> Stats:
    """Per-channel mean and std of uint8 images, on the [0, 1] scale."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1).double() / 255.0
    std = flat.std(dim=1).clamp_min(1e-3)
    return tuple(flat.mean(dim=1).tolist()), tuple(std.tolist())


def _mock(size: int, num_classes: int, num_samples: int, seed: int) -> _Arrays:
    """Seeded noise images whose per-channel mean depends on the class: learnable, barely."""
    gen = torch.Generator().manual_seed(_mix_seed(seed, 7))
    prototypes = torch.rand(num_classes, 3, 1, 1, generator=gen)

    def sample(n: int) -> tuple[Tensor, Tensor]:
        y = torch.randint(0, num_classes, (n,), generator=gen)
        noise = torch.randn(n, 3, size, size, generator=gen)
        x = 0.5 + 0.4 * (prototypes[y] - 0.5) + 0.2 * noise
        return (x * 255).round().clamp(0, 255).to(torch.uint8), y

    x, y = sample(num_samples)
    test_x, test_y = sample(max(1, num_samples // 4))
    return _Arrays(x, y, test_x, test_y, num_classes)


def _digits(size: int) -> _Arrays:
    """scikit-learn's 8x8 digits, upscaled to size x size, grey replicated to 3 channels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
    x = _resize_uint8(x, size).expand(-1, 3, -1, -1).contiguous()
    y = torch.from_numpy(digits.target).long()
    # The test split uses a fixed seed so test accuracies compare across runs with other seeds.
    rest, test = split_indices(len(x), DIGITS_TEST_FRACTION, seed=0)
    return _Arrays(x[rest], y[rest], x[test], y[test], 10)


def _cifar_layout(name: str, root: Path) -> str:
    spec = _CIFAR[name]
    if len(spec.train_files) > 1:
        files = f"{{data_batch_1..{len(spec.train_files)},{spec.test_file}}}"
    else:
        files = f"{{{','.join(spec.train_files)},{spec.test_file}}}"
    return f"{root}/{spec.folder}/{files}"


def _find_cifar(name: str, data_dir: Path) -> Path | None:
    """The extracted folder, whether `data_dir` is its parent or the folder itself."""
    spec = _CIFAR[name]
    for folder in (data_dir / spec.folder, data_dir):
        if all((folder / f).is_file() for f in (*spec.train_files, spec.test_file)):
            return folder
    return None


def _download_cifar(name: str, data_dir: Path) -> None:
    url = _CIFAR[name].url
    data_dir.mkdir(parents=True, exist_ok=True)
    archive = data_dir / url.rsplit("/", 1)[1]
    if not archive.is_file():
        partial = archive.with_name(archive.name + ".part")
        print(f"downloading {url} to {archive}")
        urllib.request.urlretrieve(url, partial)
        os.replace(partial, archive)
    with tarfile.open(archive) as tar:
        tar.extractall(data_dir, filter="data")


def _read_cifar_file(path: Path, label_key: bytes) -> tuple[Tensor, Tensor]:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")  # the official format is a pickled dict
    x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return torch.from_numpy(x.copy()), torch.tensor(batch[label_key], dtype=torch.long)


def _cifar(name: str, data_dir: str | None, size: int, download: bool) -> _Arrays:
    spec = _CIFAR[name]
    root = Path(data_dir or "data").expanduser().resolve()
    folder = _find_cifar(name, root)
    if folder is None and download:
        _download_cifar(name, root)
        folder = _find_cifar(name, root)
    if folder is None:
        raise FileNotFoundError(
            f"{name} not found: expected {_cifar_layout(name, root)} (python pickle version from "
            f"{CIFAR_URL_PAGE}); pass --data.data_dir or --data.download true"
        )
    parts = [_read_cifar_file(folder / f, spec.label_key) for f in spec.train_files]
    x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    test_x, test_y = _read_cifar_file(folder / spec.test_file, spec.label_key)
    x, test_x = _resize_uint8(x, size), _resize_uint8(test_x, size)
    return _Arrays(x, y, test_x, test_y, spec.num_classes, spec.stats)


# --------------------------------------------------------------------------- build_data


def _check_int(key: str, value: int | None, low: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise ValueError(f"data.{key}={value!r} is invalid: use an integer >= {low}")


def _check_classes(dataset: str, requested: int | None, actual: int) -> None:
    if requested is not None and requested != actual:
        raise ValueError(f"data.num_classes={requested} but {dataset} has {actual} classes")


def build_data(
    dataset: str,
    *,
    data_dir: str | None = None,
    batch_size: int = 64,
    val_size: float | int = 0.1,
    image_size: int | None = None,
    num_classes: int | None = None,
    num_samples: int | None = None,
    augment: bool = True,
    download: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    on_device: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    eval_batch_size: int | None = None,
) -> DataBundle:
    """Train / validation / test loaders of a dataset by name (see DATASETS).

    `num_samples` is the size of mock's training set; for the other datasets it caps the training
    pool (a seeded subset) before the validation split is carved from it.
    """
    if dataset not in DATASETS:
        raise ValueError(f"data.dataset={dataset!r} is unknown; valid: {list(DATASETS)}")
    for key, value, low in (
        ("batch_size", batch_size, 1),
        ("eval_batch_size", eval_batch_size, 1),
        ("image_size", image_size, 1),
        ("num_samples", num_samples, 2),
        ("num_workers", num_workers, 0),
    ):
        _check_int(key, value, low)
    loader_args = dict(
        batch_size=batch_size,
        eval_batch_size=eval_batch_size or batch_size,
        val_size=val_size,
        num_samples=num_samples,
        augment=augment,
        seed=seed,
        device=device,
        pin_memory=pin_memory,
    )
    if dataset == "imagefolder":
        folder = _folder_bundle(data_dir, image_size or 224, num_workers, **loader_args)
        _check_classes(dataset, num_classes, folder.num_classes)
        return folder
    if dataset == "mock":
        _check_int("num_classes", num_classes, 2)
        arrays = _mock(image_size or 32, num_classes or 10, num_samples or 512, seed)
        loader_args["num_samples"] = None  # mock generates exactly num_samples
    elif dataset == "digits":
        arrays = _digits(image_size or 32)
    else:
        arrays = _cifar(dataset, data_dir, image_size or 32, download)
    _check_classes(dataset, num_classes, arrays.num_classes)
    return _array_bundle(arrays, on_device=on_device, **loader_args)


def _array_bundle(
    arrays: _Arrays,
    *,
    batch_size: int,
    eval_batch_size: int,
    val_size: float | int,
    num_samples: int | None,
    augment: bool,
    seed: int,
    device: str | torch.device,
    on_device: bool,
    pin_memory: bool,
) -> DataBundle:
    train_idx, val_idx = split_indices(len(arrays.x), val_size, seed, num_samples)
    train_x = arrays.x[train_idx]
    stats = arrays.stats or _channel_stats(train_x)
    common = dict(stats=stats, seed=seed, device=device, on_device=on_device, pin_memory=pin_memory)
    train = ArrayLoader(
        train_x,
        arrays.y[train_idx],
        batch_size=batch_size,
        shuffle=True,
        augment=augment,
        drop_last=True,
        **common,
    )
    val = ArrayLoader(arrays.x[val_idx], arrays.y[val_idx], batch_size=eval_batch_size, **common)
    test = ArrayLoader(arrays.test_x, arrays.test_y, batch_size=eval_batch_size, **common)
    return DataBundle(
        train, val, test, arrays.num_classes, tuple(arrays.x.shape[1:]), stats[0], stats[1]
    )


def _folder_bundle(
    data_dir: str | None,
    image_size: int,
    num_workers: int,
    *,
    batch_size: int,
    eval_batch_size: int,
    val_size: float | int,
    num_samples: int | None,
    augment: bool,
    seed: int,
    device: str | torch.device,
    pin_memory: bool,
) -> DataBundle:
    root = Path(data_dir or "data").expanduser().resolve()
    train_dir, val_dir = root / "train", root / "val"
    has_train = train_dir.is_dir()
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir()) if has_train else []
    class_to_idx = {c: i for i, c in enumerate(classes)}
    samples = _list_images(train_dir, class_to_idx) if classes else []
    if not samples:
        raise FileNotFoundError(
            f"imagefolder not found: expected {root}/train/<class>/*.jpg|png (and optionally "
            f"{root}/val/<class>/... as the test set); pass --data.data_dir"
        )
    train_idx, val_idx = split_indices(len(samples), val_size, seed, num_samples)

    def loader(split: list[tuple[Path, int]], train: bool) -> FolderLoader:
        return FolderLoader(
            ImageFolderDataset(split, image_size, train=train and augment, seed=seed),
            batch_size=batch_size if train else eval_batch_size,
            stats=IMAGENET_STATS,
            shuffle=train,
            drop_last=train,
            seed=seed,
            device=device,
            num_workers=num_workers,
            pin_memory=pin_memory,
        )

    test_samples = _list_images(val_dir, class_to_idx) if val_dir.is_dir() else []
    return DataBundle(
        loader([samples[i] for i in train_idx.tolist()], train=True),
        loader([samples[i] for i in val_idx.tolist()], train=False),
        loader(test_samples, train=False) if test_samples else None,
        len(classes),
        (3, image_size, image_size),
        *IMAGENET_STATS,
    )
