"""Running a scan's graph on a cluster: header probes, then segments in waves, merged in order
into the running total and checkpointed after each one. Segments are cut as the scan goes, each
about ``scan.checkpoint_seconds`` long (``plan.SegmentSizer``), and the cuts are saved with the
checkpoint, so that a rerun resumes the same segments.

The engine knows no file format: the caller passes the functions that probe and read files
(``pipeline.io``), and the engine only needs a file's path, size and mtime.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any

from dask.base import tokenize
from distributed import Client

from ..records import ReadRecord
from ..report.numbers import block_factor, join_blocks
from ..state import place
from ..state.checkpoint import Checkpoints
from ..stats.model import ModelPlan
from .cluster import ProgressBar
from .graph import Reader, band_outputs, image_array, row_tiles, segment_outputs, tile_stats
from .plan import (
    Segment,
    SegmentSizer,
    band_split,
    checkpoint_salt,
    choose_batch_size,
    first_segment,
    partitions,
    rows_per_tile,
    segment,
    segments_in_flight,
    with_the_rest,
)
from .progress import Progress
from .total import CheckpointSink, StatsSink, TileRef, TileTotals

# the task stream's names of the steps run through ``map_batches``
STEPS = {"probe": "discover-headers", "probe_like": "discover-headers"}
PREVIEW_PIXELS = 200 * 200  # the progress preview's most pixels (the dashboard's image)


def map_batches(client: Client, fn: Callable[..., list], items: Sequence[Any], batch: int, progress: str = "",
                **kwargs) -> list:
    """``fn`` over ``items`` in batches of at most ``batch`` on the workers, results flattened in
    order (``progress``: a label for the bar, drawn when there is more than one batch). A few
    items are spread over every worker thread: 40 raw headers, each an unpack of the file, took
    1.45 s on one worker while the other waited."""
    threads = max(1, sum(client.nthreads().values()))
    batch = max(1, min(batch, -(-len(items) // threads)))
    chunks = [list(items[i : i + batch]) for i in range(0, len(items), batch)]
    futures = client.map(fn, chunks, pure=False, key=STEPS.get(fn.__name__, fn.__name__), **kwargs)
    if progress and len(chunks) > 1:
        ProgressBar(futures, progress, scheduler=scheduler_address(client), interval="200ms")
    return [x for part in client.gather(futures) for x in part]


def run_one(client: Client, fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` on a worker (which can reach the worker's storage), and its result."""
    return client.submit(fn, *args, pure=False).result()


@dataclass
class Reduced:
    """What a scan's reduction left: stats.zarr's rows written (each tile's ``TileRef``; ``n``
    frames, the saved stats' included), the files' record, and how many files an earlier
    interrupted run had already done."""

    n: int
    tiles: list[TileRef]
    record: ReadRecord
    resumed: int


def reduce_files(client: Client, headers: list[Any], shape: tuple[int, ...], dtype: str, stride: int,
                 out_dir: place.Folder, settings, reader: Reader, log: Callable[[str], None], show_bar: bool,
                 counted_by_size: dict[int, dict[str, str]], sink: StatsSink, local: bool = False,
                 model: ModelPlan | None = None, progress: Progress | None = None) -> Reduced:
    """Run every segment not checkpointed yet, in waves; the workers fold each segment's tiles
    into the running total, checkpointed after each segment, and write the last into stats.zarr
    (``sink``: the one being written, and the saved stats to merge with). ``local``: the workers
    cannot write ``out_dir``, so this process folds and writes, a tile at a time.

    ``counted_by_size`` maps the size and content digest of files counted before (saved stats)
    to their path: a copy of one is not counted again. ``model``: each file's terms of the
    physics model, where the scan keeps its sums. ``progress``: told of every finished segment,
    and asked between segments whether the scan is cancelled.
    """
    batch_size = choose_batch_size(settings, shape, dtype)
    tile_rows = rows_per_tile(shape, settings)
    salt = (checkpoint_salt(shape, dtype, stride, settings.range_counts),
            None if model is None else (model.spec, model.frame_mean))
    checkpoints = Checkpoints(out_dir, tokenize(salt, [(h.path, h.size, h.mtime) for h in headers], tile_rows))
    tiles = row_tiles(shape[0], tile_rows)
    saved, records = checkpoints.load(len(tiles))
    done = resumed_segments(headers, checkpoints.segments(), checkpoints.sizes(), salt) if records else None
    if done is None or set(records) != {seg.id for seg in done}:
        saved, records, done = None, {}, []
    resumed = sum(len(seg.headers) for seg in done)
    if records:
        log(f"resuming: {len(records)} segments ({resumed} of {len(headers)} files) already done by an "
            f"interrupted run")

    threads = max(1, sum(client.nthreads().values()))
    totals = TileTotals(client, checkpoints.folder, tiles, tuple(shape[1:]), saved, local)
    factor = block_factor(shape[0], shape[1], PREVIEW_PIXELS) if progress is not None else 0
    between = CheckpointSink(str(checkpoints.folder), factor)
    sink = dataclasses.replace(sink, preview=factor)
    wave = segments_in_flight(shape, dtype, settings)
    sizer = SegmentSizer(settings.checkpoint_seconds, settings.checkpoint_files, threads * batch_size,
                         first_segment(settings.checkpoint_seconds, threads, shape, dtype))
    sizes = [len(seg.headers) for seg in done]
    order = [seg.id for seg in done]
    position = resumed
    written: list[TileRef] = []
    if progress is not None:
        progress.begin(len(headers), resumed, sum(len(seg.headers) - records[seg.id].used for seg in done), len(done))
    while position < len(headers):
        if progress is not None:
            progress.check()
        started = time.monotonic()
        cut = []
        for _ in range(wave):
            if position >= len(headers):
                break
            take = with_the_rest(sizer.next(), len(headers) - position, sizer.least)
            cut.append(segment(headers[position : position + take], salt))
            position += take
        last = position >= len(headers)
        for k, seg in enumerate(cut):
            bands = band_split(seg, threads, shape, dtype, settings, model)
            if bands is not None:
                whole, known = partitions(seg, 1, batch_size, dtype, counted_by_size)
                outputs = band_outputs(whole[0], bands, shape, dtype, tile_rows, stride, reader, known[0],
                                       settings.range_counts, model)
            else:
                batches, known = partitions(seg, threads, batch_size, dtype, counted_by_size)
                images, read_statuses = image_array(batches, shape, dtype, tile_rows, stride, reader=reader,
                                                    known=known, counts=settings.range_counts, model=model)
                outputs = segment_outputs(tile_stats(images, split_every=settings.split_every), read_statuses)
            # in order (distributed runs the latest submission first by default): the total takes
            # segments in order, so a later one's tiles would wait
            futures = client.compute(outputs, optimize_graph=False, priority=wave - k)
            totals.expect(seg, futures[:-1], futures[-1], sink if last and seg is cut[-1] else between)
        files = sum(len(seg.headers) for seg in cut)
        label = (f"scanning {files} frames" if files == len(headers) - resumed
                 else f"scanning frames {position - files + 1}-{position} of {len(headers)}")
        watched = [f for state in totals.pending for f in state.parts]
        bar = _progress_thread(client, watched, label) if show_bar else None
        if progress is not None:
            progress.segment(files)
            progress.watch([f for state in totals.pending for f in (*state.parts, state.statuses)])
        try:
            for seg, record in totals.run():
                records[seg.id] = record
                order.append(seg.id)
                sizes.append(len(seg.headers))
                if last and seg is cut[-1]:
                    written = list(totals.heads)  # type: ignore[arg-type]
                else:
                    checkpoints.save(totals.saved(), records, sizes)
                if progress is not None:
                    progress.segment_done(len(seg.headers), len(seg.headers) - record.used,
                                          _preview(totals.heads, shape, factor))
        except CancelledError:
            if progress is not None:
                progress.check()
            raise
        if bar:
            bar.join(timeout=10)
        sizer.observe(files, time.monotonic() - started)
    if resumed == len(headers):
        written = totals.finish(sink)
    n = written[0].n if written else 0
    return Reduced(n, written, ReadRecord.concat([records[seg_id] for seg_id in order]), resumed)


def _preview(heads: list[TileRef | None], shape: tuple[int, ...], factor: int) -> Any:
    """The running total's preview, joined from its tiles' (``total.preview_blocks``)."""
    parts = [h.preview for h in heads if h is not None and h.preview is not None]
    return join_blocks(parts, tuple(shape), factor, "max") if parts and factor else None


def resumed_segments(headers: list[Any], ids: list[str], sizes: list[int], salt: tuple) -> list[Segment] | None:
    """The segments a saved checkpoint holds, cut from ``headers`` as the interrupted run cut
    them (its ``sizes``, in order); None if they are not these files' (the scan starts over)."""
    if len(ids) != len(sizes):
        return None
    out, position = [], 0
    for seg_id, size in zip(ids, sizes, strict=True):
        seg = segment(headers[position : position + size], salt)
        if size <= 0 or seg.id != seg_id:
            return None
        out.append(seg)
        position += size
    return out


def scheduler_address(client: Client) -> str:
    """The address of the scheduler ``client`` talks to (for the progress bar's own connection)."""
    return str(client.scheduler.address) if client.scheduler is not None else ""


def _progress_thread(client: Client, futures: list, label: str) -> threading.Thread:
    """Draw the bar from a thread while the main thread saves checkpoints as segments finish."""
    thread = threading.Thread(target=ProgressBar, args=(futures, label),
                              kwargs={"scheduler": scheduler_address(client), "interval": "200ms"}, daemon=True)
    thread.start()
    return thread
