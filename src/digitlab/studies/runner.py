"""Running a study: its trials in an Optuna study (SQLite in the study folder, or `--storage`),
trained by `jobs` worker processes here and by any other `digitlab study` pointed at the same
storage, on this machine or another.

A plan (one factor at a time, a grid, seeds) is enqueued once, a trial per planned run; a search
enqueues the base as its first trial and lets TPE draw the rest. Each run is a normal run folder
under the study folder: one finished before is not redone, one with a last.pt continues from
it, one whose settings changed since starts again.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitlab.data.splits import VALIDATION_SIZE
from digitlab.errors import ConfigError, DigitlabError
from digitlab.processes import cap_jobs, exit_with_parent
from digitlab.studies import folders, storage
from digitlab.studies.spec import PlannedRun, StudySpec, plan_runs, run_config
from digitlab.studies.storage import HEARTBEAT, PATIENCE
from digitlab.studies.trials import data_values, run_attrs
from digitlab.studies.worker import RunOutcome, SearchSettings, WorkerSettings, pending, work
from digitlab.training.config import DataConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyOptions:
    """How a study runs: where its trials and run folders live, how many workers train here."""

    out: Path  # the study folder: run folders, summaries, and by default the storage
    storage: str | None = None  # an SQLAlchemy URL; None: SQLite in `out`
    jobs: int = 1  # worker processes here (1: this process)
    threads: int | None = None  # torch threads per worker; None: cores ÷ jobs
    heartbeat: int = HEARTBEAT  # seconds; a study keeps the one it was created with
    epochs: int | None = None  # replaces the base's epochs (an epochs factor keeps its ratio)
    device: str = "auto"
    search: SearchSettings | None = None  # None: train the spec's plan
    restart: bool = False  # take over a study folder that another study (spec) owns
    patience: float = PATIENCE  # seconds a worker waits out a lost storage connection

    @property
    def storage_url(self) -> str:
        return self.storage or storage.default_storage(self.out)


@dataclass(frozen=True)
class StudyRun:
    """A study as run here: its name and storage, what was planned, the data settings."""

    name: str  # in the storage
    storage: str
    plan: list[PlannedRun]  # empty for a search
    data: DataConfig
    outcomes: list[RunOutcome]  # of the trials this process trained itself (jobs = 1)


def default_study_dir(spec: StudySpec, search: SearchSettings | None = None) -> Path:
    return Path("runs") / f"study-{study_name(spec, search)}"


def study_name(spec: StudySpec, search: SearchSettings | None) -> str:
    """The study's name in the storage; a search is a study of its own beside the plan."""
    return spec.name if search is None else f"{spec.name}-search"


def search_data(data: DataConfig) -> DataConfig:
    """A search picks by validation accuracy, so the test set only reports: hold out the
    validation split unless asked for another size; or by the --val-real folders' mean
    accuracy (`--select-by real`), which needs no split. Never by the test set."""
    if data.select_by == "test":
        raise ConfigError("a search never picks by the test set: leave --select-by out (the "
                          "validation split) or pick by real folders (--select-by real)")
    if data.val_split or data.select_by == "real":
        return data
    if data.train_limit is not None and data.train_limit <= VALIDATION_SIZE:
        raise ConfigError(f"a search holds out a validation split ({VALIDATION_SIZE:,} images) to pick "
                          f"by; --train-limit {data.train_limit} leaves none to train on: give "
                          "--val-split N with N below it")
    return dataclasses.replace(data, val_split=VALIDATION_SIZE)


def run_study(spec: StudySpec, data: DataConfig, options: StudyOptions) -> StudyRun:
    """Enqueue `spec`'s runs (once, whoever else runs this study) and train trials until the
    study is done; one run's failure never stops the others (its outcome says why)."""
    url, search = options.storage_url, options.search
    name = study_name(spec, search)
    folders.claim(options.out, name, owner_values(spec, data, options), options.restart)
    with storage.guarded(url):
        return _run(spec, data, options, name)


def owner_values(spec: StudySpec, data: DataConfig, options: StudyOptions) -> dict[str, Any]:
    """What makes a study's runs what they are: its spec, epochs, data settings, plan or search."""
    return {"spec": dataclasses.asdict(spec), "epochs": options.epochs, "data": data_values(data),
            "search": options.search is not None}


def _run(spec: StudySpec, data: DataConfig, options: StudyOptions, name: str) -> StudyRun:
    url, search = options.storage_url, options.search
    plan = plan_runs(spec, epochs=options.epochs, device=options.device) if search is None else []
    if search is not None:
        from digitlab.studies.space import check_search

        check_search(spec)
        data = search_data(data)
    study, created = storage.create_or_join(url, name, "search" if search else "plan",
                                            options.heartbeat)
    if not created:
        storage.wait_until_planned(study)
    entries = _plan_entries(plan, data) if search is None else _reference_entry(spec, data, options)
    if created or search is None:
        added = storage.enqueue(study, entries)
        logger.info("study %s in %s: %d of %d run(s) enqueued%s", name, storage.shown(url), added,
                    len(entries), "" if added == len(entries) else " (the others have trials)")
    if created:
        storage.mark_planned(study)
    seed = spec.seeds[0] if spec.seeds else run_config(spec, (), None, options.device).seed
    settings = WorkerSettings(storage=url, study=name, out=options.out, data=data,
                              device=options.device, search=search, spec=spec,
                              epochs=options.epochs, seed=seed, patience=options.patience)
    if not pending(study, settings):
        logger.info("study %s: nothing to train", name)
        return StudyRun(name, url, plan, data, [])
    runs = len(plan) if search is None else search.trials
    return StudyRun(name, url, plan, data, _execute(settings, options, runs))


def _plan_entries(plan: list[PlannedRun], data: DataConfig) -> list[storage.Entry]:
    from digitlab.studies.space import plan_params

    return [(run_attrs(run.name, run.settings, run.config, data), params, dists)
            for run, (params, dists) in zip(plan, plan_params(plan), strict=True)]


def _reference_entry(spec: StudySpec, data: DataConfig, options: StudyOptions) -> list[storage.Entry]:
    """The base as a search's first trial, where the search space holds its values."""
    from digitlab.studies.space import base_params, search_space

    base = run_config(spec, (), options.epochs, options.device)
    if spec.seeds:
        base = dataclasses.replace(base, seed=spec.seeds[0])
    params = base_params(spec, base)
    if params is None:
        logger.info("the base lies outside the search space; the search starts from random draws")
        return []
    space = search_space(spec)
    return [(run_attrs("reference", (), base, data), params, {k: space[k] for k in params})]


def _execute(settings: WorkerSettings, options: StudyOptions, runs: int) -> list[RunOutcome]:
    """Work here: in this process for one job, else in `jobs` processes (whose outcomes the
    storage holds: a process that dies loses nothing but its run, which another retries);
    never more processes than runs, nor than processes.cap_jobs allows."""
    jobs = cap_jobs(max(1, options.jobs))
    if jobs > runs:
        logger.info("--jobs %d: %d worker(s), one per run", options.jobs, runs)
        jobs = max(1, runs)
    threads = options.threads or (max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None)
    settings = dataclasses.replace(settings, threads=threads)
    logger.info("%d worker(s) here%s", jobs, f", {threads} torch thread(s) each" if threads else "")
    if jobs == 1:
        return work(settings)
    # spawn, not fork: a forked child of a process that already ran torch can hang in OpenMP
    context = multiprocessing.get_context("spawn")
    level = logging.getLogger("digitlab").getEffectiveLevel()
    workers = [context.Process(target=_work_in_process, args=(settings, level, os.getpid()),
                               name=f"worker-{i}")
               for i in range(jobs)]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
        if process.exitcode:
            logger.error("%s stopped with exit code %s; any run it held is retried",
                         process.name, process.exitcode)
    if all(process.exitcode for process in workers):
        raise DigitlabError(f"every worker stopped ({len(workers)}): the study is unfinished; run "
                            "the same command again to continue it")
    return []


def _work_in_process(settings: WorkerSettings, level: int, parent: int) -> None:
    """A spawned worker: log as the command that started it; a DigitlabError is one line;
    stopped when the command is."""
    exit_with_parent(parent)
    logging.basicConfig(level=level, format="%(message)s", force=True)
    try:
        with storage.guarded(settings.storage):
            work(settings)
    except DigitlabError as e:
        logger.error("digitlab: error: %s", e)
        sys.exit(1)
