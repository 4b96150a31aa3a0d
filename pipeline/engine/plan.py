"""How a scan's files are cut for the cluster: checkpoint segments, partitions, batches, and
the memory model that sizes them.

A segment is a run of files checkpointed as one unit; it is split into one partition per
worker thread (a chain of read tasks), each a list of batches (one read task each). Nothing
here runs anything: it plans, from the files' identities and the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from dask.base import tokenize

from ..stats import COUNTS, STREAMS, sum_types
from ..stats.model import ModelPlan, partition_types


@dataclass
class Segment:
    """A run of files whose merged partial is checkpointed as one unit (``headers``: objects
    with ``path``, ``size`` and ``mtime``: the engine needs nothing else of a file)."""

    id: str
    headers: list[Any]


def segments(headers: list[Any], per_segment: int, salt: tuple) -> list[Segment]:
    """Cut the files into checkpoint units of ``per_segment`` files; ids change if any file or
    setting changes."""
    return [segment(headers[i : i + per_segment], salt) for i in range(0, len(headers), per_segment)]


def segment(headers: list[Any], salt: tuple) -> Segment:
    """One checkpoint unit of these files: its id names the files and the settings."""
    return Segment(tokenize(salt, [(h.path, h.size, h.mtime) for h in headers]), list(headers))


class SegmentSizer:
    """Files per segment, so that each takes about ``seconds`` to scan: the work an interruption
    can lose is bounded in time, whatever the sensor size and the file count.

    The first wave is cut from a conservative guess of the rate (``first``: ``first_segment``),
    so that a small scan stays one segment (exact integer sums throughout); each later wave is
    cut from the rate measured so far, never more than ``most`` files (``scan.checkpoint_files``)
    and never less than ``least`` (one batch per thread: fewer leaves threads idle)."""

    def __init__(self, seconds: float, most: int, least: int, first: int):
        self.seconds, self.most, self.least = float(seconds), max(1, most), max(1, min(least, most))
        self.size = max(self.least, min(first, self.most))
        self.files, self.elapsed = 0, 0.0

    def next(self) -> int:
        return self.size

    def observe(self, files: int, seconds: float) -> None:
        """A wave of ``files`` took ``seconds``; the next segments are cut from the rate so far."""
        self.files += files
        self.elapsed += max(seconds, 1e-6)
        rate = self.files / self.elapsed
        self.size = max(self.least, min(self.most, int(rate * self.seconds)))


# A conservative rate of decoding and accumulating, in sensor values per second per worker
# thread, by the input's bit depth: the slowest measured 16-bit path (12 MP DNGs with the physics
# model, 2 threads) does about 16 million; 6 MP JPEGs about 200 million, of which 8-bit input is
# guessed a quarter. The first segments are cut from it. A guess far too low costs: each segment
# writes and reads back the whole sensor's running total (36 bytes per value), and 400 JPEGs of
# 6 MP cut at 10 million as 66 + 334 files took 30 s instead of 22 s in one segment.
GUESSED_VALUES_PER_SECOND = {1: 50_000_000}
GUESSED_VALUES_PER_SECOND_DEFAULT = 10_000_000


def first_segment(seconds: float, threads: int, shape: tuple[int, ...], dtype: str = "uint16") -> int:
    """Files per segment before any is measured: ``seconds`` of work at the guessed rate."""
    rate = GUESSED_VALUES_PER_SECOND.get(np.dtype(dtype).itemsize, GUESSED_VALUES_PER_SECOND_DEFAULT)
    return max(1, int(seconds * threads * rate // max(1, int(np.prod(shape)))))


def with_the_rest(take: int, left: int, least: int) -> int:
    """Files for the next segment, ``take`` wanted with ``left`` not yet cut: all of them where
    what would be left is a sliver (under one batch per thread, ``least``, or half a segment).
    A segment's fixed cost is a pass over the whole sensor's running total, so a short last one
    costs nearly what a full one does; the longest segment is then 1.5x ``checkpoint_seconds``."""
    return left if left - take < max(least, take // 2) else take


def partitions(seg: Segment, threads: int, batch_size: int, dtype: str,
               counted_by_size: dict[int, dict[str, str]]) -> tuple[list[list[list[str]]], list[dict[str, str]]]:
    """A segment's files as partitions (one per worker thread, within the exact integer limit)
    of batches, and the already-counted digests each partition must not count again."""
    paths = [h.path for h in seg.headers]
    per_partition = min(-(-len(paths) // threads), sum_types(dtype)[2])
    size_of = {h.path: h.size for h in seg.headers}
    parts, known = [], []
    for i in range(0, len(paths), per_partition):
        files = paths[i : i + per_partition]
        parts.append([files[j : j + batch_size] for j in range(0, len(files), batch_size)])
        known.append({d: p for f in files for d, p in counted_by_size.get(size_of[f], {}).items()})
    return parts, known


def rows_per_tile(shape: tuple[int, ...], settings) -> int:
    """Sensor rows per row tile (``scan.tile_values``): the unit of merging, transfer and of
    stats.zarr's chunks (one writer per chunk)."""
    return max(1, settings.tile_values // max(1, int(np.prod(shape[1:]))))


def band_split(seg: Segment, threads: int, shape: tuple[int, ...], dtype: str, settings,
               model: ModelPlan | None = None) -> list[list[int]] | None:
    """The row tiles of each band, where a segment is read band by band (``graph.band_outputs``):
    with ``scan.split`` "bands", or "auto" where one worker thread's sums of the whole sensor (the
    physics model's included) would pass ``BAND_SPLIT_BYTES`` (1 GiB: a 45 MP RGB sensor's are 2.7
    GB), or pass half that with few files per thread (``BAND_SPLIT_FILES``: decoding each frame
    once per thread costs about what merging and sending the sums does; 40 DNGs of 12 MP with
    the physics model: 14-16 s instead of 13-15 s, 0.98 GB instead of 2.0-2.2 GB). None: the
    files are split (``partitions``). Bands need every file of the segment in one chain, within
    the exact integer limit, and more than one thread and one tile."""
    mode = settings.split
    if mode not in ("auto", "files", "bands"):
        raise ValueError(f"scan.split must be auto, files or bands, not {mode!r}")
    tiles = len(range(0, shape[0], rows_per_tile(shape, settings)))
    if mode == "files" or threads < 2 or tiles < 2 or len(seg.headers) > sum_types(dtype)[2]:
        return None
    sums = int(np.prod(shape)) * (sum_bytes_per_value(dtype) + model_bytes_per_value(dtype, model))
    few = len(seg.headers) <= BAND_SPLIT_FILES * threads
    if mode == "auto" and not (sums > BAND_SPLIT_BYTES or (few and sums > BAND_SPLIT_BYTES // 2)):
        return None
    bands = min(threads, tiles)
    cuts = [round(k * tiles / bands) for k in range(bands + 1)]
    return [list(range(a, b)) for a, b in zip(cuts[:-1], cuts[1:])]


def model_bytes_per_value(dtype: str, model: ModelPlan | None) -> int:
    """The physics model's sums of a partition, in bytes per sensor value (``model.partition_types``)."""
    if model is None or not model.spec.any:
        return 0
    types = partition_types(sum_types(dtype)[0])
    return sum(np.dtype(types[name]).itemsize for name in model.spec.names)


BAND_SPLIT_FILES = 64
BAND_SPLIT_BYTES = 1 << 30


def checkpoint_salt(shape: tuple[int, ...], dtype: str, stride: int, range_counts: bool) -> tuple:
    """What, besides the files, changes a segment's numbers (and so its checkpoint id)."""
    return (shape, dtype, stride, STREAMS, range_counts and COUNTS)


def segments_in_flight(shape: tuple[int, ...], dtype: str, settings) -> int:
    """How many segments to compute at once: as many as keep a worker thread's partition sums
    and frame buffers (``WAVE_BYTES``) within bounds. One for large sensors: a worker that starts
    the next segment's reads while its finished sums wait to be merged would hold both. Many
    for thumbnails, where a segment is a fraction of a second."""
    return max(1, min(MAX_WAVE, WAVE_BYTES // worker_thread_bytes(shape, dtype, settings)))


def worker_thread_bytes(shape: tuple[int, ...], dtype: str, settings) -> int:
    """The most a worker thread holds for one segment (the README's memory model): its
    partition's sums and the frame buffer while reading. At the end the buffer is freed and the
    sums leave tile by tile (``scan.tile_values``): a merge task holds a few tiles of sums and one
    tile of float64 stats, far less than the buffer it replaces."""
    values = int(np.prod(shape))
    return values * sum_bytes_per_value(dtype) + buffer_bytes(shape, dtype, settings)


def buffer_bytes(shape: tuple[int, ...], dtype: str, settings) -> int:
    return choose_batch_size(settings, shape, dtype) * int(np.prod(shape)) * np.dtype(dtype).itemsize


WAVE_BYTES, MAX_WAVE = 1 << 30, 16


def sum_bytes_per_value(dtype: str) -> int:
    t1, t2, _ = sum_types(dtype)
    return len(STREAMS) * (np.dtype(t1).itemsize + np.dtype(t2).itemsize) + 2 * len(COUNTS)


def choose_batch_size(settings, shape: tuple[int, ...], dtype: str) -> int:
    """Files per read task: ``batch_size`` if set, else as many frames as fit ``batch_bytes``.

    A read task decodes its batch into one buffer and then adds it to the partition's sums in
    one pass, so bigger batches mean fewer passes over the accumulators, bounded by the
    memory of the decoded batch; small frames get big batches, so that 20,000 thumbnails are
    not 20,000 tasks.
    """
    limit = sum_types(dtype)[2]
    if settings.batch_size:
        return max(1, min(settings.batch_size, limit))
    frame_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return max(1, min(max(MIN_AUTO_BATCH, settings.batch_bytes // frame_bytes), MAX_AUTO_BATCH, limit))


MIN_AUTO_BATCH, MAX_AUTO_BATCH = 8, 4096

