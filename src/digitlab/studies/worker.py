"""A study worker: pull the next waiting trial from the storage, train its run, record the
result; until nothing is waiting and no other worker is still training (one may die: its run is
then retried here). Any number run at once, in processes on one or many machines.

A search worker also draws new trials (TPE) while the study has fewer than it asks for, and
prunes one whose validation accuracy after an epoch is below the median of earlier trials'.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from digitlab.studies import folders, storage
from digitlab.studies.spec import StudySpec
from digitlab.studies.storage import PATIENCE
from digitlab.studies.trials import (
    CONFIG,
    DUPLICATE_OF,
    ERROR,
    KEY,
    RECORD,
    RUN,
    STATUS,
    WORKER,
    comparable,
    record_attrs,
    record_of,
    run_attrs,
    run_of,
    worker_id,
)
from digitlab.training.config import DataConfig, TrainConfig
from digitlab.training.runs import LAST, EpochRecord, RunRecord, load_run

if TYPE_CHECKING:
    from optuna import Study
    from optuna.trial import FrozenTrial, Trial

logger = logging.getLogger(__name__)
LOG = "train.log"
POLL = 2.0  # seconds between looks at the storage while other workers finish
T = TypeVar("T")


@dataclass(frozen=True)
class SearchSettings:
    """A search: how many trials the study should hold, drawn by which sampler, pruned or not."""

    trials: int
    sampler: str = "tpe"
    prune: bool = True
    prune_from: int = 1  # the first epoch after which a trial may be pruned
    seed: int | None = None  # the sampler's; None: each worker draws differently


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process needs (picklable): the study, and how runs are trained here."""

    storage: str
    study: str
    out: Path  # run folders go under it, one per run name
    data: DataConfig  # the data folder here; a search's data settings too
    device: str = "auto"
    threads: int | None = None  # torch threads; None: torch's default
    search: SearchSettings | None = None
    spec: StudySpec | None = None  # what a search draws from
    epochs: int | None = None  # a search's epochs, replacing the base's
    seed: int = 1  # a search's seed
    patience: float = PATIENCE  # seconds to wait out a lost storage connection


@dataclass(frozen=True)
class RunOutcome:
    name: str
    status: str  # trained, resumed, finished before, same as before, pruned, failed, duplicate, idle
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


class _Skipped(Exception):
    """This trial is not to be trained (a duplicate, or nothing was waiting)."""


def work(settings: WorkerSettings) -> list[RunOutcome]:
    """Train trials of the study until it is done; what each trial this worker took became."""
    import torch

    optuna = storage.import_optuna()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    with storage.quiet_optuna():
        study = _patiently(lambda: storage.load_for_work(settings.storage, settings.study,
                                                         *_sampling(settings)), settings)
        outcomes: list[RunOutcome] = []

        def collect(_: Study, trial: FrozenTrial) -> None:
            outcomes.append(_outcome(trial))

        def step() -> bool:
            """Train a waiting trial, or wait for others' to finish; False when all are done."""
            storage.fail_stale(study)
            if _has_work(study, settings):
                study.optimize(lambda trial: _objective(trial, settings), n_trials=1,
                               catch=(Exception,), callbacks=[collect], gc_after_trial=False)
            elif study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                time.sleep(POLL)
            else:
                return False
            return True

        # A lost connection (anywhere in a step) is waited out; a trial it left RUNNING stops
        # sending heartbeats and is retried, continuing from its last.pt.
        while _patiently(step, settings):
            pass
        return outcomes


def _patiently(call: Callable[[], T], settings: WorkerSettings) -> T:
    return storage.retrying(call, settings.storage, settings.patience)


def pending(study: Study, settings: WorkerSettings) -> bool:
    """Whether a worker would find anything to do or wait for."""
    optuna = storage.import_optuna()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return bool(running) or _has_work(study, settings)


def _sampling(settings: WorkerSettings) -> tuple[Any, Any]:
    """The sampler and pruner: a search's TPE and median pruner; a plan draws nothing and
    prunes nothing."""
    optuna = storage.import_optuna()
    search = settings.search
    if search is None:
        return None, optuna.pruners.NopPruner()
    # TPE's first trials are random; a short search should not spend most of its budget so
    startup = min(10, max(2, search.trials // 3))
    sampler = optuna.samplers.TPESampler(seed=search.seed, n_startup_trials=startup)
    pruner = (optuna.pruners.MedianPruner(n_warmup_steps=search.prune_from) if search.prune
              else optuna.pruners.NopPruner())
    return sampler, pruner


def _has_work(study: Study, settings: WorkerSettings) -> bool:
    """A trial is waiting, or a search holds fewer trials than it asks for (a trial that failed
    by itself counts; one whose worker died is retried, so it does not)."""
    optuna = storage.import_optuna()
    trials = study.get_trials(deepcopy=False)
    if any(t.state == optuna.trial.TrialState.WAITING for t in trials):
        return True
    if settings.search is None:
        return False
    held = [t for t in trials if t.state != optuna.trial.TrialState.FAIL or ERROR in t.user_attrs]
    return len(held) < settings.search.trials


def _objective(trial: Trial, settings: WorkerSettings) -> float:
    """Train the run `trial` stands for (drawing its settings first in a search); a failure
    is recorded in the trial, in one line."""
    optuna = storage.import_optuna()
    try:
        return _take(trial, settings)
    except (_Skipped, optuna.TrialPruned):
        raise
    except Exception as e:
        trial.set_user_attr(STATUS, "failed")
        trial.set_user_attr(ERROR, _one_line(e))
        raise


def _take(trial: Trial, settings: WorkerSettings) -> float:
    attrs = trial.user_attrs
    if CONFIG not in attrs:
        if settings.search is None or settings.spec is None:
            trial.set_user_attr(STATUS, "idle")  # another worker took the last waiting run
            raise _Skipped("nothing was waiting")
        from digitlab.studies.space import draw

        chosen, config = draw(trial, settings.spec, settings.epochs, settings.seed, settings.device)
        for key, value in run_attrs(f"trial-{trial.number:03d}", chosen, config, settings.data).items():
            trial.set_user_attr(key, value)
        attrs = trial.user_attrs
    trial.set_user_attr(WORKER, worker_id())
    twin = _twin(trial, attrs[KEY])
    if twin is not None:
        return _follow(trial, twin, settings)
    config, data = run_of(attrs, settings.data.root, settings.device)
    # The run's name comes from the storage: checked to name a folder inside the study's
    run_dir = folders.run_folder(settings.out, str(attrs[RUN]))
    return _train_trial(trial, config, data, run_dir, settings)


def _twin(trial: Trial, key: str) -> FrozenTrial | None:
    """Another trial of the same run that has it: a finished one, or (several processes having
    enqueued the run at once) an earlier one not failed. The lowest number trains, so of any
    twins taken at the same moment exactly one does."""
    optuna = storage.import_optuna()
    state = optuna.trial.TrialState
    for other in trial.study.get_trials(deepcopy=False):
        if other.number == trial.number or other.user_attrs.get(KEY) != key:
            continue
        if other.state in (state.COMPLETE, state.PRUNED) or (
                other.state != state.FAIL and other.number < trial.number):
            return other
    return None


def _follow(trial: Trial, twin: FrozenTrial, settings: WorkerSettings) -> float:
    """A run already trained by `twin` is not trained again: a search (which may draw the same
    settings twice) takes its result; a planned run's extra trial stands down."""
    optuna = storage.import_optuna()
    if twin.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) \
            or settings.search is None:
        trial.set_user_attr(DUPLICATE_OF, twin.number)
        trial.set_user_attr(STATUS, "duplicate")
        raise _Skipped(f"trial {twin.number} has this run")
    for step, value in sorted(twin.intermediate_values.items()):
        trial.report(value, step)
    if RECORD in twin.user_attrs:
        trial.set_user_attr(RECORD, twin.user_attrs[RECORD])
    trial.set_user_attr(STATUS, f"same as trial {twin.number}")
    if twin.state == optuna.trial.TrialState.PRUNED:
        raise optuna.TrialPruned(f"as trial {twin.number}")
    assert twin.value is not None
    return twin.value


def run_state(config: TrainConfig, data: DataConfig, run_dir: Path) -> str:
    """"new", "finished", "resume" (a last.pt with the same settings) or "changed"."""
    from digitlab.errors import DigitlabError

    try:
        saved = load_run(run_dir, partial=True)
    except DigitlabError:
        return "new"
    saved_data = saved.data if saved.data is not None else DataConfig(root=data.root)  # recorded none
    if comparable(saved.config) != comparable(config) or replace(saved_data, root=data.root) != data:
        return "changed"
    if len(saved.history.epochs) >= config.epochs:
        return "finished"
    return "resume" if (run_dir / LAST).is_file() else "new"


def _train_trial(trial: Trial, config: TrainConfig, data: DataConfig, run_dir: Path,
                 settings: WorkerSettings) -> float:
    """Train (or resume, or read back) the run in `run_dir`, reporting each epoch to `trial`;
    the trial keeps the run's record, also when pruned or failed part-way."""
    optuna = storage.import_optuna()
    state = run_state(config, data, run_dir)
    if state == "changed":
        logger.warning("%s: settings changed since it ran; starting it again", run_dir.name)
        folders.remove_run(settings.out, run_dir)
    status = {"finished": "finished before", "resume": "resumed"}.get(state, "trained")
    trial.set_user_attr(STATUS, status)
    try:
        if state in ("finished", "resume"):  # the epochs done before, for this trial's curve
            record = load_run(run_dir, partial=True)
            with warnings.catch_warnings():  # a retried trial may hold them: Optuna keeps those
                warnings.simplefilter("ignore")
                for epoch in record.history.epochs:
                    trial.report(epoch.selection_score(data.select_by), epoch.epoch)
        if state != "finished":
            record = _train(config, data, run_dir, state == "resume",
                            _reporter(trial, settings, data.select_by))
    except optuna.TrialPruned:
        _keep_record(trial, run_dir)
        trial.set_user_attr(STATUS, "pruned")
        raise
    except Exception:
        _keep_record(trial, run_dir)
        raise
    for key, value in record_attrs(record).items():
        trial.set_user_attr(key, value)
    return record.history.epochs[-1].selection_score(data.select_by)


def _reporter(trial: Trial, settings: WorkerSettings,
              select_by: str | None) -> Callable[[EpochRecord], None]:
    """The trainer's per-epoch hook: report the epoch's score by `select_by` (the run's
    --select-by; waiting out a lost storage connection); stop here if the pruner says so."""
    optuna = storage.import_optuna()

    def report(epoch: EpochRecord) -> None:
        _patiently(lambda: trial.report(epoch.selection_score(select_by), epoch.epoch), settings)
        if _patiently(trial.should_prune, settings):
            raise optuna.TrialPruned(f"pruned after epoch {epoch.epoch}")

    return report


def _keep_record(trial: Trial, run_dir: Path) -> None:
    from digitlab.errors import DigitlabError

    try:
        record = load_run(run_dir)
    except DigitlabError:
        return  # no epoch finished
    for key, value in record_attrs(record).items():
        trial.set_user_attr(key, value)


def _train(config: TrainConfig, data: DataConfig, run_dir: Path, resume: bool,
           on_epoch: Callable[[EpochRecord], None]) -> RunRecord:
    """Train in this process, the run's log lines in its folder rather than on the console."""
    from digitlab.reports.plots import write_run_plot
    from digitlab.training import trainer

    optuna = storage.import_optuna()
    with _run_log(run_dir):
        try:
            record = trainer.train(config, data, run_dir, resume=resume, on_epoch=on_epoch)
            write_run_plot(record)
            return record
        except optuna.TrialPruned:
            raise
        except Exception:
            logging.getLogger("digitlab").exception("run %s failed", run_dir.name)
            raise


@contextmanager
def _run_log(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    package = logging.getLogger("digitlab")
    handler = logging.FileHandler(run_dir / LOG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    saved = package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False  # per-epoch lines go to the run's log; the study says one per run
    # ...but a storage outage is the operator's business: its lines reach the console too
    outage = logging.getLogger(storage.__name__)
    console = [h for h in logging.getLogger().handlers if h not in outage.handlers]
    for h in console:
        outage.addHandler(h)
    try:
        yield
    finally:
        for h in console:
            outage.removeHandler(h)
        package.removeHandler(handler)
        handler.close()
        package.setLevel(saved[0])
        package.propagate = saved[1]


def _outcome(trial: FrozenTrial) -> RunOutcome:
    attrs = trial.user_attrs
    name, status = attrs.get(RUN, f"trial-{trial.number:03d}"), attrs.get(STATUS, trial.state.name.lower())
    record = record_of(trial)
    if status == "failed":
        logger.error("%s: failed: %s", name, attrs.get(ERROR, ""))
    elif record is not None and record.history.epochs:
        last = record.history.epochs[-1]
        score = "" if last.val_accuracy is None else f", validation {100 * last.val_accuracy:.2f}%"
        score += "" if last.real_mean is None else f", real {100 * last.real_mean:.2f}%"
        logger.info("%s: %s (trial %d), test accuracy %.2f%%%s after %d epoch(s)", name, status,
                    trial.number, 100 * last.accuracy, score, last.epoch)
    elif status not in ("idle",):
        logger.info("%s: %s (trial %d)", name, status, trial.number)
    return RunOutcome(name, status, attrs.get(ERROR, ""))


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
