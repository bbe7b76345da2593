"""lightnas.data: DataOptions, the dataset registry, build_data and adding a dataset."""

import ast
import dataclasses
import inspect
import subprocess
import sys

import pytest
import torch

from lightnas.data import (
    DATASETS,
    ArrayLoader,
    Arrays,
    BuildContext,
    DataBundle,
    DataOptions,
    build_data,
)
from lightnas.data import options as options_module
from lightnas.errors import ConfigError

# --------------------------------------------------------------------------- options


def test_options_fields_and_defaults_are_the_configs():
    defaults = {f.name: f.default for f in dataclasses.fields(DataOptions)}
    assert defaults == {
        "dataset": "cifar100",
        "data_dir": None,
        "download": False,
        "image_size": None,
        "num_classes": None,
        "num_samples": None,
        "val_size": 0.1,
        "batch_size": 128,
        "eval_batch_size": None,
        "augment": True,
        "num_workers": 0,
        "on_device": False,
    }


def test_every_option_has_a_one_line_docstring():
    cls = ast.parse(inspect.getsource(options_module)).body
    body = next(n for n in cls if isinstance(n, ast.ClassDef) and n.name == "DataOptions").body
    documented = {
        field.target.id
        for field, doc in zip(body, body[1:], strict=False)
        if isinstance(field, ast.AnnAssign)
        and isinstance(doc, ast.Expr)
        and isinstance(doc.value, ast.Constant)
        and isinstance(doc.value.value, str)
        and "\n" not in doc.value.value
    }
    assert documented == {f.name for f in dataclasses.fields(DataOptions)}


def test_options_module_imports_no_torch():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('options', {options_module.__file__!r})\n"
        "module = sys.modules['options'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert module.DataOptions().batch_size == 128\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "key, value",
    [
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("batch_size", True),
        ("eval_batch_size", 0),
        ("image_size", -1),
        ("num_samples", 1),
        ("num_workers", -1),
    ],
)
def test_bad_option_values_are_config_errors_naming_the_key(key, value):
    with pytest.raises(ConfigError) as err:
        build_data(DataOptions(dataset="mock", **{key: value}))
    assert str(err.value) == f"data.{key}={value!r} is invalid: use an integer >= " + (
        "2" if key == "num_samples" else "0" if key == "num_workers" else "1"
    )


# --------------------------------------------------------------------------- registry


def test_the_registry_lists_the_builtin_datasets():
    assert DATASETS.names() == ["cifar10", "cifar100", "digits", "imagefolder", "mock"]
    assert DATASETS.key == "data.dataset"


def test_unknown_dataset_is_a_config_error_listing_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        build_data(DataOptions(dataset="imagenet"))
    assert str(err.value) == (
        "data.dataset='imagenet' is not known; valid: cifar10, cifar100, digits, imagefolder, mock"
    )


@pytest.fixture
def registry(monkeypatch):
    """DATASETS as it is, restored after the test (a registered toy does not leak)."""
    monkeypatch.setattr(DATASETS, "_items", dict(DATASETS._items))
    return DATASETS


def test_a_dataset_registered_in_one_place_builds(registry):
    seen = {}

    @registry.register("toy")
    def toy(options: DataOptions, ctx: BuildContext) -> Arrays:
        seen.update(seed=ctx.seed, device=ctx.device)
        gen = torch.Generator().manual_seed(ctx.seed)
        x = torch.randint(0, 256, (30, 1, 6, 6), dtype=torch.uint8, generator=gen)
        y = torch.arange(30) % 3
        return Arrays(x, y, x[:9], y[:9], num_classes=3, stats=((0.5,), (0.5,)))

    assert "toy" in DATASETS.names()
    data = build_data(DataOptions(dataset="toy", batch_size=4, val_size=6), seed=7)
    assert seen == {"seed": 7, "device": torch.device("cpu")}
    assert isinstance(data.train, ArrayLoader) and data.train.augment
    assert data.num_classes == 3 and data.input_shape == (1, 6, 6)
    assert data.train.num_samples == 24 and data.val.num_samples == 6
    assert data.test.num_samples == 9 and len(data.train) == 6
    assert data.mean == (0.5,) and data.std == (0.5,)
    x, y = next(iter(data.val))
    assert x.shape == (4, 1, 6, 6) and y.dtype == torch.long
    with pytest.raises(ConfigError, match="data.num_classes=5 but toy has 3 classes"):
        build_data(DataOptions(dataset="toy", num_classes=5))


def test_a_source_may_return_a_whole_bundle(registry):
    loader = ArrayLoader(torch.zeros(4, 3, 2, 2), torch.zeros(4), batch_size=2, stats=((0,), (1,)))
    bundle = DataBundle(loader, loader, None, 2, (3, 2, 2))
    registry.add("ready", lambda options, ctx: bundle)
    assert build_data(DataOptions(dataset="ready")) is bundle


def test_stats_default_to_those_of_the_training_split(registry):
    x = torch.stack([torch.full((2, 4, 4), 51), torch.full((2, 4, 4), 153)]).to(torch.uint8)
    registry.add(
        "two", lambda o, c: Arrays(x.repeat(5, 1, 1, 1), torch.arange(10) % 2, x, x[:, 0, 0, 0], 2)
    )
    data = build_data(DataOptions(dataset="two", val_size=2, augment=False))
    expected = data.train.x.double().mean(dim=(0, 2, 3)) / 255  # not the val or test images
    assert data.mean == pytest.approx(tuple(expected.tolist()))
    spread = (data.train.x.double() / 255).std(dim=(0, 2, 3))
    assert data.std == pytest.approx(tuple(spread.tolist()))
    assert 0.2 < data.mean[0] < 0.6 and data.std[0] > 0.1


def test_pinning_follows_the_device():
    data = build_data(DataOptions(dataset="mock", num_samples=16, image_size=4), device="cpu")
    assert not data.train.pin_memory
    assert BuildContext(0, torch.device("cuda")).pin_memory
    assert not BuildContext(0, torch.device("cpu")).pin_memory
