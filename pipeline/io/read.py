"""One file -> its header, or its pixels and a digest of its bytes, through the registered formats.

Paths may be local or any fsspec URL; the worker that calls these opens the file itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np

from ..records import failure_reason
from .header import Header
from .limits import MAX_FILE_BYTES, check_shape
from .registry import format_for, suffixes
from .source import extension, file_stat, iter_bytes, open_source, read_bytes, split_ref


def is_supported(path: str) -> bool:
    return extension(path) in suffixes()


def read_header(path: str) -> Header:
    """Shape, dtype and camera identity without decoding pixels (of a video or a FITS cube,
    its first frame's). Never raises: errors go into ``Header.error`` so one bad file cannot
    stop discovery."""
    return read_headers(path)[0]


def read_headers(path: str) -> list[Header]:
    """The headers of every frame of a file: one for most formats, one per frame (named by its
    frame reference) for a video or a FITS cube. Never raises, as ``read_header``. A frame that
    declares more than ``limits.MAX_PIXELS`` is refused with the limit's reason (the readers
    refuse it before they allocate anything)."""
    try:
        size, mtime = file_stat(path)
        if size == 0:
            return [Header(path, size=0, mtime=mtime, error="empty file")]
        fmt = _format(path)
        with open_source(path) as source:
            frames = fmt.probe_frames(path, source) if hasattr(fmt, "probe_frames") else [fmt.probe(path, source)]
        # not asdict: it deep-copies, a third of a PNG's probe. A name without a known suffix is
        # read by imageio, which registers no format name
        name = getattr(fmt, "name", "")
        for h in frames:
            if not h.error:
                check_shape(h.shape)  # where a probe read a size without allocating it
        return [replace(h, size=size, mtime=mtime, format=name) for h in frames]
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot use this file"
        return [Header(path, error=failure_reason(exc))]


def read_file(path: str, out: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """The pixels and a content digest of one file, from a single read of its bytes.

    ``out``, if given, is where the caller wants the pixels: a format that can decode straight
    into it (JPEG, raw) returns ``out`` itself; any other returns its own array.

    The digest (BLAKE2b-128 of the bytes) lets --merge recognise a photo it has counted
    before under another path.
    """
    file, index = split_ref(path)
    if index is not None:  # one frame of a video or a cube: only its bytes are read
        pixels, data = _format(file).read_frame(file, index, out)
    else:
        data = read_bytes(path, MAX_FILE_BYTES)
        pixels = _format(path).decode(data, path, out)
    return pixels, hashlib.blake2b(data, digest_size=16).hexdigest()


SAMPLE_BYTES = 1 << 16  # bytes hashed at each of a file's start, middle and end by ``sample_digest``


def sample_digest(path: str, size: int) -> str:
    """A digest of three pieces of a file (start, middle, end): files of one size whose samples
    differ are not copies of each other, found from 3 small reads instead of the whole file."""
    from .source import read_range

    h = hashlib.blake2b(digest_size=16)
    for offset in sorted({0, max(0, size // 2 - SAMPLE_BYTES // 2), max(0, size - SAMPLE_BYTES)}):
        h.update(read_range(path, offset, min(SAMPLE_BYTES, size)))
    return h.hexdigest()


def content_digest(path: str) -> str:
    """The digest ``read_file`` gives a whole file, from its bytes alone (no decode), hashed as
    they are read: never held whole. A file over ``limits.MAX_FILE_BYTES``, which ``read_file``
    refuses, is an OSError here too (a sparse file of terabytes is not read to be compared)."""
    h = hashlib.blake2b(digest_size=16)
    for piece in iter_bytes(path, MAX_FILE_BYTES):
        h.update(piece)
    return h.hexdigest()


def read_file_undigested(path: str, out: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """``read_file`` without the digest (an empty one): for a reader whose files another reader
    of the same scan digests (the sensor's bands after the first, ``engine.graph.band_outputs``).
    Hashing is a third of reading an uncompressed raw: 33 ms of a 12 MP DNG's 80."""
    file, index = split_ref(path)
    if index is not None:
        return _format(file).read_frame(file, index, out)[0], ""
    return _format(path).decode(read_bytes(path, MAX_FILE_BYTES), path, out), ""


def read_pixels(path: str) -> np.ndarray:
    """Decode one file to its stored pixel grid (raw: the visible CFA mosaic, copied), without
    the digest that ``read_file`` takes for --merge."""
    file, index = split_ref(path)
    if index is not None:
        return _format(file).read_frame(file, index)[0]
    return _format(path).decode(read_bytes(path, MAX_FILE_BYTES), path)


def _format(path: str):
    """The reader of ``path``; a file named without a known suffix is tried as a TIFF/PNG/JPEG
    by imageio, which then names the error."""
    fmt = format_for(path)
    if fmt is None:
        from . import imageio_common

        return imageio_common
    return fmt
