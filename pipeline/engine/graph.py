"""The dask graph: chains of batch reads -> an array of exact sums -> a custom tree reduction.

Knows nothing of file formats (the reader is passed in) and no statistics beyond calling
``stats.py``. The scan's images form a dask array of shape (N, H, W[, C]) whose block (p, t)
is partition ``p``'s frames over row tile ``t``. A partition is a chain of read tasks, one
per batch of files: each decodes its batch once into a reused buffer and adds it, in one
pass, to the partition's exact integer sums of every tile (``stats.accumulate``). The pixels
never leave the read task; a block is materialised as its tile's ``IntegerSums``, which is
all the reduction needs of it.

This is where the design bends dask.array, on purpose: blocks of pixels would have to live in
memory as pixels and leave every batch as a float64 partial (32 bytes per value, more than
the decoded batch), and moving those cost more than decoding. Here a partition is as long as
its exact integer types allow (``stats.sum_types``; the scan gives each worker thread one per
segment) and leaves as its integer sums, tile by tile.

The frame count per block is unknown (NaN) until run time, because a file that fails to
decode is dropped from its partition and reported instead of failing the task.

``da.reduction`` then runs: ``chunk`` passes a tile's sums on, ``combine`` adds the sums of
partitions exactly while their types hold the total (a whole segment, for 8- and 16-bit
frames) and merges anything beyond with Chan's formula (``stats.merge_partials``), and
``aggregate`` converts to float64 (n, mean, M2) once: the tile's ``PixelStats``. Sending
integer sums (20 bytes per value for 8-bit frames) rather than float64 partials (36) also
nearly halves what the workers send each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..io.read import read_file, read_file_undigested
from ..records import FileStatus, ReadRecord, failure_reason
from ..stats import IntegerSums, PixelStats, accumulate, merge_partials, noise_bars
from ..stats.model import SKETCH_WORDS, ModelPlan, sketch_bits

# path, destination -> (pixels, content digest); the reader may decode straight into the
# destination (a slot of the task's frame buffer) and return it, or return its own array
Reader = Callable[[str, np.ndarray], tuple[np.ndarray, str]]


@dataclass
class PartitionSums:
    """What one partition has read so far: exact sums per row tile, every file's status.

    A partition is a chain of read tasks (``read_step``), each adding a batch of files to
    the previous task's sums in place: the sums are the size of the sensor, so copying them
    per batch would cost as much memory traffic as the accumulation itself. ``next_step``
    guards that: a step applies only to the sums of the step before it, so sums are never
    added to twice (a task that failed half-way leaves them marked busy, and its retry stops).
    """

    tiles: list[IntegerSums]  # one per row tile, in order
    statuses: list[FileStatus] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)  # path -> content digest, for the files used
    factors: dict[str, int] = field(default_factory=dict)  # path -> the exposure factor its frame was fitted with
    spikes: dict[str, list[int]] = field(default_factory=dict)  # path -> its frame's sketch bits (``stats.model``)
    next_step: int = 0

    def __sizeof__(self) -> int:
        """The sums' bytes, so that dask's scheduler keeps a chain where its data is."""
        return object.__sizeof__(self) + sum(t.__sizeof__() for t in self.tiles)


def read_step(previous: PartitionSums | None, step: int, paths: list[str], pixel_shape: tuple[int, ...],
              dtype: str, reader: Reader, known: dict[str, str] | None, stride: int,
              tiles: list[tuple[int, int]], last: bool = False, counts: bool = True,
              model: ModelPlan | None = None) -> PartitionSums:
    """Decode one batch of a partition's files and fold them into the partition's sums.

    A file that fails or does not match is skipped with a reason. ``known`` maps content
    digests already counted (in saved stats) to the path they were counted under: such a
    file, or a second copy within the partition, is skipped, not counted again. The batch is
    decoded into one reused buffer and then added to the accumulators in a single pass; the
    ``last`` step of a partition frees the buffer for the float64 partial that follows.
    ``model`` gives each file's terms of the physics model, where the scan keeps its sums.
    """
    spec = model.spec if model is not None and model.spec.any else None
    if previous is None:
        previous = PartitionSums([IntegerSums.zeros((y1 - y0, *pixel_shape[1:]), dtype, counts, spec)
                                  for y0, y1 in tiles])
    if previous.next_step != step:
        raise RuntimeError(f"partition sums at step {previous.next_step} were given to step {step}; "
                           "refusing to count files twice")
    part, previous.next_step = previous, -1
    buffer = _frame_buffer(len(paths), pixel_shape, dtype)
    seen = {**(known or {}), **{d: p for p, d in part.digests.items()}}
    held = 0
    used: list[str] = []
    for path in paths:
        slot = buffer[held]
        try:
            pixels, digest = reader(path, slot)
        except Exception as exc:  # noqa: BLE001 - a bad file never fails the job
            part.statuses.append(FileStatus.skip(path, failure_reason(exc)))
            continue
        if digest and digest in seen:
            part.statuses.append(FileStatus.skip(path, f"already counted: same content as {seen[digest]}"))
        elif pixels.shape != pixel_shape:
            part.statuses.append(FileStatus.skip(
                path, f"decoded shape {_fmt(pixels.shape)} differs from the group's {_fmt(pixel_shape)}"))
        elif pixels.dtype != np.dtype(dtype):
            part.statuses.append(FileStatus.skip(
                path, f"decoded dtype {pixels.dtype} differs from the group's {dtype}"))
        else:
            if pixels is not slot:  # the reader made its own array
                slot[...] = pixels
            held += 1
            used.append(path)
            part.statuses.append(FileStatus.ok(path))
            if digest:
                seen[digest], part.digests[path] = path, digest
    if held:
        terms = None if spec is None or model is None else model.terms(used, buffer[:held])
        sketch = np.zeros((held, SKETCH_WORDS), np.uint64) if spec is not None and spec.exposure else None
        # a frame's bars, for all its tiles; of the block rows that hold them only
        span = (min(y0 for y0, _ in tiles), max(y1 for _, y1 in tiles))
        bars = noise_bars.bars(buffer[:held], stride, span) if counts else None
        for (y0, y1), tile in zip(tiles, part.tiles):
            accumulate(tile, buffer[:held], stride, rows=(y0, y1), terms=terms, sketch=sketch, bars=bars)
        if terms is not None:
            part.factors.update(zip(used, terms.factors.tolist()))
        if sketch is not None:
            part.spikes.update(zip(used, sketch_bits(sketch)))
    part.next_step = step + 1
    if last:
        del buffer
        _BUFFERS.buffer = None
    return part


_BUFFERS = threading.local()


def _frame_buffer(frames: int, pixel_shape: tuple[int, ...], dtype_name: str) -> np.ndarray:
    """A (frames, *pixel_shape) buffer, reused by this thread's next batch of the same shape.

    A fresh frame-sized allocation is returned to the OS when freed and page-faults again on
    every use; reusing one per worker thread keeps decoding at decoding speed.
    """
    shape, dtype = (max(1, frames), *pixel_shape), np.dtype(dtype_name)
    buffer = getattr(_BUFFERS, "buffer", None)
    if buffer is None or buffer.dtype != dtype or buffer.shape[1:] != shape[1:] or len(buffer) < shape[0]:
        _BUFFERS.buffer = None  # free the old one before allocating the new one
        buffer = _BUFFERS.buffer = np.empty(shape, dtype)
    return buffer[: shape[0]]


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def tile_sums(partition: PartitionSums, t: int) -> IntegerSums:
    return partition.tiles[t]


def partition_record(partition: PartitionSums) -> ReadRecord:
    return ReadRecord(partition.statuses, partition.digests, partition.factors, partition.spikes)


def concat_records(parts: list[ReadRecord]) -> ReadRecord:
    """All files' statuses in input order, the digests of the files used and their factors."""
    return ReadRecord.concat(parts)


def row_tiles(height: int, tile_rows: int) -> list[tuple[int, int]]:
    return [(y, min(height, y + tile_rows)) for y in range(0, height, tile_rows)]


def image_array(partitions: list[list[list[str]]], pixel_shape: tuple[int, ...], dtype: str, tile_rows: int,
                stride: int, reader: Reader, known: list[dict[str, str]] | None = None,
                counts: bool = True, model: ModelPlan | None = None) -> tuple[da.Array, Delayed]:
    """The stack as a dask array and the files' ``ReadRecord``.

    ``partitions[p]`` is partition p's list of batches (one read task each, in a chain);
    ``known[p]`` holds the already-counted digests that partition p must not count again;
    ``counts`` False leaves the range counts out; ``model`` gives the files' model terms
    (each read task gets its own batch's).
    """
    known = known or [{} for _ in partitions]
    token = tokenize(partitions, pixel_shape, dtype, tile_rows, stride, reader, known, counts, model)
    read_name, name, status_name = (f"read-and-accumulate-{token}", f"partition-tile-sums-{token}",
                                    f"file-statuses-{token}")
    tiles = row_tiles(pixel_shape[0], tile_rows)
    trailing = (0,) * (len(pixel_shape) - 1)
    dsk: dict = {}
    for p, batches in enumerate(partitions):
        previous = None
        for b, paths in enumerate(batches):
            terms = None if model is None else model.subset(paths)
            dsk[(read_name, p, b)] = (read_step, previous, b, list(paths), tuple(pixel_shape), dtype, reader, known[p],
                                      stride, tiles, b == len(batches) - 1, counts, terms)
            previous = (read_name, p, b)
        dsk[(status_name, p)] = (partition_record, previous)
        for t in range(len(tiles)):
            dsk[(name, p, t, *trailing)] = (tile_sums, previous, t)
    dsk[f"all-{status_name}"] = (concat_records, [(status_name, p) for p in range(len(partitions))])
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    chunks = ((np.nan,) * len(partitions), tuple(y1 - y0 for y0, y1 in tiles), *((s,) for s in pixel_shape[1:]))
    images = da.Array(graph, name, chunks, meta=np.empty((0,) * (len(pixel_shape) + 1), dtype))
    return images, Delayed(f"all-{status_name}", graph, layer=name)


def band_outputs(files: list[list[str]], bands: list[list[int]], pixel_shape: tuple[int, ...], dtype: str,
                 tile_rows: int, stride: int, reader: Reader, known: dict[str, str] | None = None,
                 counts: bool = True, model: ModelPlan | None = None) -> list[Delayed]:
    """A segment read band by band: one chain per band of row tiles (``bands[k]``: its tiles'
    indices), each reading every file (``files``: the batches) and keeping the sums of its own
    rows only. Each tile's sums are then the whole segment's, with nothing to merge or send:
    for a large sensor and few frames, sending a partition's sums (20 bytes per value) and
    merging them cost more than decoding each frame once per band. Returns each tile's stats
    in order, then the files' record, for ``client.compute`` as ``segment_outputs`` does."""
    token = tokenize(files, bands, pixel_shape, dtype, tile_rows, stride, reader, known, counts, model, "bands")
    read_name, stats_name, status_name = (f"read-band-and-accumulate-{token}", f"convert-band-tile-{token}",
                                          f"file-statuses-{token}")
    first_name = f"convert-band-first-tile-{token}"
    tiles = row_tiles(pixel_shape[0], tile_rows)
    dsk: dict = {}
    outputs: list = [None] * len(tiles)
    for k, band in enumerate(bands):
        previous = None
        for b, paths in enumerate(files):
            # the bands take turns to digest the batches for the record (hashing a 12 MP raw is a
            # third of reading it); every band digests where it must skip files the saved
            # statistics hold (copies within the run were dropped before the reading)
            digests = b % len(bands) == k or known or reader is not read_file
            band_reader = reader if digests else read_file_undigested
            terms = None if model is None else model.subset(paths)
            dsk[(read_name, k, b)] = (read_step, previous, b, list(paths), tuple(pixel_shape), dtype, band_reader,
                                      known, stride, [tiles[t] for t in band], b == len(files) - 1, counts, terms)
            previous = (read_name, k, b)
        # the record leaves with the band's first tile, not on its own: a task of its own would
        # need the band's whole sums (1.3 GB for half a 45 MP RGB sensor), and the scheduler may
        # run it on another worker
        dsk[(first_name, k)] = (band_first_tile, previous)
        dsk[(status_name, k)] = (second, (first_name, k))
        for i, t in enumerate(band):
            dsk[(stats_name, t)] = (first, (first_name, k)) if i == 0 else (band_tile_stats, previous, i)
            outputs[t] = (stats_name, t)
    dsk[f"all-{status_name}"] = (ReadRecord.same_files, [(status_name, k) for k in range(len(bands))])
    graph = HighLevelGraph.from_collections(stats_name, dsk, dependencies=())
    return [Delayed(key, graph, layer=stats_name) for key in outputs] + [Delayed(f"all-{status_name}", graph,
                                                                                layer=stats_name)]


def band_tile_stats(partition: PartitionSums, i: int) -> PixelStats:
    """A band's i-th tile, every file of the segment in it: its float64 stats."""
    return partition.tiles[i].to_stats()


def band_first_tile(partition: PartitionSums) -> tuple[PixelStats, ReadRecord]:
    """A band's first tile's stats, and the record of the files it read."""
    return partition.tiles[0].to_stats(), partition_record(partition)


def first(pair: tuple):
    """A pair's first, as a task of its own (a task's one result is often two things)."""
    return pair[0]


def second(pair: tuple):
    return pair[1]


def moments_chunk(block, axis, keepdims, computing_meta: bool = False):
    """One partition's tile: its exact integer sums, as they are (``moments_combine`` adds
    them exactly; they become float64 once, in ``moments_aggregate``)."""
    return block


def _flatten(parts) -> list[IntegerSums | PixelStats]:
    if isinstance(parts, (IntegerSums, PixelStats)):
        return [parts]
    return [p for part in parts for p in _flatten(part)]


def moments_combine(parts, axis, keepdims) -> IntegerSums | PixelStats:
    return merge_partials(_flatten(parts))


def moments_aggregate(parts, axis, keepdims, computing_meta: bool = False) -> PixelStats | np.ndarray:
    """Final merge of one tile: its float64 ``PixelStats``, counts in their own narrow type."""
    if computing_meta:
        return np.empty((0,) * 4)
    merged = moments_combine(parts, axis, keepdims)
    return merged.to_stats() if isinstance(merged, IntegerSums) else merged


def tile_stats(images: da.Array, split_every: int) -> da.Array:
    """The tree reduction over the frame axis: block (0, t) is row tile t's ``PixelStats``.

    The blocks are stats, not pixels (a tile's n, mean, M2 per stream and counts: 36 bytes per
    value for 8-bit input, where float64 planes would be 48), so compute them as blocks
    (``segment_outputs``); the scan's running total takes them tile by tile. The array's shape
    and dtype only describe the grid.
    """
    return da.reduction(
        images,
        chunk=moments_chunk,
        aggregate=moments_aggregate,
        combine=moments_combine,
        axis=0,
        keepdims=True,
        concatenate=False,
        split_every=split_every,
        dtype=np.float64,
        meta=np.empty((0,) * images.ndim, np.float64),
        name="convert-and-merge",
    )


def segment_outputs(tiles: da.Array, statuses: Delayed) -> list[Delayed]:
    """What a scan computes of one segment: each tile's stats, then the files' statuses.

    Compute them together with ``optimize_graph=False``: the graph is built by hand, and
    optimising the tiles on their own would fuse a read into its only tile (small images)
    under a new name, so the statuses, which need the same read, would read every file again.
    """
    return [*tiles.to_delayed(optimize_graph=False).ravel(), statuses]

