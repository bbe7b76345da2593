"""What a metrics row records for the dashboard (#10): the controller's choice probabilities and
every validated architecture with its costs; rows survive a checkpoint (from_row / to_row)."""

import pytest
from helpers.runs import make_engine, tiny_cfg

from lightnas.engine.records import EpochResult


def test_rows_carry_choice_probabilities_and_every_validated_architecture_with_costs():
    engine = make_engine(tiny_cfg())
    engine.run()
    result = engine.history[0]
    space = engine.supernet.space
    assert result.probabilities.keys() == set(space.names)
    for point, probs in result.probabilities.items():
        assert list(probs) == list(space[point].choices)
        assert sum(probs.values()) == pytest.approx(1.0)
    assert result.validated_costs.keys() == result.validated.keys()
    chosen = result.validated_costs[result.chosen]
    assert chosen["architecture"] == result.architecture and chosen["ops"] == result.costs["ops"]
    row = result.to_row()
    assert EpochResult.from_row(row).to_row() == row
