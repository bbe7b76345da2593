"""`lightnas report <sweep folder>`: what a sweep found, from its Optuna storage.

Prints a narrow table of the trials and writes into <sweep>/report/: table.txt, trials.csv and
trials.json (every trial: state, objectives, parameters, folder, error, retrain command), the
Pareto front of two objectives (pareto.png and an interactive pareto.html with plotly.js embedded,
so it opens offline) or the history of one (history.png/.html), and importances.json (fANOVA
hyperparameter importances per objective). It ends with the command that retrains the chosen
trial's architecture: `--trial N`, else the best trial (two objectives: the Pareto-optimal one
best in the first objective).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.trial import FrozenTrial, TrialState

from lightnas.errors import ConfigError
from lightnas.layout import SweepFolder
from lightnas.runtime.fileio import write_atomic, write_json_atomic
from lightnas.sweeps.config import read_sweep_file
from lightnas.sweeps.study import (
    SKIPPED,
    missing_sqlite_file,
    quiet_optuna,
    retried_number,
    safe_url,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOTTING = ("matplotlib", "plotly")  # the report's plots: the optional `sweeps` extra

DEAD_WORKER = "its worker stopped (no heartbeat)"


@dataclass
class Report:
    """What `report` found and wrote."""

    rows: list[dict]
    objectives: list[str]
    directions: list[str]
    front: list[int]  # Pareto-optimal (or best) trial numbers
    chosen: int | None
    retrain: str | None  # the command that retrains the chosen trial's architecture
    importances: dict[str, dict[str, float]]
    files: list[Path] = field(default_factory=list)


# ---- reading the study ----------------------------------------------------------------------
def load_study(folder: SweepFolder, storage: str | None) -> tuple[optuna.Study, dict]:
    if not folder.is_sweep():
        raise ConfigError(f"{folder.root} is not a sweep folder (no sweep.yml in it)")
    saved = read_sweep_file(folder.config)
    url = storage or saved.get("storage")
    if url is None:
        if not folder.storage.is_file():
            raise ConfigError(f"{folder.storage} does not exist: give the sweep's --storage URL")
        url = f"sqlite:///{folder.storage.resolve()}"
    missing = missing_sqlite_file(url)
    if missing is not None:  # reading must not create an empty database
        raise ConfigError(
            f"storage {safe_url(url)}: {missing} does not exist; give the URL of the sweep's "
            "storage (default: its study.db)"
        )
    try:
        return optuna.load_study(study_name=saved.get("name", folder.name), storage=url), saved
    except Exception as err:  # SQLAlchemy's and Optuna's errors: many classes, many lines
        reason = " ".join(str(err).split("\n")[0].split())[:300]
        raise ConfigError(f"storage {safe_url(url)}: cannot read the sweep ({reason})") from None


def trial_error(trial: FrozenTrial) -> str:
    if trial.state != TrialState.FAIL:
        return ""
    return trial.user_attrs.get("error", DEAD_WORKER)


def trial_row(trial: FrozenTrial, objectives: list[str], folder: Path, front: set[int]) -> dict:
    """One trial as a flat dict (a CSV row)."""
    values = trial.values or [None] * len(objectives)
    where = trial.user_attrs.get("folder")
    best = trial.user_attrs.get("best", {})
    row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name.lower()}
    row |= dict(zip(objectives, values, strict=True))
    row |= trial.user_attrs.get("overrides", trial.params)
    duration = trial.duration.total_seconds() if trial.duration else None
    row |= {
        "best_epoch": best.get("epoch"),
        "pruned_at": trial.last_step if trial.state == TrialState.PRUNED else None,
        "duration_s": duration,
        "pareto": trial.number in front,
        "folder": str(folder / where) if where else None,
        "host": trial.user_attrs.get("host"),
        "retry_of": retried_number(trial),
        "error": trial_error(trial),
        "retrain": f"lightnas retrain {folder / where}" if best and where else None,
    }
    return row


def front_of(study: optuna.Study) -> list[FrozenTrial]:
    """The Pareto-optimal trials (one objective: the best trial)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    return study.best_trials if len(study.directions) > 1 else [study.best_trial]


def choose(
    front: list[FrozenTrial], directions: list[str], rows: list[dict], trial: int | None
) -> int | None:
    if trial is not None:
        if not any(r["trial"] == trial and r["retrain"] for r in rows):
            raise ConfigError(f"--trial {trial}: no complete trial with that number")
        return trial
    if not front:
        return None
    sign = 1 if directions[0] == "maximize" else -1
    return max(front, key=lambda t: (sign * t.values[0], -t.number)).number


def importances(study: optuna.Study, objectives: list[str]) -> dict[str, dict[str, float]]:
    """fANOVA importances of the parameters, per objective ({} when too few trials)."""
    out = {}
    for i, name in enumerate(objectives):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = get_param_importances(
                    study,
                    evaluator=FanovaImportanceEvaluator(seed=0),
                    target=lambda t, i=i: t.values[i],
                )
        except (RuntimeError, ValueError):  # fewer than two complete trials, or one value
            found = {}
        out[name] = {k: round(float(v), 4) for k, v in found.items()}
    return out


# ---- printing -------------------------------------------------------------------------------
def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(rows: list[dict], objectives: list[str], params: list[str]) -> str:
    """The narrow console table: trial, state, objectives, parameters (by their last name)."""
    heads = ["#", "state", *objectives, *[p.split(".")[-1][:12] for p in params], "epoch", "s"]
    cells = [
        [
            f"{r['trial']}{'*' if r['pareto'] else ''}",
            r["state"],
            *[fmt(r[o]) for o in objectives],
            *[fmt(r.get(p)) for p in params],
            fmt(r["best_epoch"] or r["pruned_at"]),
            fmt(None if r["duration_s"] is None else round(r["duration_s"], 1)),
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(heads, *cells, strict=True)]
    return "\n".join(aligned(line, widths) for line in [heads, *cells])


def aligned(cells: list[str], widths: list[int]) -> str:
    """One table line: the first cell left-aligned, the others right-aligned."""
    padded = [
        c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ]
    return "  ".join(padded)


def summary(report: Report, params: list[str]) -> str:
    out = io.StringIO()
    print(table(report.rows, report.objectives, params), file=out)
    kind = "Pareto front" if len(report.objectives) > 1 else "best"
    print(f"* {kind}: trials {', '.join(map(str, report.front)) or 'none yet'}", file=out)
    for r in report.rows:
        if r["error"]:
            print(f"trial {r['trial']} failed: {r['error'][:150]}", file=out)
    for name, found in report.importances.items():
        shown = ", ".join(f"{k} {v:.2f}" for k, v in found.items()) or "too few trials"
        print(f"importance for {name}: {shown}", file=out)
    if report.chosen is not None:
        print(f"chosen: trial {report.chosen}; retrain its architecture with:", file=out)
        print(f"  {report.retrain}", file=out)
    return out.getvalue()


# ---- files ----------------------------------------------------------------------------------
def write_csv(path: Path, rows: list[dict]) -> None:
    out = io.StringIO()
    heads = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(out, heads)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, out.getvalue())


def trials_json(study: optuna.Study, rows: list[dict]) -> list[dict]:
    """Every row plus the Optuna record: sampled params, intermediate values, user attrs."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    return [
        r
        | {
            "params": trials[r["trial"]].params,
            "intermediate": {str(k): v for k, v in trials[r["trial"]].intermediate_values.items()},
            "user_attrs": trials[r["trial"]].user_attrs,
        }
        for r in rows
    ]


def axis_label(metric: str, direction: str) -> str:
    return f"{metric} ({'higher' if direction == 'maximize' else 'lower'} is better)"


def check_plotting() -> None:
    """The report's plots need the `sweeps` extra: a missing package is bad input, said before a
    sweep runs or a report is read."""
    missing = [name for name in PLOTTING if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"sweeps need the `sweeps` extra ({missing[0]} is missing): "
            "pip install 'lightnas[sweeps]'"
        )


def new_plot() -> tuple[Figure, Axes]:
    # the optional extra, checked by check_plotting before any sweep or report
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def save_png(fig: Figure, ax: Axes, title: str, path: Path) -> None:
    """Title, grid and legend, then the PNG written atomically."""
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with io.BytesIO() as buffer:
        fig.savefig(buffer, format="png")
        write_atomic(path, buffer.getvalue())


def pareto_png(path: Path, report: Report, title: str) -> None:
    """Accuracy-like first objective (y) against the cost-like second (x); the front as a step."""
    y_name, x_name = report.objectives
    done = [r for r in report.rows if r["state"] == "complete"]
    front = sorted((r for r in done if r["pareto"]), key=lambda r: r[x_name])
    fig, ax = new_plot()
    ax.scatter([r[x_name] for r in done], [r[y_name] for r in done], c="0.6", label="trials")
    ax.step([r[x_name] for r in front], [r[y_name] for r in front], where="post", c="C3")
    ax.scatter([r[x_name] for r in front], [r[y_name] for r in front], c="C3", label="Pareto front")
    for r in done:
        ax.annotate(
            str(r["trial"]),
            (r[x_name], r[y_name]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xlabel(axis_label(x_name, report.directions[1]))
    ax.set_ylabel(axis_label(y_name, report.directions[0]))
    save_png(fig, ax, title, path)


def history_png(path: Path, report: Report, title: str) -> None:
    """One objective: each trial's value and the best so far."""
    (name,), (direction,) = report.objectives, report.directions
    done = [r for r in report.rows if r["state"] == "complete"]
    pick = max if direction == "maximize" else min
    best = [pick(r[name] for r in done[: i + 1]) for i in range(len(done))]
    fig, ax = new_plot()
    ax.scatter([r["trial"] for r in done], [r[name] for r in done], c="0.5", label="trials")
    ax.plot([r["trial"] for r in done], best, c="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(axis_label(name, direction))
    save_png(fig, ax, title, path)


def hover(row: dict, params: list[str]) -> str:
    shown = "<br>".join(f"{p}={fmt(row.get(p))}" for p in params)
    return f"trial {row['trial']}<br>{shown}<br>{row['folder']}"


def plot_html(path: Path, report: Report, params: list[str], title: str) -> None:
    """The same plot, interactive (hover: trial, parameters, folder); plotly.js embedded."""
    import plotly.graph_objects as go  # the optional extra, checked by check_plotting

    done = [r for r in report.rows if r["state"] == "complete"]
    if len(report.objectives) > 1:
        y_name, x_name = report.objectives
        x_of, x_title = (lambda r: r[x_name]), axis_label(x_name, report.directions[1])
    else:
        y_name, x_of, x_title = report.objectives[0], (lambda r: r["trial"]), "trial"
    fig = go.Figure()
    for label, group, color in (
        ("trials", [r for r in done if not r["pareto"]], "gray"),
        (
            "Pareto front" if len(report.objectives) > 1 else "best",
            [r for r in done if r["pareto"]],
            "crimson",
        ),
    ):
        fig.add_trace(
            go.Scatter(
                x=[x_of(r) for r in group],
                y=[r[y_name] for r in group],
                mode="markers",
                name=label,
                marker={"color": color, "size": 9},
                text=[hover(r, params) for r in group],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=axis_label(y_name, report.directions[0]),
        template="plotly_white",
    )
    write_atomic(path, fig.to_html(include_plotlyjs=True, full_html=True))


def write_files(
    folder: SweepFolder, study: optuna.Study, report: Report, params: list[str]
) -> list[Path]:
    folder.report.mkdir(exist_ok=True)
    files = {
        name: folder.report_file(name)
        for name in ("table.txt", "trials.csv", "trials.json", "importances.json")
    }
    write_atomic(files["table.txt"], summary(report, params))
    write_csv(files["trials.csv"], report.rows)
    write_json_atomic(files["trials.json"], {"trials": trials_json(study, report.rows)})
    write_json_atomic(files["importances.json"], report.importances)
    if not any(r["state"] == "complete" for r in report.rows):
        return list(files.values())
    stem = "pareto" if len(report.objectives) > 1 else "history"
    title = (
        f"sweep {folder.name}: {sum(r['state'] == 'complete' for r in report.rows)} complete trials"
    )
    png, html = folder.report_file(f"{stem}.png"), folder.report_file(f"{stem}.html")
    (pareto_png if stem == "pareto" else history_png)(png, report, title)
    plot_html(html, report, params, title)
    return [*files.values(), png, html]


# ---- the entry points -----------------------------------------------------------------------
def report(folder: str | Path, *, trial: int | None = None, storage: str | None = None) -> Report:
    """Read the sweep in `folder`, write its report files; what was found (printing nothing)."""
    check_plotting()
    sweep_folder = SweepFolder(Path(folder))
    study, saved = load_study(sweep_folder, storage)
    objectives = list(saved.get("objectives") or {})
    directions = [d.name.lower() for d in study.directions]
    params = list(saved.get("parameters") or {})
    front = front_of(study)
    numbers = {t.number for t in front}
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SKIPPED)]
    rows = [trial_row(t, objectives, Path(folder), numbers) for t in trials]
    retries = {r["retry_of"]: r["trial"] for r in rows if r["retry_of"] is not None}
    for r in rows:
        if r["trial"] in retries:
            r["error"] += f"; retried as trial {retries[r['trial']]}"
    chosen = choose(front, directions, rows, trial)
    retrain = next((r["retrain"] for r in rows if r["trial"] == chosen), None)
    found = Report(rows, objectives, directions, sorted(numbers), chosen, retrain, {})
    found.importances = importances(study, objectives)
    found.files = write_files(sweep_folder, study, found, params)
    return found


def report_command(folder: str, trial: int | None = None, storage: str | None = None) -> int:
    """`lightnas report`: print the table, the front, the importances and the retrain command."""
    with quiet_optuna():
        found = report(folder, trial=trial, storage=storage)
    saved = read_sweep_file(SweepFolder(Path(folder)).config)
    print(summary(found, list(saved.get("parameters") or {})), end="")
    print(f"written: {', '.join(str(p) for p in found.files)}")
    return 0
