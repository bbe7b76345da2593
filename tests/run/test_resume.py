"""lightnas.run.resume: what may differ between a checkpoint's config and a resumed run's."""

from lightnas.run.resume import RESUMABLE, config_differences


def test_config_differences_are_dotted_keys():
    a = {"epochs": 3, "search": {"cost": "ops", "cost_weight": 0.0}, "seed": 0}
    b = {"epochs": 5, "search": {"cost": "ops", "cost_weight": -0.1}, "name": "x"}
    assert config_differences(a, b) == ["epochs", "name", "search.cost_weight", "seed"]
    assert config_differences(a, a) == []


def test_the_search_space_differs_as_a_whole():
    a = {"search_space": {"bits": [1, 32]}}
    b = {"search_space": {"bits": [1]}}
    assert config_differences(a, b) == ["search_space"]


def test_epochs_and_the_device_may_change_on_resume():
    assert {"epochs", "device", "export"} <= set(RESUMABLE)
    assert "seed" not in RESUMABLE and "model" not in RESUMABLE
