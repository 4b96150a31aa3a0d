"""What a failed write means for the user, in one line: a full disk, a read-only file system, a
folder this process may not write.

Every file of a result folder is written to a temporary name and renamed (``atomic``), and
stats.zarr is built beside the old one and swapped in, so a write that fails leaves the results
already there whole and unchanged; the scan then ends with this line instead of a traceback
(from the client or re-raised from a worker: the error number travels with it).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from . import place

FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
READ_ONLY = {errno.EROFS}
DENIED = {errno.EACCES, errno.EPERM}


def explain(exc: BaseException, out: str | os.PathLike | None) -> str | None:
    """One line for a failed write into ``out`` (the command's output folder), or None for an
    error that is not about writing."""
    if not isinstance(exc, OSError) or exc.errno not in FULL | READ_ONLY | DENIED:
        return None
    where = str(exc.filename) if exc.filename else str(out or "the output folder")
    kept = f"; what was already in {out} is unchanged" if out else ""
    if exc.errno in FULL:
        return f"cannot write {where}: the disk is full{_free(out)}{kept}: free some space or choose another --out"
    if exc.errno in READ_ONLY:
        return f"cannot write {where}: {out or where} is on a read-only file system{kept}: choose another --out"
    return f"cannot write {where}: permission denied{kept}: choose a folder you may write"


def _free(out: str | os.PathLike | None) -> str:
    if out is None:
        return ""
    try:
        folder = place.folder(out)
    except ValueError:
        return ""
    if not isinstance(folder, Path):  # a URL's free space is not this machine's
        return ""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    return f" ({free / 2**20:,.1f} MB free on the file system of {out})"
