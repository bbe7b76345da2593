"""Smoke test of benchmarks/dashboard_load.py: a few copied runs, one repeat, the browser too."""

import importlib.util
import json

import pytest
from helpers import ROOT

BENCHMARK = ROOT / "benchmarks" / "dashboard_load.py"


@pytest.mark.slow
def test_the_page_load_benchmark_measures_server_and_browser(finished_run, capsys):
    spec = importlib.util.spec_from_file_location("dashboard_load", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--runs", "4", "--repeats", "1", "--source", str(finished_run)])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == {"benchmark": "dashboard_load", "results": result}
    assert result["runs"] == 4
    for key in ("runs_page_first_s", "runs_page_s", "run_json_s", "browser_runs_page_s",
                "browser_run_page_s"):  # fmt: skip
        assert 0 < result[key] < 30, key
