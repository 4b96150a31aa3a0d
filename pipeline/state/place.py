"""Where a result folder lives: a local folder, or an fsspec URL that every process of the scan
reaches alike (``s3://bucket/run``, ``gs://``, ``az://``), so ``--out`` may name an object store
that the workers write.

A local folder stays a ``pathlib.Path`` and keeps every guarantee of a local file system (temp
files renamed into place, ``O_EXCL`` locks). A URL becomes a ``upath.UPath``, which offers the same
path operations through fsspec; the few operations a path has no word for (remove a tree, create
a file only if it is absent, write a file whole) are here, for both.

What an object store gives instead of renames: a single PUT of an object appears whole or not at
all, and S3's conditional PUT (``If-None-Match: *``, s3fs's mode ``"xb"``) creates a lock object
only if none exists. ``file://`` URLs are local folders.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Union

if TYPE_CHECKING:
    from upath import UPath

Folder = Union[Path, "UPath"]  # a local folder or an fsspec URL's
Where = Union[str, "os.PathLike[str]", "UPath"]  # what names one: a path, a URL, or a Folder


def folder(out: Where) -> Folder:
    """``out`` as a path: a ``Path`` for a local folder or a ``file://`` URL, a ``UPath`` for any
    other fsspec URL (its file system is loaded from its protocol: s3fs for ``s3://``)."""
    if isinstance(out, Path):
        return out
    if not isinstance(out, (str, os.PathLike)):  # already a UPath
        return out if is_remote(out) else Path(str(out.path))
    text = os.fspath(out)
    if "://" not in str(text):
        return Path(text)
    from upath import UPath

    try:
        found = UPath(text)
        found.fs  # noqa: B018 - loads the protocol's package now: a missing one is named here, once
    except (ImportError, ValueError) as exc:
        raise ValueError(f"cannot reach {text}: {exc}") from None
    return found if is_remote(found) else Path(str(found.path))


def is_remote(path: Any) -> bool:
    """Whether ``path`` is reached through fsspec rather than the local file system."""
    return not isinstance(path, Path) and getattr(path, "protocol", "") not in ("", "file", "local")


OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"}  # buckets, no folders


def make(path: Folder) -> None:
    """Make the folder ``path`` (and its parents) if missing. An object store has no folders,
    only keys: there the bucket must exist (it is never created here: a bucket is a thing its
    owner creates, with its region and its rights), and nothing else is needed."""
    if isinstance(path, Path):
        path.mkdir(parents=True, exist_ok=True)
        return
    import errno

    fs, where = _fs(path)
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if not protocols & OBJECT_STORES:
        fs.makedirs(where, exist_ok=True)
        return
    bucket = where.split("/", 1)[0]
    if not fs.exists(bucket):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: there is no bucket {bucket!r} (create it first, "
                                              "or check the credentials and the endpoint)", str(path))


def url(path: Folder) -> str:
    """What zarr, fsspec and a worker take for ``path``: the local path, or the URL."""
    return str(path)


def remove_tree(path: Folder) -> None:
    """Remove ``path`` and everything under it, if it is there (no error if it is not)."""
    if isinstance(path, Path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        return
    fs, where = _fs(path)
    try:
        fs.rm(where, recursive=True)
    except FileNotFoundError:
        pass


def copy_tree(source: Folder, target: Folder) -> None:
    """Copy the folder ``source`` to ``target`` (absent): object by object, server-side on an
    object store, nothing passing through this process."""
    if isinstance(source, Path):
        import shutil

        shutil.copytree(source, Path(str(target)))
        return
    fs, where = _fs(source)
    fs.copy(where, _fs(target)[1], recursive=True)


def write_whole(path: Folder, data: bytes) -> None:
    """Write a remote file in one request: on an object store it appears whole or not at all (a
    local file is written by ``atomic``, through a temp file and a rename)."""
    fs, where = _fs(path)
    fs.pipe_file(where, data)


def write_through(path: Folder, write: Callable[[BinaryIO], object]) -> None:
    """Let ``write`` fill a local temp file, then upload it to remote ``path``: memory stays
    bounded whatever the size, and on an object store the object appears when the upload
    (multipart for large ones) completes, whole or not at all."""
    import tempfile

    fs, where = _fs(path)
    with tempfile.NamedTemporaryFile(prefix="hotpixels-upload-") as fh:
        write(fh)  # type: ignore[arg-type]
        fh.flush()
        fs.put_file(fh.name, where)


def create_new(path: Folder, data: bytes) -> bool:
    """Create ``path`` holding ``data`` only if no file is there; False if one is. Atomic
    locally (``O_EXCL``) and on S3 (a conditional PUT); elsewhere, a check and a write."""
    if isinstance(path, Path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True
    fs, where = _fs(path)
    try:
        with fs.open(where, "xb") as fh:
            fh.write(data)
    except FileExistsError:
        return False
    except (ValueError, NotImplementedError):  # a file system with no exclusive mode
        if fs.exists(where):
            return False
        write_whole(path, data)
    return True


def modified(path: Folder) -> float:
    """When ``path`` was last written (Unix time); FileNotFoundError if it is not there."""
    if isinstance(path, Path):
        return os.stat(path).st_mtime
    fs, where = _fs(path)
    fs.invalidate_cache(where)  # a listing cached in this process would give an old time
    info = fs.info(where)
    when = info.get("LastModified", info.get("mtime", info.get("updated")))
    if hasattr(when, "timestamp"):
        return float(when.timestamp())
    if isinstance(when, str):
        from datetime import datetime

        return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
    return float(when) if when is not None else 0.0


def _fs(path: Any) -> tuple[Any, str]:
    """A remote path's fsspec file system and its path there."""
    return path.fs, path.path
