"""Dask worker preload: load the scan's code and numba kernels while a local worker is idle.

A worker's first read task would otherwise start by importing the package and numba and
loading the cached kernels, about 0.8 s in every worker, with both cores then busy reading.
The local cluster (``cluster.open_client``) names this module as its workers' preload; the
loading runs in a background thread, so the worker registers at once and the loading fills
the time the client spends probing headers and building the graph. On a cluster you start
yourself, ``dask worker --preload pipeline.worker_setup`` does the same. It also keeps a failed
task's traceback out of the worker's log (``quiet_task_failures``), and prints every thread's
stack on SIGUSR1, as the command does (``thread_dump``). In the command's own local cluster it also
drops the traceback of a heartbeat that met the scheduler gone (``quiet_lost_heartbeat``).
"""

from __future__ import annotations

import logging
import os
import threading

from .thread_dump import dump_on_sigusr1

log = logging.getLogger(__name__)

# set in the environment of the local cluster's workers (``engine.cluster.open_client``)
LOCAL_WORKER = "HOTPIXELS_LOCAL_WORKER"


def dask_setup(worker=None) -> None:
    """distributed's preload hook."""
    logging.getLogger("distributed.worker").addFilter(quiet_task_failures)
    if os.environ.get(LOCAL_WORKER):
        logging.getLogger("distributed.worker").addFilter(quiet_lost_heartbeat)
    dump_on_sigusr1()
    threading.Thread(target=warm, name="hotpixels-warm-up", daemon=True).start()


def quiet_task_failures(record: logging.LogRecord) -> bool:
    """Drop the worker's "Compute Failed" record (a multi-line traceback): the same exception
    reaches the client, which says in one line what it means (a full disk, an unreadable
    file), or shows it whole if it means nothing known."""
    return not str(record.msg).startswith("Compute Failed")


def quiet_lost_heartbeat(record: logging.LogRecord) -> bool:
    """Drop a local worker's "Failed to communicate with scheduler during heartbeat" (a
    30-line traceback): its scheduler lives in the command's process and goes when the command
    ends, and a heartbeat on its way then fails. On a loaded machine it printed under the
    command's one-line error; the command says what went wrong itself."""
    return not str(record.msg).startswith("Failed to communicate with scheduler during heartbeat")


def warm() -> None:
    """Import what a read task needs and load the 8-bit kernel (the first call loads numba's
    cached machine code; other dtypes then load in a fraction of the time)."""
    try:
        import numpy as np

        from .engine import graph  # noqa: F401 - imported to be loaded
        from .io import registry
        from .stats import IntegerSums, accumulate

        registry.formats()  # the format modules register themselves on first use

        accumulate(IntegerSums.zeros((2, 2, 3), np.uint8), np.zeros((1, 2, 2, 3), np.uint8), 1)
    except Exception:
        log.debug("warm-up failed; the first task will load the kernels", exc_info=True)
