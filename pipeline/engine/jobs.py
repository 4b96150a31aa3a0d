"""`hotpixels status OUT` and `hotpixels cancel OUT`, from any machine that can read OUT and reach
the scheduler: a scan's status file (``state.status``) says what it did last, its lock
(``state.lock``) whether it still runs, and its scheduler takes the cancel request
(``progress.request_cancel``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..state.lock import live_holder
from ..state.status import CANCELLED, DONE, FAILED, RUNNING, JobStatus, read_status

EXIT_OK, EXIT_STOPPED, EXIT_NONE = 0, 1, 2
CANCEL_WAIT = 60.0  # seconds to wait for the scan to say it stopped


def statuses(out: Path) -> list[tuple[Path, JobStatus]]:
    """The status of the scan into ``out``, or of each group's folder of an --all-groups scan."""
    own = read_status(out)
    if own is not None:
        return [(out, own)]
    found = []
    for sub in sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []:
        status = read_status(sub)
        if status is not None:
            found.append((sub, status))
    return found


def describe(out: Path) -> tuple[str, int]:
    """One line per scan into ``out`` and the exit status: 0 running or done, 1 failed, cancelled
    or stopped without a word, 2 no scan ever reported there."""
    found = statuses(out)
    if not found:
        return f"no hotpixels scan has reported into {out}", EXIT_NONE
    lines, code = [], EXIT_OK
    for folder, status in found:
        line, ok = _one(folder, status)
        lines.append(line if len(found) == 1 else f"{folder.name}: {line}")
        code = max(code, EXIT_OK if ok else EXIT_STOPPED)
    return "\n".join(lines), code


def _one(folder: Path, s: JobStatus) -> tuple[str, bool]:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.updated))
    if s.state == RUNNING and live_holder(folder) is None:
        return (f"stopped: the scan {s.job} is no longer running (its process or machine went away) after "
                f"{s.files_done} of {s.files_total} files, last heard of at {when}; run the same command again "
                "to resume from its checkpoints"), False
    if s.state == RUNNING:
        eta = "" if s.eta_seconds is None else f"; about {_duration(s.eta_seconds)} left"
        return (f"running: scan {s.job}, {s.files_done} of {s.files_total} files done, {s.files_skipped} skipped, "
                f"{s.files_left} left; {s.segments_done} segments done, {s.segment_files} files in the ones running; "
                f"{s.rate:.1f} files/s{eta} (updated {when})"), True
    if s.state == DONE:
        return f"done: scan {s.job}: {s.summary} (finished {when})", True
    what = {FAILED: "failed", CANCELLED: "cancelled"}.get(s.state, s.state)
    return f"{what}: scan {s.job}: {s.reason} ({when})", False


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def cancel(out: Path, log: Callable[[str], None] = print, wait: float = CANCEL_WAIT) -> tuple[str, int]:
    """Ask the scan running into ``out`` to stop; the line to print and the exit status (0: it
    stopped, 1: it did not say so in time, 2: nothing runs there)."""
    from distributed import Client

    from .progress import request_cancel

    found = [(f, s) for f, s in statuses(out) if s.state == RUNNING and live_holder(f) is not None]
    if not found:
        line, _ = describe(out)
        return f"nothing to cancel in {out}: {line}", EXIT_NONE
    for folder, s in found:
        if not s.scheduler:
            return f"the scan {s.job} into {folder} names no scheduler to ask: stop its process instead", EXIT_NONE
        with Client(s.scheduler, timeout="10s", set_as_default=False) as client:
            request_cancel(client, s.job)
        log(f"asked scan {s.job} at {s.scheduler} to stop")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        states = [read_status(f) for f, _ in found]
        if all(st is not None and st.state != RUNNING for st in states):
            return describe(out)[0], EXIT_OK
        time.sleep(0.5)
    return f"asked, but the scan has not said it stopped within {wait:g} s: see `hotpixels status {out}`", EXIT_STOPPED
