"""Child processes that do not outlive the process that started them.

`classify --jobs N` and `serve --workers N` start worker processes. Killed with SIGKILL (or a
SIGTERM it does not forward), a parent cannot stop them, and they would go on holding memory and
the port. So each worker asks, as it starts, to be stopped when its parent goes: on Linux the
kernel sends it a signal (prctl PR_SET_PDEATHSIG); elsewhere a thread watches the parent's pid.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL = 1.0  # seconds between looks at the parent's pid where the kernel cannot tell us


def exit_with_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """Have this process get `sig` when process `parent` (the one that started it) exits.

    Call it first thing in the child. A parent that died before the call is caught too: the
    child is then already another process's (init's) and stops at once.
    """
    if parent == os.getpid():  # run in the starting process itself (as tests do): nothing to watch
        return
    if sys.platform.startswith("linux") and _set_death_signal(sig):
        pass
    else:
        threading.Thread(target=_watch, args=(parent, sig), name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # gone before the request was made
        os.kill(os.getpid(), sig)


def _set_death_signal(sig: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _watch(parent: int, sig: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    logger.warning("process %d: the process that started it (%d) is gone; stopping", os.getpid(), parent)
    os.kill(os.getpid(), sig)


# Worker processes beyond twice the cores only queue for them while each holds its own memory
# (a classify worker ~330 MB, a study worker more): a typo like --jobs 1000 must not start 1,000.
MAX_JOBS_PER_CORE = 2


def cap_jobs(jobs: int, flag: str = "--jobs") -> int:
    """`jobs`, or MAX_JOBS_PER_CORE × the cores if that is fewer (with a note saying so)."""
    cores = os.cpu_count() or 1
    most = MAX_JOBS_PER_CORE * cores
    if jobs > most:
        logger.warning("%s %d: capped at %d (%d × the %d core%s here)", flag, jobs, most,
                       MAX_JOBS_PER_CORE, cores, "s" if cores > 1 else "")
        return most
    return jobs
