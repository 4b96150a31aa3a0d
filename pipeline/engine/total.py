"""The running total of a scan, merged on the client from the segments' tiles, in order.

One total, not one partial per segment, is what keeps the client's memory the same for 2
segments or 200; a later segment's tiles wait on their workers as futures until every earlier
segment is in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from distributed import Future

from ..records import ReadRecord
from ..stats import COUNTS, STREAMS, PixelStats, count_dtype, model
from .plan import Segment


@dataclass
class SegmentParts:
    segment: Segment
    tile_starts: np.ndarray
    waiting: set[int]  # tiles not merged yet
    arrived: dict[int, object] = field(default_factory=dict)  # tiles (or their futures) not merged yet
    record: ReadRecord | None = None  # the files' statuses, digests and factors, once known
    n: int = 0  # frames used, by the statuses
    merged_n: int | None = None  # frames of the tiles merged (each tile carries the segment's)


class RunningTotal:
    """Segments merged into one total on the client, in segment order, tile by tile as the
    tiles arrive, so that the client holds one sensor-sized total however many segments a
    scan has (and never a whole segment besides).

    A tile (its ``PixelStats``, frame count included) is merged as soon as every earlier
    segment is in; a later segment's tile waits on its worker, as a future, and is fetched only
    then, so that the client never holds more than the tile it is merging. A segment is
    complete when all its tiles are merged and its statuses are in.
    """

    def __init__(self, saved: PixelStats | None, shape: tuple[int, ...], most_frames: int | None = None):
        """``most_frames``: the most frames the total can reach (the scan's files), which sets
        the counts' type once (uint16 up to 65,535 frames), so they are never converted at the end."""
        if saved is not None and saved.n == 0:
            saved = None  # nothing counted yet (its zero counts would pass for recorded ones)
        self.shape = shape
        self.n = saved.n if saved is not None else 0
        self.count_type = np.uint32 if most_frames is None else count_dtype(max(most_frames, self.n))
        self.most_frames = np.iinfo(np.uint32).max if most_frames is None else max(most_frames, self.n)
        self.mean: np.ndarray | None = np.array(saved.mean) if saved is not None else None
        self.m2: np.ndarray | None = np.array(saved.m2) if saved is not None else None
        self.counts: np.ndarray | None = None
        if saved is not None and saved.counts is not None:
            self.counts = saved.counts.astype(self.count_type)
        # the model's sums: none until the first tile says which it keeps (a resumed total: its own)
        self.extra: dict[str, np.ndarray] | None = dict(saved.extra) if saved is not None else None
        self.pending: list[SegmentParts] = []

    def expect(self, segment: Segment, tile_starts: np.ndarray) -> SegmentParts:
        """Register a segment whose parts are: one ``PixelStats`` per tile, then the statuses."""
        place = SegmentParts(segment, tile_starts, set(range(len(tile_starts))))
        self.pending.append(place)
        return place

    def add(self, place: SegmentParts, index: int, part) -> Iterator[tuple[Segment, ReadRecord]]:
        """Take one part (its value, or a Future of it); yields each segment it completes, with
        its ``ReadRecord``.

        A generator, to be run to its end: at each yield the total holds exactly the segments
        completed so far (the next one's waiting tiles are merged only after), so that a
        checkpoint saved there never holds more than it lists.
        """
        if index == len(place.tile_starts):
            place.record = fetch(part)
            place.n = place.record.used
        else:
            place.arrived[index] = part
        while self.pending:
            head = self.pending[0]
            for t in list(head.arrived):
                self._merge_tile(head, t, fetch(head.arrived.pop(t)))
            if head.waiting or head.record is None:
                break
            if head.merged_n not in (None, head.n):
                raise RuntimeError(f"segment {head.segment.id}: its tiles hold {head.merged_n} frames, "
                                   f"its statuses {head.n}")
            self.n += head.n
            self.pending.pop(0)
            yield head.segment, head.record

    def _merge_tile(self, head: SegmentParts, t: int, tile: PixelStats) -> None:
        head.waiting.discard(t)
        head.merged_n = tile.n
        if tile.n == 0:
            return
        if self.mean is None or self.m2 is None:
            self.mean = np.empty((len(STREAMS), *self.shape))
            self.m2 = np.empty((len(STREAMS), *self.shape))
            if tile.counts is not None:
                self.counts = np.zeros((len(COUNTS), *self.shape), self.count_type)
        if self.extra is None:
            self.extra = model.empty_like(tile.extra, self.shape, self.most_frames)
        rows = slice(head.tile_starts[t], head.tile_starts[t] + tile.mean.shape[1])
        counts = None if self.counts is None else self.counts[:, rows]
        extra = {k: v[rows] for k, v in self.extra.items()}
        merged = PixelStats(self.n, self.mean[:, rows], self.m2[:, rows], counts, extra).merge(tile)
        self.mean[:, rows], self.m2[:, rows] = merged.mean, merged.m2
        if self.counts is not None and merged.counts is not None:
            self.counts[:, rows] = merged.counts
        for k, v in self.extra.items():
            if k in merged.extra:
                v[rows] = merged.extra[k]

    def stats(self) -> PixelStats:
        if self.n == 0 or self.mean is None or self.m2 is None:
            return PixelStats.empty(self.shape)
        counts: np.ndarray | None = None if self.counts is None else self.counts.astype(count_dtype(self.n), copy=False)
        extra = model.widen(self.extra or {}, self.n)
        return PixelStats(self.n, self.mean, self.m2, counts, extra)


def fetch(part):
    """A part's value; a Future is fetched from the cluster, which then lets go of its copy."""
    if isinstance(part, Future):
        value = part.result()
        part.release()
        return value
    return part

