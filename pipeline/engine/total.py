"""The running total of a scan, kept by the workers tile by tile, never gathered in one process.

Each segment's row tiles are folded into the total by a task per tile (``fold_tile``): it reads
the tile's total so far from its checkpoint file, merges the segment's tile, and writes the
result, to a new checkpoint file or, for the last segment, into its rows of stats.zarr. The
client only sees each tile's small ``TileRef``, and saves the checkpoint record (which files
hold which segments) when every tile of a segment is in, in segment order.

Where the workers cannot write the output folder, the client does the same folds itself, a
tile at a time as they arrive, so it still holds no more than a few tiles.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from distributed import Client, Future, as_completed

from ..detect.stack_kind import stack_sample
from ..records import ReadRecord
from ..state import place
from ..state.checkpoint import SavedTotal, load_tile, save_tile
from ..state.store import StatsArrays, read_rows, write_rows
from ..stats import PixelStats
from ..stats.dark_subtraction import rows_hot_candidates
from .plan import Segment

FOLD_PRIORITY = 100  # above the reads and merges of any segment in flight
FOLD = "fold-into-total-and-write"  # the fold tasks' name in the task stream


@dataclass(frozen=True)
class TileRef:
    """Where one row tile's total is, and over how many frames: a checkpoint file (``name``),
    or its rows of stats.zarr (``name`` empty; ``hot``: its possible hot sensels, for the
    dark-subtraction test, ``dark_subtraction.best_hot_candidates``; ``sample``: what it holds
    of the values that decide photos or darks)."""

    n: int
    name: str = ""
    hot: tuple[np.ndarray, np.ndarray] | None = None
    sample: dict[str, np.ndarray] | None = None  # its share of the stack kind's sample (``stack_kind``)
    preview: tuple[int, np.ndarray] | None = None  # its block maxima of |residual mean| (``preview_blocks``)


def preview_blocks(stats: PixelStats, y0: int, factor: int) -> tuple[int, np.ndarray] | None:
    """A tile's share of the progress preview: the largest |residual mean| (any channel) in each
    block of ``factor`` x ``factor`` sensels (``report.numbers.band_blocks``); None for factor 0."""
    if factor <= 0 or stats.n == 0:
        return None
    from ..report.numbers import band_blocks

    # the blocks first, the channels last: numpy's max along a last axis of 3 is a slow strided
    # reduction, over the whole tile; over its blocks it costs nothing
    first, blocks = band_blocks(np.abs(stats.mean[1]), y0, factor, "max")
    return first, np.fmax.reduce(blocks, axis=-1) if blocks.ndim == 3 else blocks


@dataclass(frozen=True)
class CheckpointSink:
    """Fold into a new checkpoint file of ``folder``."""

    folder: str
    preview: int = 0  # block edge of the progress preview (0: none)

    def put(self, stats: PixelStats, y0: int) -> TileRef:
        return TileRef(stats.n, save_tile(self.folder, stats), preview=preview_blocks(stats, y0, self.preview))


@dataclass(frozen=True)
class StatsSink:
    """Fold into rows of the stats.zarr being written (``tmp``), after the statistics saved
    before (``prior``: the old stats.zarr, with ``--merge``)."""

    tmp: str
    arrays: StatsArrays
    prior: str = ""
    preview: int = 0  # block edge of the progress preview (0: none)

    def put(self, stats: PixelStats, y0: int) -> TileRef:
        if self.prior:
            stats = read_rows(self.prior, y0, y0 + stats.pixel_shape[0]).merge(stats)
        if stats.n == 0:  # nothing counted: this stats.zarr is discarded
            return TileRef(0)
        write_rows(self.tmp, y0, stats, self.arrays)
        first = y0 * int(np.prod(stats.pixel_shape[1:]))
        return TileRef(stats.n, "", rows_hot_candidates(stats.mean[1], stats.m2[0], first),
                       stack_sample(stats, y0, self.arrays.shape), preview_blocks(stats, y0, self.preview))


def fold_tile(folder: str, previous: TileRef | None, part: PixelStats | None, rows: tuple[int, ...],
              sink: CheckpointSink | StatsSink) -> TileRef:
    """One row tile: its total so far (``previous``'s checkpoint file in ``folder``) with a
    segment's ``part`` merged in, into ``sink``. ``rows``: the tile's (y0, y1, *pixel columns)."""
    total = None if previous is None else load_tile(folder, previous.name)
    if part is not None:
        total = part if total is None else total.merge(part)
    if total is None:  # no frames before and no segment: an empty tile (a --merge that adds nothing)
        total = PixelStats.empty((rows[1] - rows[0], *rows[2:]))
    return sink.put(total, rows[0])


@dataclass
class SegmentFolds:
    """One segment's tiles (futures on the workers) on their way into the total."""

    segment: Segment
    parts: list[Future]
    statuses: Future
    sink: CheckpointSink | StatsSink
    folded: dict[int, TileRef] = field(default_factory=dict)
    record: ReadRecord | None = None

    @property
    def complete(self) -> bool:
        return self.record is not None and len(self.folded) == len(self.parts)


class TileTotals:
    """The running total's tiles, folded segment after segment (``fold_tile``), on the workers
    or, with ``local``, in this process.

    A segment's tile is folded once the same tile of every earlier segment is: the fold is
    handed the earlier ``TileRef`` itself, never its future, so a lost worker never makes the
    cluster redo a fold whose checkpoint file has been replaced since.
    """

    def __init__(self, client: Client, folder: place.Folder, tiles: list[tuple[int, int]], columns: tuple[int, ...],
                 saved: SavedTotal | None, local: bool):
        self.client = client
        self.folder = str(folder)
        self.rows = [(y0, y1, *columns) for y0, y1 in tiles]
        self.heads: list[TileRef | None] = ([TileRef(saved.n, name) for name in saved.tiles] if saved is not None
                                            else [None] * len(tiles))
        self.latest = list(self.heads)  # what the next fold of each tile starts from (maybe not yielded yet)
        self.n = saved.n if saved is not None else 0
        self.local = local
        self.pending: list[SegmentFolds] = []

    def expect(self, segment: Segment, parts: list[Future], statuses: Future,
               sink: CheckpointSink | StatsSink) -> SegmentFolds:
        state = SegmentFolds(segment, parts, statuses, sink)
        self.pending.append(state)
        return state

    def run(self) -> Iterator[tuple[Segment, ReadRecord]]:
        """Fold every expected segment; yields each as it completes, in order, with its record.
        At each yield the heads are exactly the total of the segments yielded so far."""
        if self.local:
            yield from self._run_here()
            return
        waiting: dict[Future, tuple[SegmentFolds, int]] = {}  # folds in flight
        arrived: dict[Future, tuple[SegmentFolds, int]] = {}  # segment tiles not finished yet
        ready: set[tuple[int, int]] = set()  # (segment's place, tile) whose part is finished
        queue = as_completed(loop=self.client.loop)
        for state in self.pending:
            queue.add(state.statuses)
            for t, part in enumerate(state.parts):
                arrived[part] = (state, t)
                queue.add(part)
        busy = [False] * len(self.rows)  # a fold of the tile is in flight

        def submit_next(t: int) -> None:
            """The tile's fold of the earliest segment not folded yet, once its part is there."""
            state = next((s for s in self.pending if t not in s.folded), None)
            if state is not None and not busy[t] and (id(state), t) in ready:
                busy[t] = True
                self._submit(state, t, waiting, queue)

        for future in queue:
            if future in arrived:
                state, t = arrived.pop(future)
                ready.add((id(state), t))
                submit_next(t)
            elif future in waiting:
                state, t = waiting.pop(future)
                state.folded[t] = self.latest[t] = future.result()
                future.release()
                state.parts[t].release()
                busy[t] = False
                submit_next(t)
            else:
                state = next(s for s in self.pending if s.statuses is future)
                state.record = future.result()
                future.release()
            yield from self._completed()

    def _submit(self, state: SegmentFolds, t: int, waiting: dict, queue) -> None:
        # the fold takes the head's value, so it waits for nothing but the segment's tile, and it
        # is asked for once that tile is finished: it runs where the tile is (a tile of float64
        # stats is 36 bytes per value: moving it to an idle worker costs more than waiting), and
        # before that worker converts its next tile, so finished tiles do not pile up in memory
        where = self.client.who_has([state.parts[t]]).get(state.parts[t].key) or None
        future = self.client.submit(fold_tile, self.folder, self.latest[t], state.parts[t], self.rows[t], state.sink,
                                    pure=False, priority=FOLD_PRIORITY, key=f"{FOLD}-{uuid.uuid4().hex}",
                                    workers=list(where) if where else None, allow_other_workers=True)
        waiting[future] = (state, t)
        queue.add(future)

    def _run_here(self) -> Iterator[tuple[Segment, ReadRecord]]:
        for state in list(self.pending):
            for t, part in enumerate(state.parts):
                value = part.result()
                part.release()
                state.folded[t] = self.latest[t] = fold_tile(self.folder, self.latest[t], value, self.rows[t],
                                                             state.sink)
            state.record = state.statuses.result()
            state.statuses.release()
            yield from self._completed()

    def _completed(self) -> Iterator[tuple[Segment, ReadRecord]]:
        while self.pending and self.pending[0].complete:
            head = self.pending.pop(0)
            record = head.record
            assert record is not None
            self.n += record.used
            before = {ref.n - self.n for ref in head.folded.values()}  # the saved stats' frames, with --merge
            if before != {0} and (not isinstance(head.sink, StatsSink) or len(before) != 1 or min(before) < 0):
                raise RuntimeError(f"segment {head.segment.id}: its tiles hold "
                                   f"{sorted({r.n for r in head.folded.values()})} frames, its statuses {record.used} "
                                   f"more than {self.n - record.used}")
            self.heads = [head.folded[t] for t in range(len(self.rows))]
            yield head.segment, record

    def saved(self) -> SavedTotal:
        """The total as checkpointed now (every head a checkpoint file)."""
        return SavedTotal(self.n, tuple(ref.name for ref in self.heads if ref is not None))

    def finish(self, sink: StatsSink) -> list[TileRef]:
        """Write the heads into stats.zarr as they are (every segment was done before: a resumed
        scan with nothing left, or a --merge that adds no file)."""
        if self.local:
            return [fold_tile(self.folder, head, None, rows, sink) for head, rows in zip(self.heads, self.rows)]
        futures = [self.client.submit(fold_tile, self.folder, head, None, rows, sink, pure=False,
                                      key=f"{FOLD}-{uuid.uuid4().hex}")
                   for head, rows in zip(self.heads, self.rows)]
        return self.client.gather(futures)
