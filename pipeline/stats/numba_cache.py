"""Where numba caches the compiled kernels, so only a machine's first run pays the compile time.

Where numba has nowhere to put its cache (read-only package directory and unwritable HOME, as
in some containers and clusters, where ``cache=True`` would raise "no locator available"), the
cache goes to a private directory under the temp dir, and failing that the kernels are compiled
without a cache (see ``CACHE``). The probe function lives in this file, beside ``kernels.py``,
so numba looks for a cache locator in the same directory as for the kernels.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from contextlib import contextmanager

import numba
from numba import njit

log = logging.getLogger(__name__)

def probe():  # pragma: no cover - never called: decorating it asks numba for a cache locator
    return 0


def cache_available() -> bool:
    """Whether numba finds a cache locator for this file (it looks when a cached function is decorated)."""
    try:
        njit(cache=True)(probe)
    except (RuntimeError, OSError):  # RuntimeError("cannot cache function ...: no locator available ...")
        return False
    return True


@contextmanager
def numba_cache_dir(path: str):
    """Point numba's user-provided cache locator at ``path`` while functions are decorated.

    The locator fixes its directory when the function is decorated, so restoring the setting
    afterwards leaves other numba users in the process (and NUMBA_CACHE_DIR) untouched.
    """
    old = getattr(numba.config, "CACHE_DIR")  # noqa: B009 - numba's config sets its names at run time
    setattr(numba.config, "CACHE_DIR", path)  # noqa: B010
    try:
        yield
    finally:
        setattr(numba.config, "CACHE_DIR", old)  # noqa: B010


def private_cache_dir() -> str | None:
    """A writable cache directory only this user can write: <tmp>/hotpixels-numba-<uid>, else a fresh one.

    The per-user directory is reused across processes (dask workers) and runs; it is refused if
    someone else owns it or may write to it (cached code is loaded with pickle).
    """
    getuid = getattr(os, "getuid", None)
    try:
        base = os.path.join(tempfile.gettempdir(), f"hotpixels-numba-{getuid() if getuid else 'user'}")
    except OSError:  # no usable temp directory at all
        return None
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        st = os.lstat(base)
        if stat.S_ISDIR(st.st_mode) and (getuid is None or (st.st_uid == getuid() and not st.st_mode & 0o022)):
            return base
    except OSError:
        pass
    try:
        return tempfile.mkdtemp(prefix="hotpixels-numba-")
    except OSError:
        return None


def choose_cache(available=cache_available, private_dir=private_cache_dir) -> bool | str:
    """True: numba caches where it normally does; a path: cache there instead; False: no cache."""
    if available():
        return True
    path = private_dir()
    if path is not None:
        with numba_cache_dir(path):
            if available():
                log.info("numba cannot cache next to %s or in HOME; caching kernels in %s",
                         os.path.dirname(__file__), path)
                return path
    log.info("numba has nowhere to cache the kernels in %s; compiling them on every run", os.path.dirname(__file__))
    return False


CACHE = choose_cache()


def jit(**options):
    """``njit`` with the cache setting chosen once per process (``CACHE``)."""
    def decorate(fn):
        if isinstance(CACHE, str):
            with numba_cache_dir(CACHE):
                return njit(cache=True, **options)(fn)
        return njit(cache=bool(CACHE), **options)(fn)
    return decorate
