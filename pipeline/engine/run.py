"""Running a scan's graph on a cluster: header probes, then segments in waves, merged in order
into the running total and checkpointed after each one.

The engine knows no file format: the caller passes the functions that probe and read files
(``pipeline.io``), and the engine only needs a file's path, size and mtime.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from dask.base import tokenize
from distributed import Client, as_completed

from ..records import ReadRecord
from ..state.checkpoint import Checkpoints
from ..stats import PixelStats
from ..stats.model import ModelPlan
from .cluster import ProgressBar
from .graph import Reader, image_array, segment_outputs, tile_stats
from .plan import checkpoint_salt, choose_batch_size, partitions, segments, segments_in_flight
from .total import RunningTotal


def map_batches(client: Client, fn: Callable[..., list], items: Sequence[Any], batch: int, progress: str = "",
                **kwargs) -> list:
    """``fn`` over ``items`` in batches on the workers, results flattened in order (``progress``:
    a label for the bar, drawn when there is more than one batch)."""
    chunks = [list(items[i : i + batch]) for i in range(0, len(items), batch)]
    futures = client.map(fn, chunks, pure=False, **kwargs)
    if progress and len(chunks) > 1:
        ProgressBar(futures, progress, scheduler=scheduler_address(client), interval="200ms")
    return [x for part in client.gather(futures) for x in part]


def run_one(client: Client, fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` on a worker (which can reach the worker's storage), and its result."""
    return client.submit(fn, *args, pure=False).result()


def reduce_files(client: Client, headers: list[Any], shape: tuple[int, ...], dtype: str, stride: int, out_dir: Path,
                 settings, reader: Reader, log: Callable[[str], None], progress: bool,
                 counted_by_size: dict[int, dict[str, str]],
                 model: ModelPlan | None = None) -> tuple[PixelStats, ReadRecord, int]:
    """Run every segment not checkpointed yet, in waves, merging each into the running total
    in order and checkpointing the total after each segment.

    ``counted_by_size`` maps the size and content digest of files counted before (saved stats)
    to their path: a copy of one is not counted again. ``model``: each file's terms of the
    physics model, where the scan keeps its sums. Returns the merged stats, the files' record
    (statuses, digests of the files used, their model factors), and how many files an earlier
    interrupted run had already done.
    """
    batch_size = choose_batch_size(settings, shape, dtype)
    salt = (checkpoint_salt(shape, dtype, stride, settings.range_counts),
            None if model is None else (model.spec, model.frame_mean))
    segs = segments(headers, max(1, settings.checkpoint_files), salt)
    checkpoints = Checkpoints(out_dir, tokenize([s.id for s in segs]))
    saved, records = checkpoints.load()
    if set(records) - {s.id for s in segs}:
        saved, records = None, {}
    resumed = sum(len(s.headers) for s in segs if s.id in records)
    if records:
        log(f"resuming: {len(records)} of {len(segs)} segments ({resumed} of {len(headers)} files) "
            f"already done by an interrupted run")

    row_values = int(np.prod(shape[1:]))
    tile_rows = max(1, settings.tile_values // row_values)
    threads = max(1, sum(client.nthreads().values()))
    total = RunningTotal(saved, shape, most_frames=len(headers))
    todo = [s for s in segs if s.id not in records]
    wave = segments_in_flight(shape, dtype, settings)
    done_files = resumed
    for start in range(0, len(todo), wave):
        parts: dict = {}  # future -> (segment's place in the running total, index of its part)
        for k, seg in enumerate(todo[start : start + wave]):
            batches, known = partitions(seg, threads, batch_size, dtype, counted_by_size)
            images, read_statuses = image_array(batches, shape, dtype, tile_rows, stride, reader=reader, known=known,
                                                counts=settings.range_counts, model=model)
            tiles = tile_stats(images, split_every=settings.split_every)
            # in order (distributed runs the latest submission first by default): the running
            # total takes segments in order, so a later one's tiles would wait
            futures = client.compute(segment_outputs(tiles, read_statuses), optimize_graph=False, priority=wave - k)
            place = total.expect(seg, np.cumsum((0, *tiles.chunks[1]))[:-1])
            parts.update({f: (place, i) for i, f in enumerate(futures)})
        files = sum(len(seg.headers) for seg in todo[start : start + wave])
        label = (f"scanning {files} frames" if files == len(headers) - resumed
                 else f"scanning frames {done_files + 1}-{done_files + files} of {len(headers)}")
        bar = _progress_thread(client, list(parts), label) if progress else None
        for future in as_completed(list(parts), loop=client.loop):
            place, index = parts.pop(future)
            # the future, not its value: a tile that cannot be merged yet stays on its worker
            for seg, record in total.add(place, index, future):
                records[seg.id] = record
                if len(records) < len(segs):  # the last goes straight into stats.zarr
                    checkpoints.save(total.stats(), records)
        if bar:
            bar.join(timeout=10)
        done_files += files
    return total.stats(), ReadRecord.concat([records[seg.id] for seg in segs]), resumed


def scheduler_address(client: Client) -> str:
    """The address of the scheduler ``client`` talks to (for the progress bar's own connection)."""
    return str(client.scheduler.address) if client.scheduler is not None else ""


def _progress_thread(client: Client, futures: list, label: str) -> threading.Thread:
    """Draw the bar from a thread while the main thread saves checkpoints as segments finish."""
    thread = threading.Thread(target=ProgressBar, args=(futures, label),
                              kwargs={"scheduler": scheduler_address(client), "interval": "200ms"}, daemon=True)
    thread.start()
    return thread
