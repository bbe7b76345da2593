"""lightnas.data.imagefolder: class folders, splits, seeded crops, mid-epoch starts, errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightnas.data import DataOptions, FolderLoader, ImageFolderDataset, build_data
from lightnas.errors import DataError


def build(seed: int = 0, **options):
    return build_data(DataOptions(dataset="imagefolder", **options), seed=seed)


def _all(batches) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*batches, strict=True)
    return torch.cat(xs), torch.cat(ys)


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
    data = build(data_dir=str(image_folder), image_size=8, batch_size=4, val_size=2)
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


def test_imagefolder_without_val_folder_has_no_test_split(image_folder: Path):
    for png in (image_folder / "val").rglob("*.png"):
        png.unlink()
    data = build(data_dir=str(image_folder), image_size=8, batch_size=4, eval_batch_size=3)
    assert data.test is None
    assert data.val.batch_size == 3 and data.train.batch_size == 4


def test_imagefolder_epochs_are_reproducible(image_folder: Path):
    data = build(data_dir=str(image_folder), image_size=8, batch_size=4)
    data.train.set_epoch(2)
    first = _all(data.train)
    data.train.set_epoch(2)
    again = _all(data.train)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(_all(data.train)[0], first[0])  # epoch 3 crops differently


def test_folder_loader_starts_mid_epoch_without_decoding_skipped_batches(
    image_folder: Path, monkeypatch
):
    data = build(data_dir=str(image_folder), image_size=8, batch_size=3, val_size=2)
    loader = data.train  # 8 samples, 2 full batches of 3
    full = list(loader.batches(4))
    assert len(full) == 2
    decoded = []
    getitem = ImageFolderDataset.__getitem__
    monkeypatch.setattr(
        ImageFolderDataset, "__getitem__", lambda self, i: decoded.append(i) or getitem(self, i)
    )
    for k in range(3):
        decoded.clear()
        joined = full[:k] + list(loader.batches(4, start=k))
        assert len(decoded) == 3 * (2 - k)
        for (xa, ya), (xb, yb) in zip(joined, full, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_folder_loader_steps_over_batches_without_decoding_them(image_folder: Path, monkeypatch):
    data = build(data_dir=str(image_folder), image_size=8, batch_size=2, val_size=2)
    loader = data.train  # 8 samples, 4 batches of 2
    full = list(loader.batches(1))
    decoded = []
    getitem = ImageFolderDataset.__getitem__
    monkeypatch.setattr(
        ImageFolderDataset, "__getitem__", lambda self, i: decoded.append(i) or getitem(self, i)
    )
    strided = list(loader.batches(1, start=1, step=2))  # one rank's share of two
    assert len(decoded) == 2 * 2
    for (xa, ya), (xb, yb) in zip(strided, full[1::2], strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_missing_imagefolder_is_a_data_error_naming_the_layout(tmp_path: Path):
    with pytest.raises(DataError, match=rf"{tmp_path.resolve()}/train/<class>/\*\.jpg"):
        build(data_dir=str(tmp_path))


def test_a_test_class_unknown_to_train_is_a_data_error(image_folder: Path):
    (image_folder / "val" / "bird").mkdir()
    with pytest.raises(DataError, match="bird has no counterpart"):
        build(data_dir=str(image_folder))
