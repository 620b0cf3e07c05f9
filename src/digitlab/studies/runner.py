"""Running a study's plan (parallel processes, resumable) and summarising its run folders.

Each run is a normal run folder under the study folder, trained by digitlab.training.trainer.train.
A run whose metrics.json shows all its epochs is not redone; one with a last.pt continues
from it; one whose settings changed since starts again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from digitlab.errors import DigitlabError
from digitlab.studies.spec import PlannedRun, StudySpec
from digitlab.training.config import DataConfig, TrainConfig
from digitlab.training.runs import LAST, load_run

logger = logging.getLogger(__name__)
LOG = "train.log"
NOT_COMPARED = ("device", "progress")  # where a run executes does not change what it learns


@dataclass(frozen=True)
class RunTask:
    """What a worker process needs to train one run (picklable)."""

    name: str
    config: TrainConfig
    data: DataConfig
    run_dir: Path
    resume: bool
    threads: int | None  # torch threads in the worker; None: leave torch's default


@dataclass(frozen=True)
class RunOutcome:
    name: str
    status: str  # "trained", "resumed", "finished before" or "failed"
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def default_study_dir(spec: StudySpec) -> Path:
    return Path("runs") / f"study-{spec.name}"


def run_state(run: PlannedRun, data: DataConfig, run_dir: Path) -> str:
    """"new", "finished", "resume" (a last.pt with the same settings) or "changed"."""
    try:
        saved = load_run(run_dir, partial=True)
    except DigitlabError:
        return "new"
    if _comparable(saved.config) != _comparable(run.config) or not _same_data(saved.data, data):
        return "changed"
    if len(saved.history.epochs) >= run.config.epochs:
        return "finished"
    return "resume" if (run_dir / LAST).is_file() else "new"


def _comparable(config: TrainConfig) -> Any:
    values = {k: v for k, v in config.to_dict().items() if k not in NOT_COMPARED}
    return json.loads(json.dumps(values))  # as config.json holds them: tuples read back as lists


def _same_data(saved: DataConfig | None, data: DataConfig) -> bool:
    """The same data set, limits and validation split; where the files live does not matter."""
    saved = saved if saved is not None else DataConfig(root=data.root)  # recorded no data settings
    return dataclasses.replace(saved, root=data.root) == data


def run_study(plan: list[PlannedRun], data: DataConfig, out: Path, jobs: int) -> list[RunOutcome]:
    """Train every run of `plan` not finished before, up to `jobs` at once; never raises for
    one run's failure (its outcome says why)."""
    outcomes, tasks = [], []
    for run in plan:
        run_dir = out / run.name
        state = run_state(run, data, run_dir)
        if state == "finished":
            logger.info("%s: finished before, not redone", run.name)
            outcomes.append(RunOutcome(run.name, "finished before"))
            continue
        if state == "changed":
            logger.warning("%s: settings changed since it ran; starting it again", run.name)
            shutil.rmtree(run_dir)
        tasks.append(RunTask(run.name, run.config, data, run_dir, state == "resume", None))
    if not tasks:
        return outcomes
    jobs = max(1, min(jobs, len(tasks)))
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    tasks = [RunTask(t.name, t.config, t.data, t.run_dir, t.resume, threads) for t in tasks]
    logger.info("%d run(s) to train, %d at a time%s", len(tasks), jobs,
                f", {threads} thread(s) each" if threads else "")
    bar = tqdm(total=len(tasks), desc="study", unit="run")
    try:
        for outcome in _execute(tasks, jobs):
            outcomes.append(outcome)
            if outcome.failed:
                bar.write(f"{outcome.name}: failed: {outcome.message}")
            bar.update(1)
    finally:
        bar.close()
    return outcomes


def _execute(tasks: list[RunTask], jobs: int) -> Any:
    if jobs == 1:
        yield from (train_run(task) for task in tasks)
        return
    # spawn, not fork: a forked child of a process that already ran torch can hang in OpenMP
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures: dict[Future[RunOutcome], RunTask] = {pool.submit(train_run, t): t for t in tasks}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as e:  # the worker itself died (memory, a signal)
                yield RunOutcome(futures[future].name, "failed", _one_line(e))


def train_run(task: RunTask) -> RunOutcome:
    """Train one run in this process, its log in the run folder; failures become outcomes."""
    import torch

    from digitlab.training.trainer import train

    if task.threads is not None:
        torch.set_num_threads(task.threads)
    task.run_dir.mkdir(parents=True, exist_ok=True)
    package = logging.getLogger("digitlab")
    handler = logging.FileHandler(task.run_dir / LOG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    saved = package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False  # per-epoch lines go to the run's log; the study shows a bar
    try:
        train(task.config, task.data, task.run_dir, resume=task.resume)
        return RunOutcome(task.name, "resumed" if task.resume else "trained")
    except Exception as e:  # one run's failure must not stop the others
        package.exception("run %s failed", task.name)
        return RunOutcome(task.name, "failed", _one_line(e))
    finally:
        package.removeHandler(handler)
        handler.close()
        package.setLevel(saved[0])
        package.propagate = saved[1]


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
