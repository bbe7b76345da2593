import pickle

import pytest
import torch

from lightnas.errors import CheckpointError
from lightnas.outputs.checkpoint import REQUIRED, has_checkpoint, load_checkpoint, save_checkpoint


def state(epoch: int, **extra) -> dict:
    return {key: None for key in REQUIRED} | {"epoch": epoch, "history": []} | extra


def test_save_keeps_previous_and_loads_with_weights_only(tmp_path):
    save_checkpoint(tmp_path, state(1, w=torch.ones(2), history=[{"a": 1.5}]))
    save_checkpoint(tmp_path, state(2, w=torch.zeros(2)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "previous.pt"]
    assert load_checkpoint(tmp_path)["epoch"] == 2
    assert torch.load(tmp_path / "previous.pt", weights_only=True)["epoch"] == 1


def test_failed_write_leaves_the_last_checkpoint_intact(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, state(1))

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, state(2))
    monkeypatch.undo()
    assert load_checkpoint(tmp_path)["epoch"] == 1
    # the former checkpoint was not rotated and the partial file is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_unreadable_last_falls_back_with_warning(tmp_path):
    save_checkpoint(tmp_path, state(1))
    save_checkpoint(tmp_path, state(2))
    (tmp_path / "last.pt").write_bytes(b"\x00garbage")
    with pytest.warns(UserWarning, match="previous.pt"):
        assert load_checkpoint(tmp_path)["epoch"] == 1


def test_no_checkpoint_is_a_clear_error(tmp_path):
    assert not has_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="no loadable checkpoint"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [
        ({"epoch": 1, "supernet": {}}, "is not a LightNAS checkpoint: it lacks global_step"),
        ([1, 2, 3], "holds a list, not a LightNAS checkpoint"),
    ],
)
def test_a_loadable_file_that_is_no_checkpoint_is_named(tmp_path, content, message):
    torch.save(content, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint(tmp_path)
    assert str(tmp_path / "last.pt") in str(err.value) and "\n" not in str(err.value)


class Evil:
    def __reduce__(self):
        return (print, ("executed",))


def test_a_pickle_with_code_is_refused_quietly(tmp_path, recwarn, capsys):
    (tmp_path / "last.pt").write_bytes(pickle.dumps({"epoch": 1, "x": Evil()}))
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        load_checkpoint(tmp_path)
    assert "executed" not in capsys.readouterr().out
    assert not [w for w in recwarn if "torch" in str(w.filename)]
