import pytest
import yaml
from helpers import ROOT

from lightnas.cli import search_main
from lightnas.config import REGISTRY_KEYS, SECTIONS, parse_config
from lightnas.data import DataOptions
from lightnas.errors import ConfigError, LightNASError
from lightnas.run.parts import build_supernet

SHIPPED = sorted((ROOT / "configs").glob("*.yml"))
CONFIGS = [p for p in SHIPPED if not p.name.startswith("sweep_")]  # sweeps: tests/sweeps


def test_all_shipped_configs_exist():
    names = {p.name for p in CONFIGS}
    for name in (
        "quickstart.yml",
        "default_config_melius22_cifar100.yml",
        "default_config_resnet18_cifar100.yml",
        "default_config_melius22_mock.yml",
        "default_config_resnet18_mock.yml",
        "default_config_melius22_imagenet.yml",
    ):
        assert name in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_parses_and_builds_its_supernet(path, monkeypatch):
    monkeypatch.chdir(path.parents[1])  # paths in a config (model.file) are the repository's
    cfg, _, _ = parse_config(["-c", str(path)])
    net = build_supernet(cfg, 10)
    assert len(net.space) > 0


def test_overrides_apply_on_top_of_the_file():
    path = CONFIGS[0]
    cfg, _, _ = parse_config(["-c", str(path), "--search.warmup_epochs", "7", "--epochs", "3"])
    assert cfg.search.warmup_epochs == 7 and cfg.epochs == 3


def test_unknown_key_in_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"search": {"warmup_epoch": 2}}))
    with pytest.raises(ConfigError, match="warmup_epoch") as err:
        parse_config(["-c", str(bad)])
    assert "\n" not in str(err.value)


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match='config key "epochs"'):
        parse_config(["--epochs", "many"])
    with pytest.raises(ConfigError, match="search.cost_weight=0.5 must be <= 0"):
        parse_config(["--search.cost_weight", "0.5"])


@pytest.mark.parametrize(
    "key, value, message",
    [
        (
            "search.reward_bn",
            "mean",
            "search.reward_bn='mean' is not valid; valid: recalibrate, batch",
        ),
        ("compile", "max", "compile='max' is not valid; valid: none, regional, full"),
        ("optim.optimizer", "rmsprop", "optim.optimizer='rmsprop' is not valid; valid: sgd, adam"),
        (
            "search.sampling",
            "bigger",
            "search.sampling='bigger' is not valid; valid: null, controller, uniform, sandwich",
        ),
    ],
)
def test_a_value_outside_a_closed_set_names_the_valid_ones(key, value, message):
    with pytest.raises(ConfigError) as err:
        parse_config([f"--{key}", value])
    assert str(err.value) == message


@pytest.mark.parametrize("key", sorted(REGISTRY_KEYS))
def test_every_registry_key_refuses_an_unknown_name(key):
    registry = REGISTRY_KEYS[key]
    value = "[bogus]" if key == "export.formats" else "bogus"
    with pytest.raises(ConfigError, match=r"'bogus' is not known; valid: ") as err:
        parse_config([f"--{key}", value])
    assert str(err.value).startswith(key) and str(err.value).endswith(registry.valid())


def test_sections_are_the_dataclass_keys_of_the_config():
    assert SECTIONS == (
        "model",
        "data",
        "optim",
        "controller",
        "evolution",
        "search",
        "export",
        "distill",
        "checkpoint",
        "tracking",
        "distributed",
    )


def test_print_config_shows_the_resolved_config(capsys):
    with pytest.raises(SystemExit) as done:
        search_main(["-c", str(CONFIGS[0]), "--epochs", "4", "--print-config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["epochs"] == 4 and "search" in printed and "controller" in printed


def test_overrides_autosave_the_resolved_config(write_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert search_main(["-c", str(write_config(epochs=1)), "--seed", "3"]) == 0
    saved = yaml.safe_load((tmp_path / "configs" / "autosaved" / "tiny.yml").read_text())
    assert saved["seed"] == 3
    folder_cfg = yaml.safe_load((tmp_path / "trainings" / "tiny" / "config.yml").read_text())
    assert folder_cfg["seed"] == 3 and "resume" not in folder_cfg


def test_unknown_dataset_is_one_line_naming_the_registered_ones():
    with pytest.raises(ConfigError) as err:
        parse_config(["--data.dataset", "mnist"])
    assert str(err.value) == (
        "data.dataset='mnist' is not known; valid: cifar10, cifar100, digits, imagefolder, mock"
    )


def test_data_section_is_data_options():
    cfg, _, _ = parse_config(["--data.dataset", "digits", "--data.batch_size", "32"])
    assert isinstance(cfg.data, DataOptions)
    assert cfg.data.dataset == "digits" and cfg.data.batch_size == 32


def test_config_errors_are_lightnas_errors():
    # the CLI reports LightNASErrors as one line with exit code 2
    with pytest.raises(LightNASError, match="epochs=0 must be >= 1"):
        parse_config(["--epochs", "0"])
