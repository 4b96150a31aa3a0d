"""Files that appear complete or not at all: write a temp file beside the target, then rename;
in a remote folder (``place``), an upload of the whole file, which an object store shows whole
or not at all."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from . import place


def temp_path(path: Path) -> Path:
    """A hidden, unique sibling of ``path`` (same folder, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def write_bytes(path: place.Where, data: bytes) -> place.Folder:
    """Write ``data`` to ``path`` through a fsynced temp file and os.replace (remote: one PUT)."""
    target = place.folder(path)
    if place.is_remote(target):
        place.write_whole(target, data)
        return target
    return write_with(target, lambda fh: fh.write(data))


def write_with(path: place.Where, write: Callable[[BinaryIO], object]) -> place.Folder:
    """Let ``write`` fill the open temp file (say, ``np.savez`` of arrays too large to copy
    into bytes first), then fsync it and os.replace it onto ``path``. A remote file is filled
    in a local temp file and uploaded (``place.write_through``)."""
    target = place.folder(path)
    if not isinstance(target, Path):
        place.write_through(target, write)
        return target
    path = target
    tmp = temp_path(path)
    # os.open with 0o666 lets the umask decide the final mode, like a plain open() would
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: place.Where, text: str) -> place.Folder:
    return write_bytes(path, text.encode("utf-8"))


def writable(folder: str | os.PathLike) -> bool:
    """Whether this process can create files in ``folder`` (made if missing): run on a worker,
    it tells whether the workers can write a scan's results where the client asked (a URL:
    whether its file system loads here, with credentials that may write)."""
    try:
        path = place.folder(folder)
        place.make(path)
        probe = path / f".hotpixels-probe-{secrets.token_hex(6)}"
        write_bytes(probe, b"")
        probe.unlink()
    except Exception:  # noqa: BLE001 - OSError, or a store's own (no package, no credentials): "cannot"
        return False
    return True
