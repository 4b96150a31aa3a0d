"""Files that appear complete or not at all: write a temp file beside the target, then rename."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def temp_path(path: Path) -> Path:
    """A hidden, unique sibling of ``path`` (same folder, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a fsynced temp file and os.replace."""
    return write_with(path, lambda fh: fh.write(data))


def write_with(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Let ``write`` fill the open temp file (say, ``np.savez`` of arrays too large to copy
    into bytes first), then fsync it and os.replace it onto ``path``."""
    path = Path(path)
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


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def writable(folder: str | os.PathLike) -> bool:
    """Whether this process can create files in ``folder`` (made if missing): run on a worker,
    it tells whether the workers can write a scan's results where the client asked."""
    try:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".hotpixels-probe-{secrets.token_hex(6)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False
    return True
