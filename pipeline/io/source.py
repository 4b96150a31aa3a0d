"""Where a file's bytes come from: a local path or any fsspec URL, opened by the worker that reads it.

A file that holds many frames (a SER video, a FITS cube) is scanned frame by frame: each frame
is named by a frame reference, ``path#frame=12`` (``frame_ref``), which goes wherever a path
goes (the frame plan, files.csv, checkpoints, the manifest). Its reader reads only the frame's
bytes (``read_range``), so the frames of one file are spread over every worker like files.

A FITS file whose image is not its first image HDU is named with the HDU to read,
``path#hdu=SCI`` (``hdu_ref``; by EXTNAME or by index), which a frame reference may follow
(``path#hdu=SCI#frame=3``). Opening a name opens its file: the marks only tell the reader.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import stat
from collections.abc import Iterator
from typing import IO

FRAME_MARK = "#frame="
HDU_MARK = "#hdu="


def frame_ref(path: str, index: int) -> str:
    """The name of frame ``index`` (from 0) of a file that holds many frames."""
    return f"{path}{FRAME_MARK}{index}"


def split_ref(name: str) -> tuple[str, int | None]:
    """(file path, frame index) of a frame reference; (name, None) of a plain path."""
    path, mark, index = name.rpartition(FRAME_MARK)
    if mark and index.isdigit():
        return path, int(index)
    return name, None


def hdu_ref(path: str, hdu: str) -> str:
    """The name of HDU ``hdu`` (an EXTNAME, or an index from 0) of the FITS file at ``path``."""
    return f"{path}{HDU_MARK}{hdu}"


def split_hdu(name: str) -> tuple[str, str | None]:
    """(file path or frame reference without the HDU mark, HDU) of a name; (name, None) where
    it names no HDU."""
    path, mark, rest = name.partition(HDU_MARK)
    if not mark:
        return name, None
    hdu, frame, index = rest.partition(FRAME_MARK)
    return path + frame + index, hdu


def stored(name: str) -> str:
    """The file a name's bytes are in: a frame reference's or an HDU reference's file."""
    return split_ref(split_hdu(name)[0])[0]


def extension(path: str) -> str:
    """'.jpg' of 'a/b.JPG' or 's3://bucket/b.jpg?version=2' ('' for '.hidden' or no suffix): what
    pathlib.PurePosixPath's suffix gives (but 'x.' -> '.'), at a tenth of its cost: discovery
    asks it of every path. A frame reference's is its file's."""
    if "#" in path:
        path = stored(path)
    return posixpath.splitext(path.split("?", 1)[0])[1].lower()


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def local(path: str) -> str:
    """A local path without its ``file://`` scheme."""
    return path[len("file://"):] if path.startswith("file://") else path


def file_stat(path: str) -> tuple[int, float]:
    """Size and modification time (-1 where a remote store does not say)."""
    path = split_hdu(path)[0]
    if is_remote(path):
        import fsspec

        fs, p = fsspec.core.url_to_fs(path)
        info = fs.info(p)
        mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or -1
        mtime = mtime.timestamp() if hasattr(mtime, "timestamp") else mtime
        return int(info.get("size") or -1), float(mtime) if isinstance(mtime, (int, float)) else -1.0
    st = os.stat(local(path))
    if not stat.S_ISREG(st.st_mode):
        raise not_a_file(st.st_mode)
    return st.st_size, st.st_mtime


def not_a_file(mode: int) -> OSError:
    """The error of a name that is no regular file: a folder named ``x.jpg``, or a named pipe or
    a device, whose reading would block forever or never end."""
    if stat.S_ISDIR(mode):
        return IsADirectoryError("a directory, not an image file")
    kind = "a named pipe" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) \
        else "not a regular file"
    return OSError(f"{kind}, not an image file")


def open_local(path: str) -> IO[bytes]:
    """A local regular file opened for reading; an OSError for anything else. Opened without
    blocking, so that a named pipe is refused rather than waited on forever."""
    fd = os.open(local(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_a_file(mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str, limit: int | None = None) -> bytes:
    """The whole file; an OSError, before reading, where it is larger than ``limit`` bytes."""
    path = split_hdu(path)[0]
    if is_remote(path):
        import fsspec

        with fsspec.open(path, "rb") as fh:
            _check_size(getattr(fh, "size", None), limit)
            return fh.read()
    with open_local(path) as fh:
        _check_size(os.fstat(fh.fileno()).st_size, limit)
        return fh.read()


def iter_bytes(path: str, limit: int | None = None, chunk: int = 1 << 24) -> Iterator[bytes]:
    """The whole file in pieces of ``chunk`` bytes, for a hash that never holds it whole; an
    OSError, before reading, where it is larger than ``limit`` bytes."""
    path = split_hdu(path)[0]
    remote = is_remote(path)
    if remote:
        import fsspec

    with fsspec.open(path, "rb").open() if remote else open_local(path) as fh:
        _check_size(getattr(fh, "size", None) if remote else os.fstat(fh.fileno()).st_size, limit)
        while piece := fh.read(chunk):
            yield piece


def _check_size(size: int | None, limit: int | None) -> None:
    """An OSError (what a file system says of a file it cannot give) where ``size`` is over ``limit``."""
    if limit is not None and size is not None and size > limit:
        raise OSError(f"the file is {size:,} bytes: more than {limit:,}, the most a file is read whole (the "
                      f"largest frame at 32 bits per value)")


def read_range(path: str, offset: int, length: int) -> bytes:
    """``length`` bytes from ``offset`` (fewer where the file ends sooner): one frame of a video,
    read without the rest of the file, locally or from any fsspec store. Only the bytes the file
    has are allocated, whatever ``length`` a damaged header asks for."""
    path = split_hdu(path)[0]
    if is_remote(path):
        import fsspec

        with fsspec.open(path, "rb") as fh:
            fh.seek(offset)
            size = getattr(fh, "size", None)
            return fh.read(length if size is None else max(0, min(length, size - offset)))
    with open_local(path) as fh:
        fh.seek(offset)
        return fh.read(max(0, min(length, os.fstat(fh.fileno()).st_size - offset)))


@contextlib.contextmanager
def open_source(path: str) -> Iterator[str | io.BytesIO]:
    """Something imageio, Pillow and rawpy can open: the local path, or the remote bytes."""
    path = split_hdu(path)[0]
    yield io.BytesIO(read_bytes(path)) if is_remote(path) else local(path)


def text(value) -> str:
    """A metadata string made printable: bytes decoded, NULs dropped, ends stripped."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value or "").replace("\x00", "").strip()
