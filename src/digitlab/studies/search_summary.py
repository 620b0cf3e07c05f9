"""A search's results: a row per trial, the ranking by its objective (validation accuracy, or
with `--select-by real` the mean accuracy on the --val-real folders), and a figure of the search
(each trial's result, and its per-epoch objective with the pruned ones grey)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitlab.files import write_text
from digitlab.studies.spec import StudySpec
from digitlab.studies.trials import RUN, STATUS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from digitlab.studies.results import StudyResults

COLUMNS = ("trial", "run", "state", "params", "epochs", "val_accuracy", "test_accuracy", "seconds",
           "status", "real_accuracy")
OBJECTIVES = {"val": ("val_accuracy", "validation"), "real": ("real_accuracy", "real")}


def objective(select_by: str | None) -> tuple[str, str]:
    """The column a search ranks by and its name in words: `val` unless it picks by `real`."""
    return OBJECTIVES["real" if select_by == "real" else "val"]


def search_rows(results: StudyResults) -> list[dict[str, Any]]:
    """One row per finished trial that trained (or took another's result), by trial number."""
    rows = []
    for trial in results.trials:
        record = results.records.get(trial.user_attrs.get(RUN, ""))
        if record is None or not record.history.epochs or trial.state.name not in ("COMPLETE", "PRUNED"):
            continue
        last = record.history.epochs[-1]
        rows.append({
            "trial": trial.number, "run": trial.user_attrs[RUN], "state": trial.state.name.lower(),
            "params": ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in trial.params.items()),
            "epochs": len(record.history.epochs), "val_accuracy": last.val_accuracy,
            "test_accuracy": last.accuracy, "seconds": record.history.total_seconds,
            "status": trial.user_attrs.get(STATUS, ""), "real_accuracy": last.real_mean,
        })
    return rows


def ranking(rows: Sequence[dict[str, Any]], select_by: str | None = None) -> list[dict[str, Any]]:
    """The trials that ran all their epochs, best objective (validation accuracy, or the real
    folders' with `select_by` real) first."""
    key = objective(select_by)[0]
    done = [r for r in rows if r["state"] == "complete" and r[key] is not None]
    return sorted(done, key=lambda r: (-r[key], r["seconds"]))


def format_search_ranking(rows: Sequence[dict[str, Any]], top: int = 10,
                          select_by: str | None = None) -> str:
    key, name = objective(select_by)
    lines = []
    for i, r in enumerate(ranking(rows, select_by)[:top], start=1):
        lines.append(f"{i:>2}. trial {r['trial']:<3} {r['params']:<44} {name} "
                     f"{100 * r[key]:.2f}%  test {100 * r['test_accuracy']:.2f}%  "
                     f"{r['seconds']:.0f} s")
    return "\n".join(lines)


def plot_search(trials: Sequence[tuple[int, str, dict[int, float]]], title: str,
                objective_name: str = "validation") -> Figure:
    """(number, state, {epoch: objective}) per trial: each trial's last value with the best so
    far, and the per-epoch curves (pruned ones grey)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    history_ax, curves_ax = fig.subplots(1, 2)
    best, xs, ys = 0.0, [], []
    for number, state, values in trials:
        if not values:
            continue
        last = values[max(values)]
        pruned = state == "PRUNED"
        history_ax.scatter([number], [100 * last], marker="x" if pruned else "o",
                           color="grey" if pruned else "C0", s=20)
        if not pruned:
            best = max(best, last)
        xs.append(number)
        ys.append(100 * best)
        steps = sorted(values)
        curves_ax.plot(steps, [100 * values[s] for s in steps], marker="o", ms=3, lw=0.8,
                       color="grey" if pruned else None, alpha=0.6 if pruned else 1.0)
    history_ax.step(xs, ys, where="post", color="C1", label="best so far")
    history_ax.set(xlabel="trial", ylabel=f"{objective_name} accuracy (%)",
                   title="Each trial (x: pruned, at its last epoch)")
    history_ax.legend(fontsize=8)
    curves_ax.set(xlabel="epoch", ylabel=f"{objective_name} accuracy (%)",
                  title="Per epoch (grey: pruned)")
    for ax in (history_ax, curves_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    return fig


def write_search_summary(spec: StudySpec, results: StudyResults, out: Path,
                         trials_md: str = "", select_by: str | None = None) -> list[dict[str, Any]]:
    """Write search.png, summary.csv and summary.md into `out`; return the rows. `select_by`:
    the search's --select-by (real: ranked by the real folders' mean accuracy)."""
    from digitlab.reports.plots import save_figure

    rows = search_rows(results)
    curves = [(t.number, t.state.name, dict(t.intermediate_values)) for t in results.trials]
    pruned = sum(r["state"] == "pruned" for r in rows)
    title = f"search {spec.name}: {len(rows)} trials, {pruned} pruned"
    save_figure(plot_search(curves, title, objective(select_by)[1]), out / "search.png", dpi=100)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "summary.csv", buffer.getvalue())
    write_text(out / "summary.md", _markdown(spec, rows, select_by) + trials_md)
    return rows


def _markdown(spec: StudySpec, rows: Sequence[dict[str, Any]], select_by: str | None) -> str:
    pruned = [r for r in rows if r["state"] == "pruned"]
    key, name = objective(select_by)
    name = "mean real-folder" if key == "real_accuracy" else name
    lines = [
        f"# Search `{spec.name}`", "", *([spec.description, ""] if spec.description else []),
        f"TPE over {', '.join(f.name for f in spec.factors)} from recipe `{spec.recipe}`; "
        f"{len(rows)} trials, {len(pruned)} pruned (median rule on the {name} accuracy after "
        f"each epoch). Trials are ranked by {name} accuracy after their last epoch; the test "
        "set only reports.", "",
        f"| rank | trial | params | {name} accuracy | test accuracy | time (s) |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for i, r in enumerate(ranking(rows, select_by), start=1):
        lines.append(f"| {i} | {r['trial']} | {r['params']} | {100 * r[key]:.2f}% "
                     f"| {100 * r['test_accuracy']:.2f}% | {r['seconds']:.1f} |")
    if pruned:
        lines += ["", "Pruned: " + "; ".join(f"trial {r['trial']} ({r['params']}) after "
                                             f"{r['epochs']} epoch(s)" for r in pruned) + "."]
    lines += ["", "Figure: [search.png](search.png)"]
    return "\n".join(lines) + "\n"
