import pytest
import torch

from lightnas.checkpoint import load_checkpoint, save_checkpoint


def test_save_keeps_previous_and_loads_with_weights_only(tmp_path):
    save_checkpoint(tmp_path, {"epoch": 1, "w": torch.ones(2), "history": [{"a": 1.5}]})
    save_checkpoint(tmp_path, {"epoch": 2, "w": torch.zeros(2), "history": []})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "previous.pt"]
    assert load_checkpoint(tmp_path)["epoch"] == 2
    assert torch.load(tmp_path / "previous.pt", weights_only=True)["epoch"] == 1


def test_failed_write_leaves_the_last_checkpoint_intact(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"epoch": 1})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(tmp_path)["epoch"] == 1


def test_unreadable_last_falls_back_with_warning(tmp_path):
    save_checkpoint(tmp_path, {"epoch": 1})
    save_checkpoint(tmp_path, {"epoch": 2})
    (tmp_path / "last.pt").write_bytes(b"\x00garbage")
    with pytest.warns(UserWarning, match="previous.pt"):
        assert load_checkpoint(tmp_path)["epoch"] == 1


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no loadable checkpoint"):
        load_checkpoint(tmp_path)
