"""lightnas.data.sources: mock, digits and CIFAR (pickles, layout errors, checked download)."""

import dataclasses
import hashlib
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lightnas.data import DataOptions, build_data
from lightnas.data import sources as sources_module
from lightnas.errors import ConfigError, DataError


def build(dataset: str, seed: int = 0, **options):
    return build_data(DataOptions(dataset=dataset, **options), seed=seed)


def _all(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


# --------------------------------------------------------------------------- mock and digits


def test_mock_shapes_classes_and_split_sizes():
    data = build("mock", num_samples=100, num_classes=4, image_size=16, batch_size=8)
    assert data.input_shape == (3, 16, 16)
    assert data.num_classes == 4
    assert data.train.num_samples == 90 and data.val.num_samples == 10
    assert data.test.num_samples == 25
    assert len(data.train) == 90 // 8  # drop_last on train
    assert len(data.val) == 2 and len(data.test) == 4  # eval keeps the partial batch
    x, y = next(iter(data.train))
    assert x.shape == (8, 3, 16, 16) and x.dtype == torch.float32
    assert y.dtype == torch.long and y.min() >= 0 and y.max() < 4


def test_mock_defaults_and_seed():
    data = build("mock", batch_size=64)
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert data.train.num_samples + data.val.num_samples == 512 and data.test.num_samples == 128
    other = build("mock", seed=1, batch_size=64)
    assert not torch.equal(data.test.x, other.test.x)


def test_mock_is_learnable_from_channel_means():
    data = build("mock", num_samples=400, num_classes=4, image_size=8, augment=False, batch_size=64)
    x, y = _all(data.train)
    feats = x.mean(dim=(2, 3))
    centroids = torch.stack([feats[y == c].mean(0) for c in range(4)])
    tx, ty = _all(data.test)
    pred = torch.cdist(tx.mean(dim=(2, 3)), centroids).argmin(1)
    assert (pred == ty).float().mean() > 0.5  # chance is 0.25


def test_mock_needs_two_classes():
    with pytest.raises(ConfigError, match=r"data\.num_classes=1 is invalid"):
        build("mock", num_classes=1)


def test_digits_shapes_and_normalisation():
    data = build("digits", image_size=16, batch_size=64, augment=False, val_size=0.1)
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
    a = build("digits", image_size=8, seed=0)
    b = build("digits", image_size=8, seed=1)
    assert torch.equal(a.test.x, b.test.x)
    assert not torch.equal(a.val.x, b.val.x)


def test_num_classes_mismatch_is_rejected():
    with pytest.raises(ConfigError, match="data.num_classes=100 but digits has 10 classes"):
        build("digits", num_classes=100)


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


def _fake_cifar10(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        _write_pickle(folder / f"data_batch_{i}", b"labels", 8, 10, seed=i)
    _write_pickle(folder / "test_batch", b"labels", 6, 10, seed=0)
    return root


@pytest.fixture
def fake_cifar10(tmp_path: Path) -> Path:
    return _fake_cifar10(tmp_path)


def test_cifar10_loads_the_standard_pickles(fake_cifar10: Path):
    data = build("cifar10", data_dir=str(fake_cifar10), val_size=10, batch_size=4)
    assert data.num_classes == 10 and data.input_shape == (3, 32, 32)
    assert data.train.num_samples == 30 and data.val.num_samples == 10
    assert data.test.num_samples == 6
    with open(fake_cifar10 / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert torch.equal(data.test.x, torch.from_numpy(raw[b"data"]).view(6, 3, 32, 32))
    assert data.test.y.tolist() == raw[b"labels"]
    assert data.mean == sources_module.CIFAR10_STATS[0]  # the published statistics
    x, _ = next(iter(data.train))
    assert x.shape == (4, 3, 32, 32)


def test_cifar10_accepts_the_extracted_folder_itself(fake_cifar10: Path):
    data = build("cifar10", data_dir=str(fake_cifar10 / "cifar-10-batches-py"), image_size=16)
    assert data.input_shape == (3, 16, 16)
    assert next(iter(data.test))[0].shape[1:] == (3, 16, 16)


def test_cifar100_uses_fine_labels(tmp_path: Path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _write_pickle(folder / "train", b"fine_labels", 20, 100, seed=1)
    _write_pickle(folder / "test", b"fine_labels", 5, 100, seed=2)
    data = build("cifar100", data_dir=str(tmp_path), val_size=0.25)
    assert data.num_classes == 100
    assert data.train.num_samples == 15 and data.val.num_samples == 5
    with open(folder / "test", "rb") as f:
        assert data.test.y.tolist() == pickle.load(f, encoding="bytes")[b"fine_labels"]


@pytest.mark.parametrize(
    "name, layout",
    [
        ("cifar10", "cifar-10-batches-py/{data_batch_1..5,test_batch}"),
        ("cifar100", "cifar-100-python/{train,test}"),
    ],
)
def test_missing_cifar_is_a_data_error_naming_the_expected_layout(
    tmp_path: Path, name: str, layout: str
):
    with pytest.raises(DataError) as err:
        build(name, data_dir=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message
    assert f"{tmp_path.resolve()}/{layout}" in message
    assert "--data.data_dir" in message and "--data.download" in message


def test_a_malformed_cifar_file_is_a_data_error(fake_cifar10: Path):
    (fake_cifar10 / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3 is not a CIFAR batch"):
        build("cifar10", data_dir=str(fake_cifar10))


# --------------------------------------------------------------------------- cifar download


def test_the_official_archive_checksums_are_pinned():
    specs = sources_module._CIFAR
    assert specs["cifar10"].md5 == "c58f30108f718f92721af3b95e74349a"
    assert specs["cifar100"].md5 == "eb9058c3a382ffc7106e4002c42a8d85"
    assert specs["cifar10"].url.endswith("/cifar-10-python.tar.gz")
    assert specs["cifar100"].url.endswith("/cifar-100-python.tar.gz")


@pytest.fixture
def served_archive(tmp_path: Path) -> tuple[str, str]:
    """A fake cifar-10-python.tar.gz behind a file:// URL, and its MD5."""
    extracted = _fake_cifar10(tmp_path / "build")
    archive = tmp_path / "server" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(extracted / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive.as_uri(), hashlib.md5(archive.read_bytes()).hexdigest()


def _serve(monkeypatch, url: str, md5: str | None = None) -> None:
    spec = sources_module._CIFAR["cifar10"]
    changed = dataclasses.replace(spec, url=url, md5=md5 or spec.md5)
    monkeypatch.setitem(sources_module._CIFAR, "cifar10", changed)


def test_download_checks_the_md5_then_extracts(tmp_path, monkeypatch, served_archive):
    url, md5 = served_archive
    _serve(monkeypatch, url, md5)
    root = tmp_path / "data"
    data = build("cifar10", data_dir=str(root), download=True, val_size=10)
    assert data.train.num_samples == 30 and data.test.num_samples == 6
    assert (root / "cifar-10-python.tar.gz").is_file()
    assert (root / "cifar-10-batches-py" / "test_batch").is_file()
    assert not list(root.glob("*.part"))
    # A second build finds the extracted folder and downloads nothing.
    _serve(monkeypatch, (tmp_path / "gone.tar.gz").as_uri(), md5)
    assert build("cifar10", data_dir=str(root), download=True, val_size=10).num_classes == 10


def test_checksum_mismatch_deletes_the_download_and_names_both_digests(
    tmp_path, monkeypatch, served_archive
):
    url, actual = served_archive
    _serve(monkeypatch, url)  # the official MD5, which the fake archive does not have
    root = tmp_path / "data"
    with pytest.raises(DataError) as err:
        build("cifar10", data_dir=str(root), download=True)
    message = str(err.value)
    assert "c58f30108f718f92721af3b95e74349a" in message and actual in message
    assert "\n" not in message
    assert list(root.iterdir()) == []  # neither the partial file nor anything extracted


def test_an_existing_corrupt_archive_is_not_extracted(tmp_path, monkeypatch, served_archive):
    url, md5 = served_archive
    _serve(monkeypatch, url, md5)
    root = tmp_path / "data"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(b"truncated")
    with pytest.raises(DataError, match=f"expected {md5}.*delete"):
        build("cifar10", data_dir=str(root), download=True)
    assert not (root / "cifar-10-batches-py").exists()


def test_a_failed_download_is_a_data_error(tmp_path, monkeypatch):
    _serve(monkeypatch, (tmp_path / "nowhere" / "cifar-10-python.tar.gz").as_uri())
    root = tmp_path / "data"
    with pytest.raises(DataError, match="could not download"):
        build("cifar10", data_dir=str(root), download=True)
    assert list(root.iterdir()) == []
