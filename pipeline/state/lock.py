"""One scan per output folder: a lock file that names its holder, kept fresh while it runs.

Two scans writing one stats.zarr would each count what the other did not see, and a
``detect`` or ``fix`` reading a folder mid-scan would read half a result. So a scan holds
``.hotpixels.lock`` in its ``--out`` for as long as it runs, and everything that writes or reads
a result folder asks first.

The lock is a file made with O_EXCL (atomic on local and network file systems; in an S3
folder, a conditional PUT, ``place.create_new``) holding the holder's host, pid, command and a
token. Its holder touches it every ``HEARTBEAT`` seconds (rewrites it, on an object store).
A lock is left by a dead process, and taken over, when its holder is on this host and its pid
is gone, or, from another host, when it has not been touched for ``STALE_AFTER`` seconds. The
takeover renames the stale file away first, so of two processes that find it stale, one wins;
an object store has no rename, so there the stale lock is removed only if it still holds what
was judged stale (two takers within the same few milliseconds could both win: left as it is).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import place

LOCK_NAME = ".hotpixels.lock"
HEARTBEAT = 10.0  # seconds between touches of a held lock
STALE_AFTER = 120.0  # a lock of another host untouched this long is left by a dead process


class OutputLocked(RuntimeError):
    """Another live process holds the folder: one line that says who and since when."""


def _holder(path: Any) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written, or garbage: judged by its age alone


def _alive(info: dict, path: Any) -> bool:
    """Whether the holder of the lock at ``path`` still runs."""
    try:
        age = time.time() - place.modified(path)
    except FileNotFoundError:
        return False
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's live process
        return True
    return age < STALE_AFTER


def _describe(info: dict, path: Any) -> str:
    since = info.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
    return (f"{path.parent} is in use by `{info.get('command', '?')}` (pid {info.get('pid', '?')} on "
            f"{info.get('host', '?')}, since {when}); wait for it to end, or stop it, then run this again")


def check_free(folder: place.Where) -> None:
    """Raise OutputLocked if a live process holds ``folder`` or the folder above it (a scan
    of ``--all-groups`` holds the folder of its groups)."""
    where = place.folder(folder)
    for candidate in (where, where.parent):
        _raise_if_held(candidate / LOCK_NAME)


def live_holder(folder: place.Where) -> dict | None:
    """Who holds ``folder`` (host, pid, command, started), or None if no live process does."""
    path = place.folder(folder) / LOCK_NAME
    info = _holder(path)
    return info if info is not None and _alive(info, path) else None


def _raise_if_held(path: Any) -> None:
    info = _holder(path)
    if info is not None and _alive(info, path):
        raise OutputLocked(_describe(info, path))


@contextmanager
def hold(folder: place.Where, command: str, log=lambda message: None,
         wait: float = 0.0) -> Iterator[place.Folder]:
    """Hold ``folder`` (made if missing) while the block runs; OutputLocked if a live process
    holds it. A lock left by a dead process is taken over, and said so through ``log``.
    ``wait``: seconds to keep trying while it is held (a detached driver that replaces one on a
    worker that died waits for that one's lock to go stale)."""
    where = place.folder(folder)
    place.make(where)
    path = where / LOCK_NAME
    token = secrets.token_hex(8)
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "command": command, "started": time.time(),
            "token": token}
    deadline = time.monotonic() + wait
    while True:
        try:
            _raise_if_held(where.parent / LOCK_NAME)
            _acquire(path, mine, log)
            break
        except OutputLocked:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(HEARTBEAT, max(0.1, deadline - time.monotonic())))
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(path, token, stop), name="hotpixels-lock", daemon=True)
    beat.start()
    try:
        yield path
    finally:
        stop.set()
        beat.join()
        if (_holder(path) or {}).get("token") == token:
            path.unlink(missing_ok=True)


def _acquire(path: Any, mine: dict, log) -> None:
    data = json.dumps(mine).encode()
    for _ in range(3):
        if place.create_new(path, data):
            return
        info = _holder(path)
        if info is None:
            continue  # released meanwhile: try again
        if _alive(info, path):
            raise OutputLocked(_describe(info, path)) from None
        if not _remove_stale(path, info):
            continue
        log(f"taking over {path}: left by `{info.get('command', '?')}` (pid {info.get('pid', '?')} on "
            f"{info.get('host', '?')}), which is no longer running")
    raise OutputLocked(f"{path.parent}: could not take its lock {path.name} (another process keeps taking it)")


def _remove_stale(path: Any, seen: dict) -> bool:
    """Remove the stale lock judged from ``seen``; False if another taker moved first."""
    if place.is_remote(path):  # no rename: remove it only if it is still the one judged stale
        if _holder(path) != seen:
            return False
        path.unlink(missing_ok=True)
        return True
    stale = path.with_name(f"{path.name}.stale-{secrets.token_hex(4)}")
    try:
        os.rename(path, stale)  # one of two racing takers wins
    except FileNotFoundError:
        return False
    stale.unlink(missing_ok=True)
    return True


def _heartbeat(path: Any, token: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT):
        try:
            held = _holder(path) or {}
            if held.get("token") != token:
                return
            if place.is_remote(path):
                place.write_whole(path, json.dumps(held).encode())
            else:
                os.utime(path)
        except Exception:  # noqa: BLE001 - an OSError, or a store's own error: stop touching
            return
