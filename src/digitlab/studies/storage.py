"""Where a study's trials live: an Optuna study in a SQLite file in the study folder (embedded,
nothing to start) or at any SQLAlchemy URL (PostgreSQL for workers on many machines).

The process that creates the study enqueues its planned runs, once: creating a study of a name
that exists fails in the database, so of several processes started together exactly one does.
The others wait until it has marked the study planned, then add only runs the storage lacks.
A worker records a heartbeat while it trains; one silent for three heartbeats is taken as dead,
its trial failed and re-enqueued (Optuna's RetryHeartbeatStaleTrialCallback), and the run
continues from its last.pt wherever that folder is reachable.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from digitlab.errors import ConfigError, DigitlabError
from digitlab.studies.trials import KEY

if TYPE_CHECKING:
    from optuna import Study
    from optuna.distributions import BaseDistribution
    from optuna.storages import RDBStorage
    from optuna.trial import FrozenTrial

logger = logging.getLogger(__name__)

DB_FILE = "study.db"
HEARTBEAT = 10  # seconds between a training worker's heartbeats
GRACE = 3  # heartbeats missed before a worker counts as dead and its run is retried
MAX_RETRY = 3  # retries of a run whose worker died; a run that kills every worker stops there
JOIN_WAIT = 60.0  # seconds a joining process waits for the creator to enqueue the plan
# Seconds a worker waits out a lost storage connection (a database restarting, a network blip)
# before it gives up; retries back off from 1 s to 30 s. A few minutes covers a restart.
PATIENCE = 300.0
FIRST_RETRY, LAST_RETRY = 1.0, 30.0
KIND, PLANNED, HEARTBEAT_ATTR = "kind", "planned", "heartbeat"  # study user attributes
# a trial to enqueue: its user attributes, params and their distributions
Entry = tuple[dict[str, Any], dict[str, Any], dict[str, "BaseDistribution"]]
T = TypeVar("T")


def import_optuna() -> ModuleType:
    """Optuna, or a one-line error saying how to install it."""
    try:
        import optuna
    except ImportError as e:
        raise ConfigError(f"`digitlab study` runs its trials through Optuna ({e.name} is missing), "
                          "a dependency of digitlab: pip install 'optuna>=4.9'") from None
    return optuna


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's own log lines off: digitlab says what became of each study and run."""
    optuna = import_optuna()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


@contextmanager
def _quiet_experimental() -> Iterator[None]:
    """Heartbeats and retries are marked experimental; digitlab relies on them knowingly."""
    optuna = import_optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def default_storage(out: Path) -> str:
    """The embedded default: a SQLite file in the study folder."""
    return f"sqlite:///{(out / DB_FILE).resolve()}"


def engine_url(url: str) -> str:
    """`url` as SQLAlchemy should open it: postgresql:// through psycopg 3 where psycopg2 is
    not installed; a missing driver or a malformed URL is a one-line error."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"--storage {url!r} is not a database URL; use sqlite:///PATH or "
                          "postgresql://USER@HOST:PORT/DATABASE") from None
    driver = parsed.get_driver_name()  # the URL's, else SQLAlchemy's default for the database
    if parsed.get_backend_name() == "postgresql" and driver in ("psycopg", "psycopg2"):
        installed = [name for name in ("psycopg", "psycopg2") if importlib.util.find_spec(name)]
        if driver not in installed:
            if "+" in parsed.drivername or not installed:
                raise ConfigError(f"a PostgreSQL storage needs the {driver} driver: "
                                  "pip install 'digitlab[postgres]'")
            parsed = parsed.set(drivername=f"postgresql+{installed[0]}")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot make the folder of the study storage {url}: {e}") from None
    return parsed.render_as_string(hide_password=False)


def shown(url: str) -> str:
    """`url` without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_storage(url: str, heartbeat: int | None = None) -> RDBStorage:
    """The storage at `url`; with `heartbeat`, trials record one and dead workers' are retried."""
    optuna = import_optuna()
    from sqlalchemy.exc import SQLAlchemyError

    engine = engine_url(url)
    # SQLite: several processes write one file; wait for the lock rather than fail at once
    kwargs = {"connect_args": {"timeout": 60}} if engine.startswith("sqlite") else {"pool_pre_ping": True}
    retry: dict[str, Any] = {}
    error: Exception | None = None
    with _quiet_experimental():
        if heartbeat is not None:
            callback = optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRY, inherit_intermediate_values=True)
            retry = {"heartbeat_interval": heartbeat, "grace_period": GRACE * heartbeat,
                     "heartbeat_stale_trial_callback": callback}
        for attempt in range(4):
            try:
                storage = optuna.storages.RDBStorage(engine, engine_kwargs=kwargs, **retry)
                if engine.startswith("sqlite"):
                    _serialise_sqlite(storage.engine)
                return storage
            except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
                error = e  # workers starting together race to create the tables: try again
                time.sleep(0.5 * (attempt + 1))
    detail = _detail(error) if error is not None else "?"
    # chained: a worker's `retrying` tells a lost connection (waited out) from a wrong storage
    raise ConfigError(f"cannot open the study storage {shown(url)}: {detail}") from error


def _serialise_sqlite(engine: Any) -> None:
    """Make every transaction on a SQLite study take the write lock when it begins.

    Python's sqlite3 module starts a transaction only at the first write, so the SELECT with
    which a worker finds a waiting trial runs outside it: two workers can both see the trial
    waiting and both take it (and train the same run into the same folder). With BEGIN
    IMMEDIATE the find and the take are one transaction, and workers queue for it (the
    connection's 60 s busy timeout), as SQLAlchemy's pysqlite notes recommend.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made while Optuna created the tables lack the hook


def create_or_join(url: str, name: str, kind: str, heartbeat: int) -> tuple[Study, bool]:
    """The study `name` at `url` and whether this process created it (and so plans it)."""
    optuna = import_optuna()
    storage = open_storage(url)
    try:
        with quiet_optuna():
            study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage)
        found = study.user_attrs.get(KIND, kind)
        if found != kind:
            raise ConfigError(f"study {name} in {shown(url)} is a {found}, not a {kind}; give "
                              "this one another name or --out") from None
        return study, False
    study.set_user_attr(KIND, kind)
    study.set_user_attr(HEARTBEAT_ATTR, heartbeat)
    return study, True


def mark_planned(study: Study) -> None:
    study.set_user_attr(PLANNED, True)


def wait_until_planned(study: Study, timeout: float = JOIN_WAIT) -> None:
    """Give the creating process time to enqueue the plan; after `timeout` (it died), go on:
    the caller adds what is missing."""
    deadline = time.monotonic() + timeout
    while not study.user_attrs.get(PLANNED) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not study.user_attrs.get(PLANNED):
        logger.warning("study %s was created but never planned; planning it here", study.study_name)


def enqueue(study: Study, entries: Sequence[Entry]) -> int:
    """Add a waiting trial per (user attrs, params, distributions) whose key has no trial
    waiting, running or complete; return how many were added. A param whose values changed
    since the study began (Optuna keeps a choice's list fixed) stays in the user attributes only."""
    optuna = import_optuna()
    from digitlab.studies.space import compatible

    states = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING,
              optuna.trial.TrialState.COMPLETE)
    trials = study.get_trials(deepcopy=False)
    live = {t.user_attrs.get(KEY) for t in trials if t.state in states}
    known: dict[str, BaseDistribution] = {}
    for t in trials:
        for param, dist in t.distributions.items():
            known.setdefault(param, dist)
    added = 0
    for attrs, params, dists in entries:
        if attrs[KEY] in live:
            continue
        kept = [p for p in params if p not in known or compatible(known[p], dists[p])]
        for param in sorted(set(params) - set(kept)):
            logger.warning("%s: its values changed since study %s began; not recorded as a param",
                           param, study.study_name)
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING, params={p: params[p] for p in kept},
            distributions={p: dists[p] for p in kept}, user_attrs=attrs))
        known.update({p: dists[p] for p in kept})
        live.add(attrs[KEY])
        added += 1
    return added


def load_for_work(url: str, name: str, sampler: Any = None, pruner: Any = None) -> Study:
    """The study as a worker opens it: with the heartbeat it was created with."""
    optuna = import_optuna()
    plain = optuna.load_study(study_name=name, storage=open_storage(url))
    heartbeat = int(plain.user_attrs.get(HEARTBEAT_ATTR, HEARTBEAT))
    storage = open_storage(url, heartbeat)
    tolerate_heartbeat_loss(storage)
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)


def fail_stale(study: Study) -> None:
    """Fail the trials of workers that stopped sending heartbeats; the retry callback queues
    them again."""
    optuna = import_optuna()
    with _quiet_experimental():
        optuna.storages.fail_stale_trials(study)


def latest_by_key(trials: Sequence[FrozenTrial], keys: set[str]) -> dict[str, FrozenTrial]:
    """For each key, its last complete trial (else its last trial), by number."""
    chosen: dict[str, FrozenTrial] = {}
    for t in sorted(trials, key=lambda t: t.number):
        key = t.user_attrs.get(KEY)
        if key in keys and (key not in chosen or t.state.name == "COMPLETE"
                            or chosen[key].state.name != "COMPLETE"):
            chosen[key] = t
    return chosen


class StorageLost(DigitlabError):
    """The study storage stayed unreachable longer than a worker waits."""


def connection_lost(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a lost or refused database connection, which a
    wait may cure, rather than a damaged or wrong storage."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    while error is not None:
        if isinstance(error, InterfaceError | OperationalError):
            return "malformed" not in str(error) and "not a database" not in str(error)
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return False


def retrying(call: Callable[[], T], url: str, patience: float = PATIENCE) -> T:
    """`call()`, tried again with backoff (1 s doubling to 30 s, one log line each) while the
    storage at `url` is unreachable, for up to `patience` seconds; then StorageLost."""
    deadline, wait = time.monotonic() + patience, FIRST_RETRY
    while True:
        try:
            return call()
        except Exception as e:  # noqa: BLE001 - only lost connections are retried; the rest re-raised
            if not connection_lost(e):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise StorageLost(f"the study storage {shown(url)} was unreachable for over "
                                  f"{patience:g} s ({_detail(e)}); stopping this worker") from None
            wait = min(wait, left)
            logger.warning("study storage %s unreachable (%s); trying again in %.0f s", shown(url),
                           _detail(e), wait)
            time.sleep(wait)
            wait = min(2 * wait, LAST_RETRY)


@contextmanager
def guarded(url: str) -> Iterator[None]:
    """Storage errors that are not lost connections (a damaged SQLite file, tables that are
    not Optuna's) as one line naming the storage."""
    optuna = import_optuna()
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
        if connection_lost(e):
            raise StorageLost(f"the study storage {shown(url)} is unreachable ({_detail(e)})") from None
        raise ConfigError(f"the study storage {shown(url)} is damaged or not a study storage "
                          f"({_detail(e)}); move it away to start the study again") from None


def _detail(error: BaseException) -> str:
    cause = getattr(error, "orig", None) or error.__cause__ or error
    cause = getattr(cause, "orig", None) or cause
    return " ".join(str(cause).split())[:200] or type(cause).__name__


def tolerate_heartbeat_loss(storage: RDBStorage) -> None:
    """A heartbeat that cannot be recorded is skipped with one log line, not a thread dying
    with a traceback: the next one tries again (and a run silent for too long is retried)."""
    record = storage.record_heartbeat

    def record_or_skip(trial_id: int) -> None:
        try:
            record(trial_id)
        except Exception as e:  # noqa: BLE001 - any failure of one heartbeat: log, go on
            logger.warning("heartbeat of trial %d not recorded (%s)", trial_id, _detail(e))

    storage.record_heartbeat = record_or_skip  # type: ignore[method-assign]
