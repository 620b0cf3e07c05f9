"""A study's results: one figure per factor, summary.csv, summary.md and a ranking, from the run
records its storage holds (digitlab.studies.results)."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitlab.files import write_text
from digitlab.models import model_arguments
from digitlab.studies.spec import PlannedRun, StudySpec, value_label
from digitlab.training.runs import RunRecord

COLUMNS = ("run", "factor", "value", "seed", "epochs", "final_accuracy", "best_accuracy",
           "seconds", "images_per_s", "parameters", "final_real")


@dataclass
class StudyReport:
    rows: list[dict[str, Any]]  # one per run that has metrics, in plan order
    ranking: list[dict[str, Any]]  # variants (means over seeds), best final `by` first
    missing: list[str] = field(default_factory=list)  # planned runs without metrics
    figures: list[Path] = field(default_factory=list)
    by: str = "final_accuracy"  # what ranks: test accuracy, or final_real (--select-by real)


def _variant(run: PlannedRun) -> tuple[str, str]:
    if run.is_reference:
        return "reference", ""
    return "+".join(n for n, _ in run.settings), ", ".join(lbl for _, lbl in run.settings)


def summarise(plan: Sequence[PlannedRun], records: Mapping[str, RunRecord],
              select_by: str | None = None) -> StudyReport:
    """Each planned run's record (by run name): rows per run and the ranking, by final test
    accuracy or, where the study picks by real folders (`select_by` real), by their mean."""
    rows, missing = [], []
    for run in plan:
        record = records.get(run.name)
        epochs = record.history.epochs if record is not None else []
        if record is None or not epochs:
            missing.append(run.name)
            continue
        factor, value = _variant(run)
        rows.append({
            "run": run.name, "factor": factor, "value": value, "seed": run.seed,
            "epochs": len(epochs), "final_accuracy": epochs[-1].accuracy,
            "best_accuracy": record.history.best_accuracy,
            "seconds": record.history.total_seconds,
            "images_per_s": statistics.fmean(e.images_per_s for e in epochs),
            "parameters": record.parameters, "final_real": epochs[-1].real_mean,
        })
    by = "final_real" if select_by == "real" else "final_accuracy"
    return StudyReport(rows=rows, ranking=rank(rows, by), missing=missing, by=by)


def rank(rows: Sequence[dict[str, Any]], by: str = "final_accuracy") -> list[dict[str, Any]]:
    """Variants by the mean of `by` (final test accuracy, or final_real: the real folders')
    over their seeds, with its spread and the gap to the reference."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["factor"], row["value"]), []).append(row)
    ranking: list[dict[str, Any]] = []
    for (factor, value), members in groups.items():
        if any(r[by] is None for r in members):
            continue  # not judged by real folders: nothing to rank it by
        finals = [r[by] for r in members]
        reals = [r["final_real"] for r in members]
        ranking.append({
            "variant": "reference" if factor == "reference" else _describe(factor, value),
            "seeds": len(members),
            "final_accuracy": statistics.fmean(r["final_accuracy"] for r in members),
            "final_real": statistics.fmean(reals) if None not in reals else None,
            "final_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
            "best_accuracy": statistics.fmean(r["best_accuracy"] for r in members),
            "seconds": statistics.fmean(r["seconds"] for r in members),
        })
    reference = next((r[by] for r in ranking if r["variant"] == "reference"), None)
    for entry in ranking:
        entry["vs_reference"] = None if reference is None else entry[by] - reference
    return sorted(ranking, key=lambda r: (-r[by], r["seconds"]))


def _describe(factor: str, value: str) -> str:
    names, labels = factor.split("+"), value.split(", ")
    if len(names) != len(labels):
        return f"{factor}={value}"
    return ", ".join(f"{n}={lbl}" for n, lbl in zip(names, labels, strict=True))


def write_study_summary(spec: StudySpec, plan: Sequence[PlannedRun], records: Mapping[str, RunRecord],
                        out: Path, trials: str = "", select_by: str | None = None) -> StudyReport:
    """Write `<factor>.png` per factor, summary.csv and summary.md (ending with `trials`, the
    storage's trial table in Markdown) into `out`; ranked by real folders if `select_by` real."""
    from digitlab.reports.plots import save_figure

    report = summarise(plan, records, select_by)
    for factor, fig in factor_figures(spec, plan, records):
        path = out / f"{factor}.png"
        save_figure(fig, path, dpi=100)
        report.figures.append(path)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.rows)
    write_text(out / "summary.csv", buffer.getvalue())
    write_text(out / "summary.md", format_markdown(spec, plan, report) + trials)
    return report


def factor_figures(spec: StudySpec, plan: Sequence[PlannedRun],
                   records: Mapping[str, RunRecord]) -> list[tuple[str, Any]]:
    """Per factor, the tutorial's two panels: the reference run and the runs that change only
    that factor (grid: with every other factor at its first value); first seed only."""
    from digitlab.reports.plots import plot_performance

    seed = plan[0].seed if plan else 0
    reference = next((r for r in plan if r.is_reference and r.seed == seed), None)
    figures = []
    for factor in spec.factors:
        firsts = {f.name: f.values[0][0] for f in spec.factors if f.name != factor.name}
        chosen = [r for r in plan if r.seed == seed and not r.is_reference
                  and factor.name in dict(r.settings)
                  and all(dict(r.settings).get(n, lbl) == lbl for n, lbl in firsts.items())]
        runs, labels = _loaded(([reference] if reference else []) + chosen, records, factor.name)
        if len(runs) < 2:
            continue  # nothing to compare (runs failed or missing)
        title = f"study {spec.name}: {factor.name}" + (f" (seed {seed})" if len(spec.seeds) > 1 else "")
        figures.append((factor.name, plot_performance(runs, labels=labels, title=title)))
    return figures


def _loaded(plan: Sequence[PlannedRun], records: Mapping[str, RunRecord],
            factor: str) -> tuple[list[RunRecord], list[str]]:
    runs, labels = [], []
    for run in plan:
        record = records.get(run.name)
        if record is None:
            continue
        if run.is_reference:
            args = {**model_arguments(run.config.model), **run.config.model_args,
                    **run.config.to_dict()}
            base = f" ({factor}={value_label(args[factor])})" if factor in args else ""
            labels.append(f"reference{base}")
        else:
            labels.append(", ".join(f"{n}={lbl}" for n, lbl in run.settings))
        runs.append(record)
    return runs, labels


def format_ranking(report: StudyReport) -> str:
    """The ranking as plain text lines, best first."""
    lines = []
    for i, r in enumerate(report.ranking, start=1):
        gap = "" if r["vs_reference"] is None else f" ({100 * r['vs_reference']:+.2f})"
        spread = f" ± {100 * r['final_std']:.2f}" if r["seeds"] > 1 else ""
        test = f"  test {100 * r['final_accuracy']:.2f}%" if report.by == "final_real" else ""
        lines.append(f"{i:>2}. {r['variant']:<32} {100 * r[report.by]:6.2f}%{spread}{gap}{test}"
                     f"  best {100 * r['best_accuracy']:.2f}%  {r['seconds']:.0f} s")
    return "\n".join(lines)


def ranked_by(report: StudyReport) -> str:
    """What the ranking goes by, in words."""
    return "final mean real-folder accuracy" if report.by == "final_real" else "final test accuracy"


def format_markdown(spec: StudySpec, plan: Sequence[PlannedRun], report: StudyReport) -> str:
    flat = {**{k: v for k, v in spec.base.items() if k != "model_args"},
            **(spec.base.get("model_args") or {})}
    base = ", ".join(f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in flat.items())
    base = f" with {base}" if base else ""
    seeds = sorted({r.seed for r in plan})
    lines = [
        f"# Study `{spec.name}`", "",
        *([spec.description, ""] if spec.description else []),
        f"{spec.mode}; base: recipe `{spec.recipe}`{base}; seed(s) {', '.join(map(str, seeds))}; "
        f"{len(plan)} runs. Accuracy is on the test set after the last epoch (final) and at the "
        "best epoch; time is training plus testing, without start-up; images/s is training "
        "throughput.", "",
        "| run | factor | value | seed | epochs | final accuracy | best accuracy | time (s) "
        "| images/s | parameters |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.rows:
        lines.append(
            f"| {r['run']} | {r['factor']} | {r['value']} | {r['seed']} | {r['epochs']} "
            f"| {100 * r['final_accuracy']:.2f}% | {100 * r['best_accuracy']:.2f}% "
            f"| {r['seconds']:.1f} | {r['images_per_s']:,.0f} | {r['parameters'] or 0:,} |"
        )
    real = report.by == "final_real"
    lines += ["", f"## Ranking by {ranked_by(report)}" + (" (mean over seeds)" if len(seeds) > 1 else ""),
              "", f"| rank | variant | final{' real' if real else ''} accuracy | vs reference "
              f"|{' final test accuracy |' if real else ''} best accuracy | time (s) |",
              "|---:|---|---:|---:|---:|---:|" + ("---:|" if real else "")]
    for i, r in enumerate(report.ranking, start=1):
        spread = f" ± {100 * r['final_std']:.2f}" if r["seeds"] > 1 else ""
        gap = "" if r["vs_reference"] is None else f"{100 * r['vs_reference']:+.2f}"
        test = f" {100 * r['final_accuracy']:.2f}% |" if real else ""
        lines.append(f"| {i} | {r['variant']} | {100 * r[report.by]:.2f}%{spread} | {gap} |{test}"
                     f" {100 * r['best_accuracy']:.2f}% | {r['seconds']:.1f} |")
    if report.missing:
        lines += ["", f"Not finished (failed or not run yet): {', '.join(report.missing)}."]
    if report.figures:
        lines += ["", "Figures: " + ", ".join(f"[{p.name}]({p.name})" for p in report.figures)]
    return "\n".join(lines) + "\n"
