"""Where the graph runs: a LocalCluster on loopback, or an existing scheduler.

Prints (and flushes) the dashboard link before anything is computed, and draws a progress
bar with a count and an ETA on stderr while futures run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator

from distributed import Client, LocalCluster
from distributed.diagnostics.progressbar import TextProgressBar

from ..config import ClusterConfig
from ..worker_setup import LOCAL_WORKER
from . import ClusterError

# loads the package and numba's kernels in each local worker while it waits for its first task
WORKER_PRELOAD = "pipeline.worker_setup"
# glibc's allocator in the workers: one heap that keeps up to 256 MB of what a task frees for the
# next task, instead of a new mapping (zeroed page by page by the kernel) for every array over
# 32 MB and distributed's trim of everything over 64 kB. A 40-frame 12 MP raw scan made 3.0
# million page faults with those, 0.3 million with these: 9.2 -> 5.3 s of system time, 18.7 ->
# 15.2 s in all, at the same peak memory. Set before a worker process starts (its threads choose
# their heap when they start, and mallopt in the preload measured half the gain at a higher
# peak): a nanny's ``pre-spawn-environ``.
WORKER_MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": str(256 * 2**20),
                 "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20)}


@contextlib.contextmanager
def open_client(config: ClusterConfig, log: Callable[[str], None]) -> Iterator[Client]:
    """A Client for ``config``: connect to ``scheduler`` or start a LocalCluster."""
    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout=f"{config.connect_timeout}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {config.scheduler} within {config.connect_timeout:g} s "
                f"({type(exc).__name__}); is `dask scheduler` running there?"
            ) from None
        with _quiet_connection_noise(), client:
            _announce(client, log, f"connected to {config.scheduler}")
            try:
                yield client
            except Exception as exc:
                if not lost_scheduler(client, exc):
                    raise
                raise ClusterError(
                    f"lost the Dask scheduler at {config.scheduler} during the scan ({type(exc).__name__}): the "
                    "finished segments are checkpointed; run the same command again (with --scheduler naming a "
                    "running scheduler) to resume") from None
        return
    try:
        # a busy dashboard port (another scan running) is not worth a warning: the link we
        # print names the port actually used
        with _workers_ignore_ctrl_c(), warnings.catch_warnings(), _worker_environ({**WORKER_MALLOC, LOCAL_WORKER: "1"}):
            warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
            cluster = LocalCluster(
                n_workers=config.workers,
                threads_per_worker=config.threads_per_worker,
                processes=True,
                host=config.host,
                dashboard_address=config.dashboard_address,
                memory_limit=config.memory_limit,
                preload=[WORKER_PRELOAD],
            )
    except Exception as exc:
        raise ClusterError(f"cannot start a local Dask cluster: {exc}") from exc
    with cluster, Client(cluster, set_as_default=False) as client:
        from .dashboard import page_url, register

        _announce(client, log, f"local cluster with {len(cluster.workers)} workers")
        if client.dashboard_link and register(cluster.scheduler):
            log(f"hotpixels page: {page_url(client.dashboard_link)}")
        yield client


@contextlib.contextmanager
def _worker_environ(values: dict[str, str]) -> Iterator[None]:
    """The nannies started in the block give their workers ``values`` as environment. A nanny
    takes a variable of this process's environment over its ``pre-spawn-environ`` setting, and
    writes that setting into this environment for good (so after any earlier local cluster,
    ``MALLOC_TRIM_THRESHOLD_`` here is distributed's 64 kB): both are set for the block, and this
    process's own values put back after it."""
    import dask

    before = {k: os.environ.get(k) for k in values}
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", default={}), **values}
    os.environ.update(values)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _quiet_connection_noise() -> Iterator[None]:
    """Keep distributed's INFO lines out of the terminal while the scan runs, and the client's
    own errors for good: when its scheduler goes away it logs a traceback per reconnection
    attempt and a last "Failed to reconnect", on until the process ends. The scan says it in one
    line instead (``lost_scheduler``); any other failure reaches the scan as an exception."""
    root = logging.getLogger("distributed")
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(level)


@contextlib.contextmanager
def performance_report(client: Client, path: str | os.PathLike) -> Iterator[None]:
    """Dask's own performance report (task stream, worker profiles, bandwidth) of the block, to
    ``path`` (``--performance-report``). Dask's report asks for the current client: the scan's
    is made current for it, since the clients the CLI opens are nobody's default."""
    from distributed import performance_report as report

    with client.as_current(), report(filename=str(path)):
        yield


def lost_scheduler(client: Client, exc: BaseException) -> bool:
    """Whether ``exc`` means the client lost its scheduler (it stopped, or the network failed):
    the futures are cancelled for that reason, or a call found the connection closed."""
    from distributed.comm.core import CommClosedError

    if "scheduler-connection-lost" in str(exc) or isinstance(exc, CommClosedError):
        return True
    return isinstance(exc, (OSError, TimeoutError, asyncio.CancelledError)) and client.status != "running"


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start worker processes with SIGINT ignored (they inherit it): Ctrl-C in the terminal
    reaches every process of the group, and only this one should handle it, by closing the
    cluster, instead of every worker printing its own KeyboardInterrupt traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _announce(client: Client, log: Callable[[str], None], what: str) -> None:
    log(f"{what}; dashboard: {client.dashboard_link}")
    sys.stdout.flush()


class ProgressBar(TextProgressBar):
    """distributed's text bar, with the task count and an ETA, on stderr."""

    def __init__(self, futures, label: str, **kwargs):
        self.label = label
        self._started = time.monotonic()
        self._last: tuple[int, float] = (-1, 0.0)
        self._tty = sys.stderr.isatty()
        super().__init__(futures, **kwargs)

    def _draw_bar(self, remaining, all, **kwargs):  # noqa: A002 - distributed's signature
        done = all - remaining
        now = time.monotonic()
        if not self._tty and (done == self._last[0] or now - self._last[1] < 2) and done != all:
            return  # in a log file, a line per change at most every 2 s, not a redraw every 200 ms
        self._last = (done, now)
        frac = done / all if all else 1.0
        elapsed = time.monotonic() - self._started
        eta = f"ETA {_duration(elapsed * (1 - frac) / frac)}" if 0 < frac < 1 else f"{_duration(elapsed)}"
        bar = "#" * int(self.width * frac)
        line = f"{self.label} [{bar:<{self.width}}] {done}/{all} tasks {frac:4.0%} | {eta}"
        sys.stderr.write(f"\r{line}  " if self._tty else f"{line}\n")
        sys.stderr.flush()

    def _draw_stop(self, **kwargs):
        if self._tty:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def bytes_sent(client: Client) -> int:
    """Bytes the workers have sent so far (to each other and to this client): what a scan's
    partial statistics cost the network. Workers that left take their count with them."""
    try:
        counts = client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total)
    except Exception:  # noqa: BLE001 - a metric only; never fail a scan over it
        return 0
    return int(sum(counts.values()))
