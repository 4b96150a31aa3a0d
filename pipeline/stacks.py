"""Every thread's stack on demand: `kill -USR1 PID` prints them to stderr and the process goes
on. For a scan that seems stuck: its command and its local workers both listen (``cli``,
``worker_setup``), so the stacks say which step it waits on and what the workers are doing."""

from __future__ import annotations

import faulthandler
import signal


def dump_on_sigusr1() -> None:
    if hasattr(signal, "SIGUSR1"):  # not on Windows
        faulthandler.register(signal.SIGUSR1, all_threads=True)
