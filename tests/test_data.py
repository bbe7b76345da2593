"""Datasets by name, the validation split, epoch-seeded loaders and batched augmentation."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightnas.data import (
    DATASETS,
    ArrayLoader,
    FolderLoader,
    augment_batch,
    build_data,
    split_indices,
)


def _all(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


# --------------------------------------------------------------------------- mock and digits


def test_mock_shapes_classes_and_split_sizes():
    data = build_data("mock", num_samples=100, num_classes=4, image_size=16, batch_size=8)
    assert data.input_shape == (3, 16, 16)
    assert data.num_classes == 4
    assert data.train.num_samples == 90 and data.val.num_samples == 10
    assert data.test.num_samples == 25
    assert len(data.train) == 90 // 8  # drop_last on train
    assert len(data.val) == 2 and len(data.test) == 4  # eval keeps the partial batch
    x, y = next(iter(data.train))
    assert x.shape == (8, 3, 16, 16) and x.dtype == torch.float32
    assert y.dtype == torch.long and y.min() >= 0 and y.max() < 4


def test_mock_is_learnable_from_channel_means():
    data = build_data("mock", num_samples=400, num_classes=4, image_size=8, augment=False)
    x, y = _all(data.train)
    feats = x.mean(dim=(2, 3))
    centroids = torch.stack([feats[y == c].mean(0) for c in range(4)])
    tx, ty = _all(data.test)
    pred = torch.cdist(tx.mean(dim=(2, 3)), centroids).argmin(1)
    assert (pred == ty).float().mean() > 0.5  # chance is 0.25


def test_digits_shapes_and_normalisation():
    data = build_data("digits", image_size=16, batch_size=64, augment=False, val_size=0.1)
    assert data.num_classes == 10 and data.input_shape == (3, 16, 16)
    # 1797 images: 20 % held out as test first, then 10 % of the rest as validation.
    assert data.test.num_samples == 359
    assert data.val.num_samples == 144 and data.train.num_samples == 1438 - 144
    x, y = _all(data.train)
    assert x.shape[1:] == (3, 16, 16)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])  # grey replicated
    assert set(y.tolist()) == set(range(10))
    # Statistics come from the training split, so it is standardised per channel.
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-3
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-2


def test_digits_test_split_does_not_depend_on_seed():
    a = build_data("digits", image_size=8, seed=0)
    b = build_data("digits", image_size=8, seed=1)
    assert torch.equal(a.test.x, b.test.x)
    assert not torch.equal(a.val.x, b.val.x)


def test_num_classes_mismatch_is_rejected():
    with pytest.raises(ValueError, match="data.num_classes=100 but digits has 10"):
        build_data("digits", num_classes=100)


# --------------------------------------------------------------------------- validation split


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


def test_val_split_of_a_bundle_is_disjoint_from_train():
    data = build_data("mock", num_samples=64, image_size=8, augment=False, val_size=16)
    train_x, val_x = data.train.x.flatten(1), data.val.x.flatten(1)
    assert len(val_x) == 16
    # Random uint8 images never coincide, so equal rows would mean a shared sample.
    assert not (train_x[:, None] == val_x[None]).all(-1).any()


@pytest.mark.parametrize("val_size", [0.0, 1.0, 1.5, -0.1, 0, 100, 500, True, "0.1"])
def test_bad_val_size_is_rejected(val_size):
    with pytest.raises(ValueError, match="data.val_size"):
        split_indices(100, val_size, seed=0)


def test_bad_dataset_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="imagenet") as err:
        build_data("imagenet")
    assert all(name in str(err.value) for name in DATASETS)


def test_bad_batch_size_is_rejected():
    with pytest.raises(ValueError, match="data.batch_size"):
        build_data("mock", batch_size=0)


# ------------------------------------------------------------------------ epochs and augmentation


def _loader(augment: bool = True, shuffle: bool = True, seed: int = 0) -> ArrayLoader:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8, generator=gen)
    stats = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    return ArrayLoader(
        x,
        torch.arange(40),
        batch_size=8,
        stats=stats,
        shuffle=shuffle,
        augment=augment,
        drop_last=True,
        seed=seed,
    )


def test_same_epoch_gives_identical_batches():
    a, b = _loader(), _loader()
    a.set_epoch(3)
    b.set_epoch(3)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_resumed_loader_matches_uninterrupted_one():
    uninterrupted = _loader()
    epochs = [_all(uninterrupted) for _ in range(3)]  # each pass advances the epoch
    resumed = _loader()
    resumed.set_epoch(2)
    x, y = _all(resumed)
    assert torch.equal(x, epochs[2][0]) and torch.equal(y, epochs[2][1])
    assert not torch.equal(epochs[1][1], epochs[2][1])


def test_different_epochs_and_seeds_reorder():
    loader = _loader(augment=False)
    loader.set_epoch(0)
    _, y0 = _all(loader)
    loader.set_epoch(1)
    _, y1 = _all(loader)
    assert not torch.equal(y0, y1)
    assert sorted(y0.tolist()) == sorted(y1.tolist()) == list(range(40))
    other = _loader(augment=False, seed=1)
    assert not torch.equal(_all(other)[1], y0)


def test_unshuffled_loader_keeps_order_and_all_samples():
    loader = _loader(augment=False, shuffle=False)
    loader.drop_last = False
    _, y = _all(loader)
    assert y.tolist() == list(range(40))


def test_normalisation_uses_the_given_stats():
    loader = _loader(augment=False, shuffle=False)
    x, _ = next(iter(loader))
    expected = (loader.x[:8].float() / 255 - 0.5) / 0.25
    assert torch.allclose(x, expected)


def test_augmentation_preserves_shape_and_changes_images():
    x = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    out = augment_batch(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    changed = (out != x).flatten(1).any(1)
    assert changed.float().mean() > 0.5


def test_augmentation_crop_is_a_shifted_window_of_the_zero_padded_image():
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4).repeat(200, 1, 1, 1)
    out = augment_batch(x, torch.Generator().manual_seed(1), pad=1)
    padded = torch.nn.functional.pad(x[:1], (1, 1, 1, 1))[0, 0]
    windows = set()
    for i in range(3):
        for j in range(3):
            window = padded[i : i + 4, j : j + 4]
            windows |= {window.numpy().tobytes(), window.flip(1).numpy().tobytes()}
    seen = {o[0].numpy().tobytes() for o in out}
    assert seen <= windows
    assert len(seen) == 18  # every offset, flipped or not, occurs among 200 draws


def test_flip_mirrors_columns_exactly():
    x = torch.tensor([[1, 2, 3], [4, 5, 6]]).view(1, 1, 2, 3).repeat(100, 2, 1, 1)
    out = augment_batch(x, torch.Generator().manual_seed(0), pad=0)
    flipped = torch.tensor([[3, 2, 1], [6, 5, 4]])
    is_flipped = (out[:, 0] == flipped).all(dim=(1, 2))
    is_same = (out[:, 0] == x[0, 0]).all(dim=(1, 2))
    assert (is_flipped ^ is_same).all()  # each image is exactly one of the two
    assert 20 < is_flipped.sum() < 80
    assert torch.equal(out[:, 0], out[:, 1])  # channels flip together


def test_train_loader_augments_and_eval_loader_does_not():
    data = build_data("mock", num_samples=64, image_size=16, batch_size=64, val_size=0.5)
    aug_x, _ = _all(data.train)
    plain = ArrayLoader(
        data.train.x, data.train.y, batch_size=64, stats=(data.mean, data.std), shuffle=True
    )
    plain_x, _ = _all(plain)
    assert not torch.equal(aug_x, plain_x)
    val_x, _ = _all(data.val)
    expected = (data.val.x.float() / 255 - data.val.mean) / data.val.std
    assert torch.allclose(val_x, expected)


# --------------------------------------------------------------------------- cifar


def _write_pickle(path: Path, labels_key: bytes, n: int, num_classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"fake",
        labels_key: rng.integers(0, num_classes, n).tolist(),
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"{i}.png".encode() for i in range(n)],
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f)


@pytest.fixture
def fake_cifar10(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        _write_pickle(folder / f"data_batch_{i}", b"labels", 8, 10, seed=i)
    _write_pickle(folder / "test_batch", b"labels", 6, 10, seed=0)
    return tmp_path


def test_cifar10_loads_the_standard_pickles(fake_cifar10: Path):
    data = build_data("cifar10", data_dir=str(fake_cifar10), val_size=10, batch_size=4)
    assert data.num_classes == 10 and data.input_shape == (3, 32, 32)
    assert data.train.num_samples == 30 and data.val.num_samples == 10
    assert data.test.num_samples == 6
    with open(fake_cifar10 / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert torch.equal(data.test.x, torch.from_numpy(raw[b"data"]).view(6, 3, 32, 32))
    assert data.test.y.tolist() == raw[b"labels"]
    x, _ = next(iter(data.train))
    assert x.shape == (4, 3, 32, 32)


def test_cifar10_accepts_the_extracted_folder_itself(fake_cifar10: Path):
    data = build_data("cifar10", data_dir=str(fake_cifar10 / "cifar-10-batches-py"), image_size=16)
    assert data.input_shape == (3, 16, 16)
    assert next(iter(data.test))[0].shape[1:] == (3, 16, 16)


def test_cifar100_uses_fine_labels(tmp_path: Path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _write_pickle(folder / "train", b"fine_labels", 20, 100, seed=1)
    _write_pickle(folder / "test", b"fine_labels", 5, 100, seed=2)
    data = build_data("cifar100", data_dir=str(tmp_path), val_size=0.25)
    assert data.num_classes == 100
    assert data.train.num_samples == 15 and data.val.num_samples == 5
    with open(folder / "test", "rb") as f:
        assert data.test.y.tolist() == pickle.load(f, encoding="bytes")[b"fine_labels"]


@pytest.mark.parametrize(
    "name, layout", [("cifar10", "cifar-10-batches-py/"), ("cifar100", "cifar-100-python/")]
)
def test_missing_cifar_names_the_expected_layout(tmp_path: Path, name: str, layout: str):
    with pytest.raises(FileNotFoundError) as err:
        build_data(name, data_dir=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message
    assert f"{tmp_path.resolve()}/{layout}" in message
    assert "--data.data_dir" in message and "--data.download" in message


# --------------------------------------------------------------------------- imagefolder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", 5), ("val", 2)):
        for c, name in enumerate(("cat", "dog")):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 100, (12, 14, 3)) + 150 * c
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return tmp_path


def test_imagefolder_loads_classes_and_splits(image_folder: Path):
    data = build_data(
        "imagefolder", data_dir=str(image_folder), image_size=8, batch_size=4, val_size=2
    )
    assert isinstance(data.train, FolderLoader)
    assert data.num_classes == 2 and data.input_shape == (3, 8, 8)
    assert data.train.num_samples == 8 and data.val.num_samples == 2
    assert data.test.num_samples == 4
    x, y = _all(data.train)
    assert x.shape == (8, 3, 8, 8) and x.dtype == torch.float32
    tx, ty = _all(data.test)
    assert tx.shape == (4, 3, 8, 8) and ty.tolist() == [0, 0, 1, 1]  # classes sorted: cat, dog
    # The "dog" images are brighter: labels follow the folders.
    assert tx[ty == 1].mean() > tx[ty == 0].mean()


def test_imagefolder_epochs_are_reproducible(image_folder: Path):
    data = build_data("imagefolder", data_dir=str(image_folder), image_size=8, batch_size=4)
    data.train.set_epoch(2)
    first = _all(data.train)
    data.train.set_epoch(2)
    again = _all(data.train)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(_all(data.train)[0], first[0])  # epoch 3 crops differently


def test_missing_imagefolder_names_the_layout(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"train/<class>/\*\.jpg"):
        build_data("imagefolder", data_dir=str(tmp_path))
