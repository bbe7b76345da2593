"""Sweeps: many LightNAS runs as one Optuna study (`lightnas sweep`, `lightnas report`).

    import lightnas
    study = lightnas.sweep("configs/sweep_quickstart.yml", n_trials=8)   # an optuna.Study
    found = lightnas.report("sweeps/sweep_quickstart")                   # table, front, files

Sits above lightnas.run and uses only its public entry points (run.search.search,
run.retrain.retrain); nothing below imports it. Optuna is a core dependency; the report's plots
need the `sweeps` extra (matplotlib, plotly), checked before a sweep or a report starts.
"""

from lightnas.sweeps.config import SweepConfig, load_sweep_config
from lightnas.sweeps.results import Report, report, report_command
from lightnas.sweeps.runner import prepare, sweep, sweep_command

__all__ = [
    "Report",
    "SweepConfig",
    "load_sweep_config",
    "prepare",
    "report",
    "report_command",
    "sweep",
    "sweep_command",
]
