import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.locks import HOLD

from lightnas.errors import ConfigError
from lightnas.runtime import fileio
from lightnas.runtime.fileio import (
    exclusive_lock,
    lock_holder,
    make_folder,
    read_text,
    read_yaml_mapping,
    write_atomic,
)


def test_a_lock_is_refused_to_a_second_holder_naming_the_first_pid(tmp_path):
    lock = tmp_path / ".lock"
    with exclusive_lock(lock, "trainings/x"):
        assert lock.read_text() == f"{os.getpid()}\n"
        # a second open of the file is a second holder, even in the same process
        in_use = rf"trainings/x is in use .* \(pid {os.getpid()}\)"
        with pytest.raises(ConfigError, match=in_use), exclusive_lock(lock, "trainings/x"):
            pass
        assert lock.read_text() == f"{os.getpid()}\n"  # the refusal left the holder's file
    assert not lock.exists()  # released and removed when the block ends
    with exclusive_lock(lock, "trainings/x"):
        pass
    assert not lock.exists()


def test_a_lock_taken_on_a_removed_file_is_taken_again_on_the_new_one(tmp_path, monkeypatch):
    """A run that opened the lock file just before its holder removed it must not hold a lock
    on the removed file (beside a third run holding a new one): it locks the new file."""
    lock = tmp_path / ".lock"
    lock.write_text("")
    real_flock, locked = fileio.fcntl.flock, []

    def flock_as_the_holder_ends(file, operation):
        if not locked:  # the holder removes the file between this run's open and its flock
            lock.unlink()
        fd = file if isinstance(file, int) else file.fileno()  # flock takes either
        locked.append(os.fstat(fd).st_ino)
        return real_flock(file, operation)

    monkeypatch.setattr(fileio.fcntl, "flock", flock_as_the_holder_ends)
    with exclusive_lock(lock, "trainings/x"):
        assert len(locked) == 2 and locked[1] == lock.stat().st_ino  # the file now at .lock
        assert lock.read_text() == f"{os.getpid()}\n"
    assert not lock.exists()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    lock = tmp_path / ".lock"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "held\n"
    with pytest.raises(ConfigError, match=rf"\(pid {proc.pid}\)"), exclusive_lock(lock, "x"):
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with exclusive_lock(lock, "the folder"):
        assert lock.read_text() == f"{os.getpid()}\n"
    assert not lock.exists()


def test_read_text_names_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "config.yml"
    path.write_bytes("epochs: 2\n# café\n".encode("latin-1"))
    with pytest.raises(
        ConfigError,
        match=r"config file .*config.yml is not UTF-8 text \(byte "
        r"0xe9 on line 2\); valid: UTF-8",
    ):
        read_text(path, "config file")
    path.write_text("# café\n", encoding="utf-8")
    assert read_text(path, "config file") == "# café\n"


def test_the_lock_holder_is_the_process_holding_it_not_any_pid_written_in_it(tmp_path):
    lock = tmp_path / ".lock"
    assert lock_holder(lock) is None  # no lock file yet
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "held\n"
    assert lock_holder(lock) == proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert lock.read_text() == f"{proc.pid}\n" and lock_holder(lock) is None  # its pid stays
    lock.write_text(f"{os.getpid()}\n")  # a live process that does not hold it
    assert lock_holder(lock) is None


def test_make_folder_reports_what_is_in_the_way(tmp_path):
    make_folder(tmp_path / "a" / "b", "output_dir")
    make_folder(tmp_path / "a" / "b", "output_dir")  # already there: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="output_dir: .*file is a file, not a folder"):
        make_folder(tmp_path / "file", "output_dir")
    with pytest.raises(ConfigError, match="output_dir: cannot create the folder .*Not a direc"):
        make_folder(tmp_path / "file" / "below", "output_dir")
    with pytest.raises(FileExistsError):  # a taken name: the caller picks another
        make_folder(tmp_path / "a", "output_dir", exist_ok=False)


def test_failed_write_keeps_the_previous_file_and_no_temp_file(tmp_path):
    target = tmp_path / "epoch_3.onnx"
    target.write_bytes(b"old")

    def fail_midway(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, fail_midway)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "config file {path} does not exist"),
        ("", "config file {path} is empty; it must hold keys such as `epochs: 10`"),
        ("a: [1", "config file {path} is not valid YAML: "),
        ("- 1\n", "config file {path} holds a list, not a mapping of keys such as `epochs: 10`"),
    ],
)
def test_read_yaml_mapping_names_what_is_wrong_in_one_line(tmp_path, content, message):
    path = tmp_path / "c.yml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as err:
        read_yaml_mapping(path, "config file", "epochs: 10")
    assert str(err.value).startswith(message.format(path=path)) and "\n" not in str(err.value)


def test_read_yaml_mapping_reads_a_mapping_and_refuses_a_folder(tmp_path):
    (tmp_path / "c.yml").write_text("epochs: 3\nsearch: {strategy: enas}\n")
    assert read_yaml_mapping(tmp_path / "c.yml", "x", "y: 1") == {
        "epochs": 3,
        "search": {"strategy": "enas"},
    }
    with pytest.raises(ConfigError, match="sweep config .* is a folder; give a YAML file"):
        read_yaml_mapping(tmp_path, "sweep config", "base:")
