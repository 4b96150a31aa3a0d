"""`hotpixels scan --scheduler ADDRESS --detach`: the whole scan handed to the cluster.

The submitting process sends one task, the driver (``drive``), and leaves: the task is
``fire_and_forget``, so the scheduler keeps it when its client goes. The driver runs the scan on
a worker with that worker's client (``worker_client``: the driver's thread secedes from the
worker's pool while it waits, and the tasks it launches run on every worker, its own included).
It logs to ``scan.log`` in the output folder (into a remote one, to the worker's log: an object
store cannot append) and reports through the status file and the
scheduler's metadata like any scan (``progress``).

If the worker holding the driver dies, the scheduler runs the task again elsewhere (up to
distributed's ``allowed-failures``): the new driver waits for the dead one's lock to go stale,
takes it over and resumes from the checkpoints. Or the user runs the command again.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from pathlib import Path
from typing import Any

from distributed import Client, fire_and_forget

from ..state import place

LOG_NAME = "scan.log"


def submit(client: Client, inputs: list[str], out_dir: Any, config: Any, merge: bool, job: str) -> str:
    """Hand the scan to the cluster; the driver task's key."""
    key = f"hotpixels-driver-{job}"
    future = client.submit(drive, list(inputs), str(out_dir), config, merge, job, key=key, pure=False)
    fire_and_forget(future)
    return key


def drive(inputs: list[str], out_dir: str, config: Any, merge: bool, job: str) -> int:
    """The detached scan, run as a task on a worker; its frames' count."""
    from distributed import worker_client

    from ..scan import scan
    from ..state.lock import HEARTBEAT, STALE_AFTER

    folder = place.folder(out_dir)
    place.make(folder)
    with _log_file(folder) as log_file:
        def log(message: str) -> None:
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

        log(f"detached scan {job} starts on this worker")
        with worker_client(separate_thread=True) as client:
            try:
                result = scan(inputs, folder, config, client=client, merge=merge, log=log, progress=False, job=job,
                              wait_for_lock=STALE_AFTER + 3 * HEARTBEAT)
            except BaseException as exc:
                log(f"stopped: {type(exc).__name__}: {exc}")
                raise
        log(f"done: {result.n} frames")
        return result.n


class _WorkerLog(io.TextIOBase):
    """Lines for the worker's own log (``logging``), where an output folder cannot take a file
    appended to line by line."""

    def write(self, text: str) -> int:
        logging.getLogger("hotpixels").warning(text.rstrip("\n"))
        return len(text)


def _log_file(folder: Any) -> Any:
    """``scan.log`` in a local ``folder``, opened to append line by line; else the worker's log."""
    if isinstance(folder, Path):
        return open(folder / LOG_NAME, "a", buffering=1)
    return contextlib.nullcontext(_WorkerLog())
