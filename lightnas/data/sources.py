"""In-memory datasets: mock (seeded noise), digits (scikit-learn) and CIFAR-10/100 (pickles)."""

from __future__ import annotations

import hashlib
import os
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lightnas.data.bundle import DATASETS, Arrays, BuildContext
from lightnas.data.loaders import Stats
from lightnas.data.options import DataOptions, check_int
from lightnas.data.splits import _mix_seed, split_indices
from lightnas.data.transforms import resize_uint8
from lightnas.errors import DataError

CIFAR10_STATS: Stats = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS: Stats = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))

DIGITS_TEST_FRACTION = 0.2
CIFAR_URL_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"

# --------------------------------------------------------------------------- mock


@DATASETS.register("mock")
def mock(options: DataOptions, ctx: BuildContext) -> Arrays:
    """Seeded noise images whose per-channel mean depends on the class: learnable, barely.

    `num_samples` (default 512) training images plus a quarter as many test images.
    """
    check_int("num_classes", options.num_classes, 2)
    size, num_classes = options.image_size or 32, options.num_classes or 10
    gen = torch.Generator().manual_seed(_mix_seed(ctx.seed, 7))
    prototypes = torch.rand(num_classes, 3, 1, 1, generator=gen)

    def sample(n: int) -> tuple[Tensor, Tensor]:
        y = torch.randint(0, num_classes, (n,), generator=gen)
        noise = torch.randn(n, 3, size, size, generator=gen)
        x = 0.5 + 0.4 * (prototypes[y] - 0.5) + 0.2 * noise
        return (x * 255).round().clamp(0, 255).to(torch.uint8), y

    num_samples = options.num_samples or 512
    x, y = sample(num_samples)
    test_x, test_y = sample(max(1, num_samples // 4))
    return Arrays(x, y, test_x, test_y, num_classes)


# --------------------------------------------------------------------------- digits


@DATASETS.register("digits")
def digits(options: DataOptions, ctx: BuildContext) -> Arrays:
    """scikit-learn's 8x8 digits, upscaled to size x size, grey replicated to 3 channels."""
    # Imported here, not at the top: scikit-learn is heavy and only this dataset needs it.
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.from_numpy(data.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
    x = resize_uint8(x, options.image_size or 32).expand(-1, 3, -1, -1).contiguous()
    y = torch.from_numpy(data.target).long()
    # The test split uses a fixed seed so test accuracies compare across runs with other seeds.
    rest, test = split_indices(len(x), DIGITS_TEST_FRACTION, seed=0)
    return Arrays(x[rest], y[rest], x[test], y[test], 10)


# --------------------------------------------------------------------------- cifar


@dataclass(frozen=True)
class _CifarSpec:
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: bytes
    num_classes: int
    stats: Stats
    url: str
    md5: str  # of the archive at `url`, as published on CIFAR_URL_PAGE


_CIFAR = {
    "cifar10": _CifarSpec(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        b"labels",
        10,
        CIFAR10_STATS,
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
    ),
    "cifar100": _CifarSpec(
        "cifar-100-python",
        ("train",),
        "test",
        b"fine_labels",
        100,
        CIFAR100_STATS,
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
    ),
}


@DATASETS.register("cifar10")
def cifar10(options: DataOptions, ctx: BuildContext) -> Arrays:
    """CIFAR-10, python pickle version, from data_dir (downloaded there with `download`)."""
    return _cifar("cifar10", options)


@DATASETS.register("cifar100")
def cifar100(options: DataOptions, ctx: BuildContext) -> Arrays:
    """CIFAR-100 with its 100 fine labels, python pickle version, as cifar10."""
    return _cifar("cifar100", options)


def _cifar(name: str, options: DataOptions) -> Arrays:
    spec = _CIFAR[name]
    root = Path(options.data_dir or "data").expanduser().resolve()
    folder = _find_cifar(spec, root)
    if folder is None and options.download:
        _download_cifar(spec, root)
        folder = _find_cifar(spec, root)
    if folder is None:
        raise DataError(
            f"{name} not found: expected {_cifar_layout(spec, root)} (python pickle version from "
            f"{CIFAR_URL_PAGE}); pass --data.data_dir or --data.download true"
        )
    parts = [_read_cifar_file(folder / f, spec.label_key) for f in spec.train_files]
    x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    test_x, test_y = _read_cifar_file(folder / spec.test_file, spec.label_key)
    size = options.image_size or 32
    x, test_x = resize_uint8(x, size), resize_uint8(test_x, size)
    return Arrays(x, y, test_x, test_y, spec.num_classes, spec.stats)


def _cifar_layout(spec: _CifarSpec, root: Path) -> str:
    if len(spec.train_files) > 1:
        files = f"{{data_batch_1..{len(spec.train_files)},{spec.test_file}}}"
    else:
        files = f"{{{','.join(spec.train_files)},{spec.test_file}}}"
    return f"{root}/{spec.folder}/{files}"


def _find_cifar(spec: _CifarSpec, data_dir: Path) -> Path | None:
    """The extracted folder, whether `data_dir` is its parent or the folder itself."""
    for folder in (data_dir / spec.folder, data_dir):
        if all((folder / f).is_file() for f in (*spec.train_files, spec.test_file)):
            return folder
    return None


def _download_cifar(spec: _CifarSpec, data_dir: Path) -> None:
    """Fetch the archive (unless already there), check its MD5, then extract it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    archive = data_dir / spec.url.rsplit("/", 1)[1]
    if archive.is_file():
        _check_md5(archive, spec, f"delete {archive} to download it again")
    else:
        partial = archive.with_name(archive.name + ".part")
        print(f"downloading {spec.url} to {archive}")
        try:
            urllib.request.urlretrieve(spec.url, partial)
        except OSError as err:  # URLError and HTTPError are OSErrors
            partial.unlink(missing_ok=True)
            raise DataError(
                f"could not download {spec.url} ({err}); download it by hand into {data_dir}"
            ) from None
        try:
            _check_md5(partial, spec, "the partial download was deleted; try again")
        except DataError:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, archive)
    with tarfile.open(archive) as tar:
        tar.extractall(data_dir, filter="data")


def _check_md5(path: Path, spec: _CifarSpec, advice: str) -> None:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != spec.md5:
        raise DataError(
            f"{path} from {spec.url} is corrupt: MD5 {digest.hexdigest()}, expected {spec.md5}; "
            f"{advice}"
        )


def _read_cifar_file(path: Path, label_key: bytes) -> tuple[Tensor, Tensor]:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # the official format is a pickled dict
        x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = torch.tensor(batch[label_key], dtype=torch.long)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise DataError(
            f"{path} is not a CIFAR batch ({type(err).__name__}: {err}); expected the python "
            f"pickle version from {CIFAR_URL_PAGE}"
        ) from None
    return torch.from_numpy(x.copy()), y
