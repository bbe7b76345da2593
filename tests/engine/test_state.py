"""The engine's checkpoint format: a state put back into a fresh engine continues identically."""

import io

import pytest
import torch
from helpers.runs import make_engine, tiny_cfg


def config(epochs: int, sandwich_every: int):
    cfg = tiny_cfg(epochs=epochs)
    cfg.search.sandwich_every = sandwich_every
    return cfg


@pytest.mark.parametrize("sandwich_every", [1, 2])
def test_state_round_trip_continues_identically(sandwich_every):
    first = make_engine(config(2, sandwich_every))
    first.cfg.epochs = 1
    first.run()
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # checkpoints load without allow-listing
    second = make_engine(config(2, sandwich_every))
    second.load_state_dict(state)
    assert (second.epoch, second.global_step) == (1, first.global_step)
    assert [r.to_row() for r in second.history] == [r.to_row() for r in first.history]
    assert second.final is not None and second.best == first.best
    first.cfg.epochs = second.cfg.epochs = 2
    first.run()
    second.run()
    drop = {"time_s"}
    rows = [
        [{k: v for k, v in r.to_row().items() if k not in drop} for r in e.history]
        for e in (first, second)
    ]
    assert rows[0] == rows[1] and len(rows[0]) == 2
