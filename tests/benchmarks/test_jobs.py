"""Jobs side by side and the result cache the training benchmarks resume from."""

import json

import pytest
from jobs import InProcess, ResultCache, executor


def square(x: int) -> int:
    return x * x


def test_one_job_runs_in_this_process():
    assert isinstance(executor(1), InProcess)
    assert executor(1).submit(square, 3).result() == 9


def test_finished_results_are_kept_in_the_file_and_reused(tmp_path):
    path = tmp_path / "results.json"
    cache = ResultCache(str(path))
    assert cache.submit(InProcess(), "a", square, 4).result() == 16
    assert json.loads(path.read_text()) == {"a": 16}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind

    again = ResultCache(str(path))  # a later run reads them back and runs nothing
    assert again.submit(InProcess(), "a", pytest.fail, "ran again").result() == 16
    assert again.submit(InProcess(), "b", square, 5).result() == 25
    assert json.loads(path.read_text()) == {"a": 16, "b": 25}


def test_a_failed_job_is_not_kept(tmp_path):
    cache = ResultCache(str(tmp_path / "results.json"))
    pool = executor(2)
    with pool:
        future = cache.submit(pool, "bad", square, "x")
        with pytest.raises(TypeError):
            future.result()
    assert cache.results == {} and not (tmp_path / "results.json").exists()


def test_without_a_path_results_stay_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = ResultCache(None)
    assert cache.submit(InProcess(), "a", square, 2).result() == 4
    assert cache.results == {"a": 4} and list(tmp_path.iterdir()) == []
