"""OS priorities of background work, without Qt (a child process imports this too).

The GUI thread keeps the default priority; every other thread of the window's process (the
workers :func:`explorer.jobs.workers.start_worker` starts, the map's nearest-code thread)
and the UMAP child process run :data:`BACKGROUND_NICENESS` lower, so the window gets a core
first when the machine is busy. Linux gives every thread its own nice value; elsewhere the
thread functions do nothing.

Native thread pools would leak past that rule: their threads take the priority of the thread
that created them and then work for every caller. :func:`run_blas_on_calling_threads` keeps
numpy's BLAS on the calling thread; torch's pools are sized by the jobs that use them.
"""

from __future__ import annotations

import os
import sys
import threading

#: The nice value of background threads and processes (the GUI thread keeps 0).
BACKGROUND_NICENESS = 10


def lower_thread_priority(niceness: int = BACKGROUND_NICENESS) -> None:
    """Make the calling thread yield the CPU to the window when cores are scarce (Linux).

    The value stays with the thread: a pool thread's next job is background work too.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, max(current, niceness)))
    except (AttributeError, OSError):
        pass


def lower_process_priority(niceness: int = BACKGROUND_NICENESS) -> None:
    """The same for the calling process; call it first thing, as threads start from its value."""
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, min(19, max(current, niceness)))
    except (AttributeError, OSError):
        pass


def run_blas_on_calling_threads() -> None:
    """From now on numpy's BLAS (matrix products, SVD…) runs on the calling thread only.

    OpenBLAS starts its pool when numpy is imported, from the importing thread, the GUI
    thread: its threads keep the GUI thread's priority, do the matrix work of background
    threads too, and spin for a while after each call. In a training run of the full window
    (per-thread CPU and run-queue time sampled every millisecond from
    ``/proc/<pid>/task/*/schedstat``) such a thread ran 16 ms of a 27 ms GUI event, next to
    the map's neighbour search, while the GUI thread waited 12 ms for a core. Call once numpy
    is imported; it changes the whole process.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
