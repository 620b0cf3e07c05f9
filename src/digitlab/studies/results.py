"""A study's results as its storage holds them: the record of each planned run, the trial table
(who trained what, what became of it), the runs that failed; from any machine that reaches the
storage, whether or not it holds the run folders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from digitlab.studies import storage
from digitlab.studies.trials import ERROR, KEY, RUN, describe_trial, record_of, run_key
from digitlab.training.runs import RunRecord

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from digitlab.studies.runner import StudyRun


@dataclass
class StudyResults:
    records: dict[str, RunRecord]  # by run name: the runs finished (a search: and pruned)
    trials: list[FrozenTrial]  # the study's trials that are this plan's (a search: all), by number
    failed: dict[str, str]  # run -> why, for runs whose last trial failed by itself


def read_results(run: StudyRun) -> StudyResults:
    """Read the storage: for a plan, each planned run's latest complete trial; for a search,
    every trial."""
    optuna = storage.import_optuna()
    study = optuna.load_study(study_name=run.name, storage=storage.open_storage(run.storage))
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    if run.plan:
        keys = {run_key(r.config, run.data): r.name for r in run.plan}
        # and trials of no run: a worker that found nothing waiting, said so here
        trials = [t for t in trials if t.user_attrs.get(KEY, "") in {"", *keys}]
        chosen = storage.latest_by_key(trials, set(keys))
        names = {key: name for key, name in keys.items() if key in chosen}
        picked = {names[k]: t for k, t in chosen.items()}
    else:
        picked = {t.user_attrs.get(RUN, f"trial-{t.number:03d}"): t for t in trials
                  if t.state.is_finished()}
    records, failed = {}, {}
    for name, trial in picked.items():
        record = record_of(trial)
        if trial.state.name in ("COMPLETE", "PRUNED") and record is not None:
            records[name] = record
        elif trial.state.name == "FAIL" and ERROR in trial.user_attrs:
            failed[name] = trial.user_attrs[ERROR]
    return StudyResults(records, trials, failed)


def trial_table(trials: list[FrozenTrial]) -> str:
    """The storage's trials as a Markdown table: number, state, run, params, value, status, worker."""
    lines = ["", "## Trials in the storage", "",
             "| trial | state | run | params | value | status | worker |",
             "|---:|---|---|---|---:|---|---|"]
    for trial in trials:
        row = describe_trial(trial)
        params = ", ".join(f"{k}={_short(v)}" for k, v in row["params"].items())
        value = "" if row["value"] is None else f"{row['value']:.4f}"
        status = "; ".join(x for x in (row["status"], row["note"]) if x)
        lines.append(f"| {row['number']} | {row['state']} | {row['run']} | {params} | {value} "
                     f"| {status} | {row['worker']} |")
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value) if not isinstance(
        value, str) else value
