"""lightnas.layout: the names of a training folder's files."""

from pathlib import Path

import pytest

from lightnas.errors import CheckpointError
from lightnas.layout import TrainingFolder, epoch_name, epoch_of, trial_name


def test_epoch_names_read_back():
    assert epoch_name(12) == "epoch_12" and epoch_of("epoch_12") == 12
    assert epoch_of("final") is None and epoch_of("epoch_12.json") is None
    assert trial_name(3) == "trial_0003"


def test_a_training_folder_is_one_with_its_config(tmp_path):
    folder = TrainingFolder(tmp_path / "run")
    assert folder.root == tmp_path / "run" and folder.name == "run"
    assert not folder.is_training()
    folder.root.mkdir()
    folder.config.write_text("epochs: 1\n")
    assert folder.is_training() and folder.config.parent == Path(folder.root)


def test_checked_returns_a_training_folder_and_names_one_that_is_not(tmp_path):
    folder = TrainingFolder(tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"^--resume .*run is not a training folder \(no"):
        folder.checked("--resume")
    with pytest.raises(CheckpointError, match=r"^/.*run is not a training folder"):
        folder.checked()
    folder.root.mkdir()
    folder.config.write_text("epochs: 1\n")
    assert folder.checked() is folder
