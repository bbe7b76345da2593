"""lightnas.run.folder: a new training folder never reuses a name; the log tee."""

import io

from helpers.runs import tiny_cfg

from lightnas.run.folder import Tee, new_folder


def test_a_taken_name_gets_a_numeric_suffix(tmp_path):
    cfg = tiny_cfg(output_dir=str(tmp_path), name="run")
    names = [new_folder(cfg).name for _ in range(3)]
    assert names == ["run", "run_2", "run_3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_a_default_name_is_the_model_and_the_minute(tmp_path):
    folder = new_folder(tiny_cfg(output_dir=str(tmp_path), name=None))
    assert folder.name.startswith("meliusnet_flex_20") and folder.root.is_dir()


def test_the_tee_copies_what_is_written_into_the_log():
    stream, log = io.StringIO(), io.StringIO()
    tee = Tee(stream, log)
    tee.write("epoch 1\n")
    tee.flush()
    assert stream.getvalue() == log.getvalue() == "epoch 1\n"
    assert tee.isatty() is False and tee.getvalue() == "epoch 1\n"  # the rest: the stream's
