"""Every thread's stack on demand: `kill -USR1 PID` prints them to stderr and the process goes
on. For a scan that seems stuck: its command and its local workers both listen (``cli``,
``worker_setup``), so the stacks say which step it waits on and what the workers are doing."""

from __future__ import annotations

import faulthandler
import io
import signal
import sys


def dump_on_sigusr1() -> None:
    """Listen for SIGUSR1 (not on Windows). faulthandler writes to a file descriptor: where
    ``sys.stderr`` has none (the command run in-process with its output captured), to the
    process's own stderr; where that has none either, nothing is set up."""
    if not hasattr(signal, "SIGUSR1"):
        return
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.fileno()
                faulthandler.register(signal.SIGUSR1, file=stream, all_threads=True)
                return
        except (AttributeError, ValueError, io.UnsupportedOperation):
            continue
