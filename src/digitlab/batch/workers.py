"""Worker processes for `classify`: a function mapped over chunks of inputs on every core,
results in input order, with a bounded number of chunks in flight (memory stays flat however
many inputs there are).

On Linux the workers are forked from this process once it has imported what they run, as
PyTorch's DataLoader forks its workers: they start at once and share those pages, and as
they are forked before a model is loaded, they never hold one. Elsewhere they start from a
fork server (macOS) or are spawned (Windows).
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from digitlab.errors import DigitlabError
from digitlab.processes import exit_with_parent

Item = TypeVar("Item")
Result = TypeVar("Result")


def default_jobs() -> int:
    """One worker per core this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def chunked(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Lists of `size` consecutive items (the last may be shorter), taken lazily."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _start_worker(parent: int) -> None:
    # Ctrl-C reaches the whole process group: the main process stops the pool, and workers
    # should not each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent)  # classify killed (even by SIGKILL): its workers go too


def worker_context(modules: Sequence[str]) -> multiprocessing.context.BaseContext:
    """How to start workers that run code from `modules` (imported here first, to share)."""
    for name in modules:
        importlib.import_module(name)
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(modules))
        return context
    return multiprocessing.get_context("spawn")


class OrderedPool:
    """`jobs` worker processes (started now) mapping a function over chunks, in order."""

    def __init__(self, jobs: int, modules: Sequence[str] = ()) -> None:
        self.jobs = jobs
        self.executor = ProcessPoolExecutor(jobs, mp_context=worker_context(modules),
                                            initializer=_start_worker, initargs=(os.getpid(),))
        self.executor.submit(int)  # start the workers now, before the caller loads its model

    def map(self, function: Callable[..., list[Result]], chunks: Iterable[Sequence[Any]], *args: Any,
            ahead: int = 4, wait: float | None = None) -> Iterator[list[Result]]:
        """Each chunk's results, in input order, with `ahead` chunks per worker in flight. With
        `wait`, an empty list each time `wait` seconds pass with the next results not ready (so
        a consumer that batches can flush)."""
        chunks = iter(chunks)
        pending: deque[Future[list[Result]]] = deque(
            self.executor.submit(function, chunk, *args)
            for chunk in itertools.islice(chunks, self.jobs * ahead)
        )
        while pending:
            try:
                results = pending[0].result(timeout=wait)
            except TimeoutError:
                yield []
                continue
            except BrokenProcessPool:
                raise DigitlabError("a worker process stopped unexpectedly (killed, or out of memory?); "
                                    "run again, perhaps with fewer --jobs") from None
            pending.popleft()
            for chunk in itertools.islice(chunks, 1):  # keep the window full
                pending.append(self.executor.submit(function, chunk, *args))
            yield results

    def close(self) -> None:
        """Stop the workers; what is queued is dropped, what runs finishes (one chunk)."""
        self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> OrderedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
