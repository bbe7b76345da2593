"""`lightnas latency-table --engine torch`: the PyTorch-timed table, without the deploy extra
(`--engine lce` is tested in tests/deploy, in the deploy virtualenv)."""

import yaml

from lightnas.cli import main
from lightnas.models import create_supernet
from lightnas.scoring.latency import REMOVED, LatencyTable


def test_torch_engine_writes_a_table_a_search_reads_and_never_replaces_it(write_config, capsys):
    config = write_config()
    argv = ["latency-table", "--engine", "torch", str(config), "--repeats", "2", "--warmup", "0"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    model = yaml.safe_load(config.read_text())["model"]
    space = create_supernet(model["name"], 4, model["stem"], **model["kwargs"]).space
    path = config.with_name("latency_table.csv")  # beside the config, as a folder's own table
    table = LatencyTable.read_csv(path, space)  # the format search.latency_table.csv reads
    entries = list(table.entries.values())
    assert len(entries) == sum(len(p.choices) for p in space)
    assert all((e.seconds == 0) == (e.source == REMOVED) for e in entries)
    assert f"{table.latency(space.default()) * 1e3:.4g} ms" in printed
    before = path.read_bytes()
    assert main(argv) == 2
    assert "exists; pass -o" in capsys.readouterr().err
    assert path.read_bytes() == before
