"""The frames of a multi-page TIFF: a movie or a burst saved as one file (the stacks ImageJ,
Micro-Manager and camera programs save of sCMOS and CMOS cameras, tifffile's shaped stacks),
read frame by frame as a SER video is.

The file's first series (what imageio reads of a single-page TIFF) holds the frames, one per
page (a hyperstack's time points, slices and channels alike: they are frames of one sensor).
Each is named by its frame reference (``stack.tif#frame=12``), so the frames of one file are
spread over the workers like files. Where each page is stored whole and uncompressed (what
capture programs write), its byte range is kept: a frame is then one ranged read, locally or
from any fsspec store, with no TIFF parsing; a compressed or tiled page is decoded by tifffile.
The pages are parsed once per process (keyed by the file's size and time, as a SER header is).
Metadata that spreads one series over several files (OME, Micro-Manager datasets) is not
followed: each file given is its own frames, so no frame is read twice.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from .exact import as_scanned
from .source import file_stat, is_remote, local, read_range

UNCOMPRESSED = 1
CONTIG = 1  # planar configuration: a pixel's samples together


@dataclass(frozen=True)
class Pages:
    """A TIFF's first series as frames, ``count`` declared, of which the first ``whole`` lie
    within the file (a file cut short loses its last ones). Where every page is stored whole and
    uncompressed: ``start`` where they follow one another from there (tifffile's and ImageJ's
    stacks: the metadata's count holds, whatever the pages' own headers), else ``ranges``,
    each page's (offset, bytes); neither: tifffile decodes them."""

    count: int
    whole: int
    shape: tuple[int, ...]  # one frame's: (H, W) or (H, W, samples)
    dtype: str  # as stored, with its byte order
    start: int | None = None
    ranges: tuple[tuple[int, int], ...] | None = None

    @property
    def frame_bytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    @property
    def stored(self) -> bool:
        """Each frame is one byte range of the file."""
        return self.start is not None or self.ranges is not None

    def place(self, index: int) -> tuple[int, int]:
        """Frame ``index``'s (offset, bytes) in the file (``stored`` only)."""
        if self.start is not None:
            return self.start + index * self.frame_bytes, self.frame_bytes
        assert self.ranges is not None
        return self.ranges[index]


def open_tiff(source: Any) -> Any:
    """tifffile's reading of a TIFF (a local path or a file object) as this module reads a stack:
    its own pages only, not a series that OME or Micro-Manager metadata spreads over other files."""
    import tifffile

    return tifffile.TiffFile(source, is_ome=False, is_mmstack=False, is_ndtiff=False)


def frame_pages(tif: Any) -> tuple[Any, list[Any], int]:
    """(series, its pages that can be read, the frames declared) of an opened TIFF. The frames
    are the first series' pages, or, where every series is one page of one shape (a stack that
    tifffile wrote a page per call, each its own series), every series' page."""
    series = tif.series[0]
    many = tif.series[1:] and all(len(s.pages) == 1 and s.shape == series.shape and s.dtype == series.dtype
                                  for s in tif.series)
    listed = [s.pages[0] for s in tif.series] if many else list(series.pages)
    pages = []
    for page in listed:  # the pages tifffile could read, up to the first it could not
        if page is None:
            break
        pages.append(page)
    # the frames its metadata (shaped, ImageJ) declares: a file cut short keeps them declared,
    # though the pages' own headers (written after the data, by tifffile) are lost
    shape = series.keyframe.shape
    declared = len(listed) if many else max(len(listed), math.prod(series.shape) // max(1, math.prod(shape)))
    return series, pages, declared


def parse(source: str | IO[bytes], size: int) -> Pages:
    """The pages of the first series of a TIFF at ``source`` (a local path or a file object) of
    ``size`` bytes. A count the metadata declares beyond the file's end costs nothing: the frames
    past it are only counted (and listed as lost, ``limits.missing_frames``)."""
    with open_tiff(source) as tif:
        if not tif.series:
            raise ValueError("the TIFF holds no image")
        series, pages, declared = frame_pages(tif)
        key = series.keyframe
        shape = tuple(int(s) for s in key.shape)
        dtype = np.dtype(key.dtype).newbyteorder(tif.byteorder)
        frame_bytes = math.prod(shape) * dtype.itemsize
        if frame_bytes <= 0:
            raise ValueError(f"the TIFF's pages hold no values (shape {shape})")
        plain = (key.compression == UNCOMPRESSED and not key.is_tiled and key.bitspersample == 8 * dtype.itemsize
                 and (key.samplesperpixel == 1 or key.planarconfig == CONTIG) and getattr(key, "fillorder", 1) == 1)
        start = series.dataoffset if len(tif.series) == 1 or len(series.pages) > 1 else None
        if plain and start is not None and all(p.dataoffsets and p.dataoffsets[0] == start + i * frame_bytes
                                               for i, p in enumerate(pages)):
            whole = min(declared, max(0, (size - int(start)) // frame_bytes))
            return Pages(declared, whole, shape, dtype.str, start=int(start))
        # a page's strips (all but the last) hold whole rows, unpadded: the page is then one run
        strip = int(getattr(key, "rowsperstrip", 0) or shape[0]) * (frame_bytes // shape[0])
        ranges: list[tuple[int, int]] = []
        for page in pages:  # pages apart: only those whose headers were read can be found
            offsets, counts = page.dataoffsets, page.databytecounts
            joined = all(o + c == nxt and c == strip for o, c, nxt in zip(offsets, counts, offsets[1:]))
            if not (plain and offsets and joined and sum(counts) >= frame_bytes):
                return Pages(declared, len(pages), shape, dtype.str)
            ranges.append((int(offsets[0]), frame_bytes))
    whole = next((i for i, (o, n) in enumerate(ranges) if o + n > size), len(ranges))
    return Pages(declared, whole, shape, dtype.str, ranges=tuple(ranges))


def pages_of(path: str) -> Pages:
    """The pages of the TIFF at ``path`` (local or any fsspec URL), parsed once per process."""
    return _pages(*_identity(path))


def _identity(path: str) -> tuple[str, int, float]:
    """(path, size, mtime): what the per-process caches key a file by (a changed file is read again)."""
    size, mtime = file_stat(path)
    return path, size, mtime


@functools.lru_cache(maxsize=64)
def _pages(path: str, size: int, mtime: float) -> Pages:
    if not is_remote(path):
        return parse(local(path), size)
    import fsspec

    with fsspec.open(path, "rb") as fh:
        return parse(fh, size)


def read_page(path: str, index: int, out: np.ndarray | None = None) -> tuple[np.ndarray, bytes]:
    """Frame ``index`` of a multi-page TIFF, and the bytes that identify it (the page's stored
    bytes, or its values' where tifffile decodes it)."""
    key = _identity(path)
    pages = _pages(*key)
    if not 0 <= index < pages.count:
        raise ValueError(f"no frame {index} in this TIFF (it holds {pages.count})")
    if index >= pages.whole:
        raise ValueError(f"the TIFF is truncated before frame {index} of its {pages.count}")
    if not pages.stored:
        pixels = _decoded(key, index)
        data = pixels.tobytes()
    else:
        offset, length = pages.place(index)
        data = read_range(path, offset, length)
        if len(data) < length:
            raise ValueError(f"the TIFF is truncated in frame {index}: {len(data)} of its {length} bytes")
        pixels = np.frombuffer(data, np.dtype(pages.dtype)).reshape(pages.shape)
    pixels = as_scanned(pixels)  # floats (Siril's, PixInsight's) or wider integers: in 16 bits
    native = pixels.dtype.newbyteorder("=")
    if out is not None and out.shape == pixels.shape and out.dtype == native:
        np.copyto(out, pixels)
        return out, data
    return pixels.astype(native), data


# TIFFs whose pages tifffile decodes (compressed, tiled), held open per process: reading frame
# after frame then parses each page once, not all pages before it again (quadratic in a stack)
_OPEN: OrderedDict[tuple[str, int, float], _Opened] = OrderedDict()
_OPEN_LOCK = threading.Lock()
OPEN_TIFFS = 2


@dataclass
class _Opened:
    tif: Any
    handle: Any  # the fsspec file of a remote one
    lock: threading.Lock
    pages: list[Any]  # ``frame_pages``'

    def close(self) -> None:
        with self.lock:
            self.tif.close()
            if self.handle is not None:
                self.handle.close()


def _decoded(key: tuple[str, int, float], index: int) -> np.ndarray:
    """Frame ``index`` of the TIFF that ``key`` (``_identity``) names, decoded by tifffile."""
    path = key[0]
    with _OPEN_LOCK:
        opened = _OPEN.pop(key, None)
        if opened is None:
            handle = None
            if is_remote(path):
                import fsspec

                handle = fsspec.open(path, "rb").open()
            tif = open_tiff(local(path) if handle is None else handle)
            opened = _Opened(tif, handle, threading.Lock(), frame_pages(tif)[1])
        _OPEN[key] = opened
        evicted = [_OPEN.popitem(last=False)[1] for _ in range(len(_OPEN) - OPEN_TIFFS)]
    for old in evicted:
        old.close()
    with opened.lock:
        if index >= len(opened.pages):
            raise ValueError(f"frame {index} of this TIFF cannot be read (its page header is damaged)")
        return np.asarray(opened.pages[index].asarray())
