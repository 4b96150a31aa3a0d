"""stats.zarr: the saved statistics and the record of what they hold, written so that it
appears complete or not at all.

Saved state is zarr, JSON and CSV only, never pickle: a stats folder may come from someone else.

In a remote ``--out`` (an fsspec URL, ``place``) there is no rename: the whole new stats.zarr is
copied into place (server-side on an object store) after a small ``.stats.zarr.swap`` file names
it. While that file is there, readers read the new one where it was built, and the next scan into
the folder finishes the copy, so a crash at any point leaves one whole stats.zarr to read.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from ..records import Counted, StackMeta
from ..stats import COUNTS, STREAMS, PixelStats, count_dtype
from ..stats.dark_subtraction import hot_candidates
from ..stats.fit import FrameTable, fit_bands
from ..stats.model import FIRST_DAYS, total_types
from ..stats.model import empty_value as model_empty_value
from . import atomic, place
from .row_reads import read_rows_into

STATS_NAME = "stats.zarr"
SWAP_NAME = f".{STATS_NAME}.swap"  # remote folders: names the whole stats.zarr being copied in
ROW_CHUNK_VALUES = 2**21  # values per zarr chunk (16 MiB of float64), whole rows
SMALL_INTEGERS = BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle")


def _array_names(stream: str) -> tuple[str, str]:
    """The value stream keeps the public names mean/m2; others are prefixed. No var is written:
    it is m2 / n_images (``PixelStats.var``), and its float64 arrays were a third of the file's
    floats (a 45 MP RGB stats.zarr 6.1 GB, and the time to write them); older files have one,
    which nothing reads."""
    prefix = "" if stream == "value" else f"{stream}_"
    return f"{prefix}mean", f"{prefix}m2"


Manifest = dict[str, Counted]  # path -> its identity, shooting data and model factor, for every file counted
MODEL_PREFIX = "model_"  # the physics model's sums in stats.zarr: model_xr, model_excluded, ...


@dataclass(frozen=True)
class StatsArrays:
    """What stats.zarr holds and in which types, fixed before any rows are written: the workers
    write regions of arrays that already exist (a zarr array cannot be created by two writers).

    ``chunk_rows`` are the rows of one zarr chunk: a writer of whole chunks never shares one
    with another writer. ``counts``: the counts' dtype (None: not kept); ``extra``: the model's
    sums and their dtypes.
    """

    shape: tuple[int, ...]
    chunk_rows: int
    counts: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, stats: PixelStats, chunk_rows: int | None = None) -> StatsArrays:
        """The arrays that hold ``stats`` as they are (whole-sensor statistics)."""
        shape = tuple(stats.pixel_shape)
        rows = chunk_rows or default_chunk_rows(shape)
        counts = None if stats.counts is None else stats.counts.dtype.name
        return cls(shape, rows, counts, tuple((k, v.dtype.name) for k, v in sorted(stats.extra.items())))


def planned_arrays(shape: tuple[int, ...], chunk_rows: int, most_frames: int, counts: bool,
                   model_sums: tuple[str, ...], prior: StatsArrays | None = None) -> StatsArrays:
    """The arrays a scan will write: the counts and the model's sums it keeps (and the saved
    stats it merges with keep too: ``moments.merge_counts``, ``model.add``), in the types of a
    total of up to ``most_frames`` frames (a scan whose files all decode reaches it)."""
    if prior is not None:
        counts = counts and prior.counts is not None
        theirs = {name for name, _ in prior.extra}
        model_sums = tuple(k for k in model_sums if k in theirs and (k not in FIRST_DAYS or set(FIRST_DAYS) <= theirs))
    types = total_types(most_frames)
    # zarr stores whole chunks: a chunk taller than the sensor would store its padding too
    rows = max(1, min(chunk_rows, shape[0]))
    return StatsArrays(tuple(shape), rows, np.dtype(count_dtype(most_frames)).name if counts else None,
                       tuple((k, np.dtype(types[k]).name) for k in sorted(model_sums)))


def read_saved(out_dir: place.Where) -> tuple[StatsArrays, StackMeta, int]:
    """What a saved stats.zarr holds (its arrays, the stack, its frame count), without its numbers."""
    group: Any = _open(out_dir)
    attrs = dict(group.attrs)
    mean = group["mean"]
    counted = [group[f"{c}_count"] for c in attrs.get("counts", []) if f"{c}_count" in group]
    extra = tuple((k, group[MODEL_PREFIX + k].dtype.name) for k in sorted(attrs.get("model_sums", []))
                  if MODEL_PREFIX + k in group)
    arrays = StatsArrays(tuple(mean.shape), mean.chunks[0], counted[0].dtype.name if counted else None, extra)
    return arrays, StackMeta.from_attrs(attrs), int(attrs["n_images"])


def default_chunk_rows(shape: tuple[int, ...]) -> int:
    """Whole-row chunks of about ``ROW_CHUNK_VALUES`` values."""
    return max(1, min(shape[0], ROW_CHUNK_VALUES // max(1, int(np.prod(shape[1:])))))


def create_stats(out_dir: place.Where, arrays: StatsArrays) -> place.Folder:
    """An empty stats.zarr beside the target, hidden under a unique name, with every array
    (``finish_stats`` swaps it in): the rows are written into it by ``write_rows``."""
    out_dir = place.folder(out_dir)
    place.make(out_dir)
    tmp = out_dir / f".{STATS_NAME}.partial-{uuid.uuid4().hex}"
    group = zarr.open_group(place.url(tmp), mode="w")
    shape, chunks = arrays.shape, (arrays.chunk_rows, *arrays.shape[1:])
    # float64 statistics barely compress; uncompressed row-band chunks write ~5x faster
    for stream in STREAMS:
        for name in _array_names(stream):
            group.create_array(name, shape=shape, dtype=np.float64, chunks=chunks, compressors=None)
    # the counts and the model's sums are small integers, most of them empty: bit-shuffled lz4 writes
    # them as fast as raw, the rare sums 20-100x smaller, the dense cross term 1.6x (a 24-frame 12 MP
    # raw stack's stats.zarr: 1.6 GB -> 0.8 GB)
    if arrays.counts is not None:
        for name in COUNTS:
            group.create_array(f"{name}_count", shape=shape, dtype=arrays.counts, chunks=chunks,
                               compressors=SMALL_INTEGERS)
    for name, dtype in arrays.extra:
        group.create_array(MODEL_PREFIX + name, shape=shape, dtype=dtype, chunks=chunks, compressors=SMALL_INTEGERS,
                           fill_value=model_empty_value(name))
    return tmp


def _for_writing(group: Any, name: str) -> Any:
    """``group[name]``, writing every chunk it is given. zarr otherwise compares each chunk with
    the fill value first, to leave an empty one out: a pass over the data that cost more CPU
    than the write itself (12 s of a 45 MP RGB scan's 120), for chunks that are never empty."""
    return group[name].with_config({"write_empty_chunks": True})


def write_rows(tmp: place.Where, y0: int, stats: PixelStats, arrays: StatsArrays) -> None:
    """Rows ``y0:`` of the statistics into a stats.zarr made by ``create_stats``. Rows that start
    on a chunk and end on one (or at the bottom) are one writer's alone."""
    group: Any = zarr.open_group(str(tmp), mode="r+")
    rows = stats.pixel_shape[0]
    y1 = y0 + rows
    for i, stream in enumerate(STREAMS):
        mean_name, m2_name = _array_names(stream)
        _for_writing(group, mean_name)[y0:y1] = stats.mean[i]
        _for_writing(group, m2_name)[y0:y1] = stats.m2[i]
    if arrays.counts is not None:
        if stats.counts is None:
            raise ValueError("these statistics have no range counts, but stats.zarr keeps them")
        for name, data in zip(COUNTS, stats.counts):
            _for_writing(group, f"{name}_count")[y0:y1] = data.astype(arrays.counts, copy=False)
    for name, dtype in arrays.extra:
        if name not in stats.extra:
            raise ValueError(f"these statistics have no model sum {name!r}, but stats.zarr keeps it")
        _for_writing(group, MODEL_PREFIX + name)[y0:y1] = stats.extra[name].astype(dtype, copy=False)


def write_dark_rate_rows(tmp: place.Where, y0: int, y1: int, n: int, table: FrameTable) -> None:
    """``dark_rate`` and ``dark_rate_se`` of rows ``y0:y1`` (float32, DN/s at ISO 100), fitted
    from the sums already written there (``write_rows``): a band at a time, since a fit of
    many rows holds several float64 temporaries of their size."""
    group: Any = zarr.open_group(str(tmp), mode="r+")
    shape = tuple(group["mean"].shape)
    chunks = (group["mean"].chunks[0], *shape[1:])
    for name in ("dark_rate", "dark_rate_se"):
        if name not in group:  # the first writer creates them (a retried task finds them)
            try:
                group.create_array(name, shape=shape, dtype=np.float32, chunks=chunks, compressors=None)
            except Exception:  # noqa: BLE001 - another writer made it first
                pass
    stats = read_rows(tmp, y0, y1, n)
    for rows, fit in fit_bands(stats, table, chunks[0]):
        band = slice(y0 + rows.start, y0 + rows.stop)
        _for_writing(group, "dark_rate")[band] = fit.rate.astype(np.float32)
        _for_writing(group, "dark_rate_se")[band] = fit.rate_se.astype(np.float32)


def finish_stats(tmp: place.Where, out_dir: place.Where, n: int, meta: StackMeta, arrays: StatsArrays,
                 manifest: Manifest | None = None, hot_set: np.ndarray | None = None,
                 stack_kind: tuple[str, str] | None = None) -> place.Folder:
    """Record what the written stats.zarr holds (the stack, the counted files; ``hot_set``: the
    stack's possible hot sensels, ``dark_subtraction.hot_candidates``; ``stack_kind``: photos or
    darks by its statistics, and why, ``detect.stack_kind``) and swap it in for the old one by
    rename.

    The manifest of counted files lives in the group's attrs, so the stats and the record
    of what they contain can never disagree after a crash.
    """
    tmp = place.folder(tmp)
    group = zarr.open_group(place.url(tmp), mode="r+")
    rows: list[list[Any]] = [entry.row(path) for path, entry in sorted((manifest or {}).items())]
    group.attrs.update({**meta.to_attrs(), "n_images": int(n), "shape": list(arrays.shape),
                        "streams": list(STREAMS),
                        "counts": list(COUNTS) if arrays.counts is not None else [],
                        "model_sums": sorted(name for name, _ in arrays.extra),
                        "hot_set": [] if hot_set is None else [int(i) for i in hot_set],
                        "stack_kind": list(stack_kind) if stack_kind is not None else [],
                        "manifest": {"columns": list(Counted.COLUMNS), "rows": rows}})
    final = place.folder(out_dir) / STATS_NAME
    _swap_in(tmp, final)
    return final


def discard_stats(tmp: place.Where) -> None:
    """A stats.zarr that will not be swapped in (nothing was counted)."""
    place.remove_tree(place.folder(tmp))


def write_stats(out_dir: place.Where, stats: PixelStats, meta: StackMeta,
                manifest: Manifest | None = None) -> place.Folder:
    """Write whole-sensor statistics as stats.zarr, atomically (built beside the target, then
    swapped in by rename): ``create_stats``, ``write_rows``, ``finish_stats`` in this process."""
    arrays = StatsArrays.of(stats)
    tmp = create_stats(out_dir, arrays)
    for y in range(0, arrays.shape[0], arrays.chunk_rows):
        write_rows(tmp, y, stats.rows(y, y + arrays.chunk_rows), arrays)
    hot_set = hot_candidates(stats.mean[1], stats.m2[0])
    table = frame_table(manifest or {}, meta, hot_set)
    if table is not None and table.physical and "xr" in stats.extra:
        write_dark_rate_rows(tmp, 0, arrays.shape[0], stats.n, table)
    from ..detect.stack_kind import classify_stack

    return finish_stats(tmp, out_dir, stats.n, meta, arrays, manifest, hot_set, classify_stack(stats))


def frame_table(manifest: Manifest, meta: StackMeta, hot_set: np.ndarray | None = None) -> FrameTable | None:
    """The exposure factors of the counted frames, where the stack has an exposure model; with
    the stack's ``hot_set`` (``dark_subtraction.hot_candidates``), the frames the camera
    dark-subtracted are found too (``stats.dark_subtraction``)."""
    if not meta.exposure_source:
        return None
    rows = list(manifest.values())
    candidates = hot_set
    return FrameTable.of((c.factor for c in rows), physical=meta.exposure_source == "exif",
                         sketches=[c.spikes for c in rows], candidates=candidates, isos=[c.iso for c in rows])


def dark_subtracted_paths(manifest: Manifest, meta: StackMeta, hot_set: np.ndarray) -> list[str]:
    """The counted frames the camera dark-subtracted (``stats.dark_subtraction``)."""
    table = frame_table(manifest, meta, hot_set)
    if table is None or table.subtracted is None:
        return []
    return [p for p, s in zip(manifest, table.subtracted) if s]


def frame_days(manifest: Manifest) -> np.ndarray:
    """Each counted frame's capture day (days since 1970), in the manifest's order; a frame with
    no usable date counts at the stack's median day (as the scan summed it: ``frames.py``)."""
    from ..frames import usable_time

    times = [usable_time(c.time) for c in manifest.values()]
    known = sorted(t for t in times if t is not None)
    fill = known[len(known) // 2] if known else 0.0
    return np.array([int((t if t is not None else fill) // 86400) for t in times], np.int64)


def _swap_in(tmp: Any, final: Any) -> None:
    if place.is_remote(final):
        atomic.write_text(final.with_name(SWAP_NAME), tmp.name)
        finish_swap(final.parent)
        return
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    place.remove_tree(old)


def finish_swap(out_dir: place.Where) -> None:
    """Copy the whole stats.zarr that ``SWAP_NAME`` names into place, if a swap is pending in
    remote ``out_dir`` (a crash may have cut one short): run by the holder of the folder."""
    out_dir = place.folder(out_dir)
    marker, final = out_dir / SWAP_NAME, out_dir / STATS_NAME
    source = _pending(out_dir)
    if source is None:
        return
    if not source.exists():  # removed by hand: the swap is void, stats.zarr stays as it is
        marker.unlink(missing_ok=True)
        return
    place.remove_tree(final)
    place.copy_tree(source, final)
    marker.unlink(missing_ok=True)
    place.remove_tree(source)


def _pending(out_dir: Any) -> Any:
    """The whole new stats.zarr of a swap not finished in ``out_dir`` (None: none pending)."""
    if not place.is_remote(out_dir):
        return None
    try:
        name = (out_dir / SWAP_NAME).read_text().strip()
    except FileNotFoundError:
        return None
    if not name.startswith(f".{STATS_NAME}.partial-") or "/" in name:
        raise ValueError(f"{out_dir / SWAP_NAME} names no stats.zarr of this folder: {name!r}")
    return out_dir / name


def stats_location(out_dir: place.Where) -> place.Folder:
    """Where the saved stats.zarr of ``out_dir`` is to be read: its own, or, while a swap into a
    remote folder is pending, the whole new one it copies in."""
    out_dir = place.folder(out_dir)
    pending = _pending(out_dir)
    return pending if pending is not None and pending.exists() else out_dir / STATS_NAME


def read_stats(out_dir: place.Where) -> tuple[PixelStats, StackMeta]:
    """Load stats.zarr (written by write_stats) back into PixelStats and what is known of the stack."""
    group = _open(out_dir)
    attrs = dict(group.attrs)
    return _read_group(group, slice(None), int(attrs["n_images"])), StackMeta.from_attrs(attrs)


def read_rows(path: place.Where, y0: int, y1: int, n: int | None = None,
              skip: tuple[str, ...] = ()) -> PixelStats:
    """Rows ``y0:y1`` of a stats.zarr folder (a saved one, or one being written: then its frame
    count ``n`` is given), for work that needs only a band of the sensor; the model's sums named
    in ``skip`` are not read (a pass that has what it needs of them already)."""
    group = zarr.open_group(str(path), mode="r")
    attrs = dict(group.attrs)
    return _read_group(group, slice(y0, y1), int(str(attrs["n_images"])) if n is None else n, skip)


def _read_group(group: Any, rows: slice, n: int, skip: tuple[str, ...] = ()) -> PixelStats:
    """The statistics a stats.zarr group holds, over ``rows``: every stream saved, the counts and
    the model's sums where present (a group being written has no attrs yet: its arrays say).
    Each array is read straight into its place in the stacked result (a stack of them after
    would copy every byte once more: a third of a band's reading)."""
    attrs = dict(group.attrs)
    names = set(group.array_keys())
    streams = [_array_names(stream) for stream in attrs.get("streams", STREAMS)]
    counted = [f"{name}_count" for name in attrs.get("counts", COUNTS)]
    counted = counted if counted and all(c in names for c in counted) else []
    first = group[streams[0][0]]
    height = len(range(*rows.indices(first.shape[0])))
    mean = np.empty((len(streams), height, *first.shape[1:]), first.dtype)
    m2 = np.empty_like(mean)
    for i, (mean_name, m2_name) in enumerate(streams):
        _read_into(group[mean_name], rows, mean[i])
        _read_into(group[m2_name], rows, m2[i])
    counts = None
    if counted:
        counts = np.empty((len(counted), *mean.shape[1:]), group[counted[0]].dtype)
        for i, name in enumerate(counted):
            _read_into(group[name], rows, counts[i])
    sums = attrs.get("model_sums", [k[len(MODEL_PREFIX):] for k in names if k.startswith(MODEL_PREFIX)])
    extra = {name: group[MODEL_PREFIX + name][rows] for name in sums if MODEL_PREFIX + name in names
             and name not in skip}
    return PixelStats(n, mean, m2, counts, extra)


def _read_into(array: Any, rows: slice, out: np.ndarray) -> None:
    """``array[rows]`` into ``out`` (of its dtype and shape), without a temporary."""
    from zarr.core.buffer import default_buffer_prototype

    if out.dtype != array.dtype or not out.flags.c_contiguous or rows.step not in (None, 1):
        out[...] = array[rows]
        return
    y0, y1, _ = rows.indices(array.shape[0])
    if read_rows_into(array, y0, y1, out):
        return
    array.get_basic_selection(rows, out=default_buffer_prototype().nd_buffer.from_numpy_array(out))


def read_sample_rows(path: place.Where, n: int, rows_of: Callable[[int], slice]) -> PixelStats:
    """The rows ``rows_of(height)`` of a stats.zarr folder (a few hundred spread over the sensor)."""
    group: Any = zarr.open_group(str(path), mode="r")
    return _read_group(group, rows_of(int(group["mean"].shape[0])), n)


def read_meta(out_dir: place.Where) -> StackMeta:
    """What a saved stats.zarr records of its stack (reads no numbers)."""
    return StackMeta.from_attrs(dict(_open(out_dir).attrs))


def read_size(out_dir: place.Where) -> tuple[int, tuple[int, ...]]:
    """A saved stats.zarr's frame count and sensor shape (reads no numbers)."""
    attrs = dict(_open(out_dir).attrs)
    return int(str(attrs["n_images"])), tuple(int(str(v)) for v in list(attrs["shape"]))


def read_outline(path: place.Where, n: int) -> PixelStats:
    """Statistics of no rows that hold what a stats.zarr folder holds (the counts, the model's
    sums): what planning needs to know of them."""
    group: Any = zarr.open_group(str(path), mode="r")
    return _read_group(group, slice(0, 0), n)


def read_stack_kind(out_dir: place.Where) -> tuple[str, str] | None:
    """Photos or darks and why, as the scan found it from the statistics (None: not recorded)."""
    kind = dict(_open(out_dir).attrs).get("stack_kind")
    return (str(kind[0]), str(kind[1])) if isinstance(kind, list) and len(kind) == 2 else None


def read_hot_set(out_dir: place.Where) -> np.ndarray | None:
    """The possible hot sensels recorded with the stats (None: stats saved before they were)."""
    hot = dict(_open(out_dir).attrs).get("hot_set")
    return None if hot is None else np.asarray(hot, np.int64)


def read_manifest(out_dir: place.Where) -> Manifest:
    """The files counted in the saved stats: path -> their ``Counted`` record."""
    manifest = dict(_open(out_dir).attrs).get("manifest") or {}
    columns = list(manifest.get("columns") or ["path", "size", "mtime", "digest"])
    return dict(Counted.from_row(columns, row) for row in manifest.get("rows", []))


def _open(out_dir: place.Where):
    path = stats_location(out_dir)
    if not path.exists():
        raise FileNotFoundError(f"no {STATS_NAME} in {out_dir}: run `hotpixels scan ... --out {out_dir}` first")
    return zarr.open_group(place.url(path), mode="r")
