"""The scan: discover -> group -> read (delayed chunks) -> partial stats -> tree merge -> save.

This module only sequences the steps and talks to the user; each step lives in its own module.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from dask import delayed
from dask.base import tokenize
from distributed import Client, Future, as_completed

from . import __version__
from .checkpoint import Checkpoints
from .cluster import ProgressBar, bytes_sent, open_client
from .config import Config
from .detect import Detection
from .discover import Group, expand, group, probe, probe_like
from .readers import Header, read_file, read_header
from .report import preload as preload_report
from .results import write_results
from .reduce import image_array, segment_outputs, tile_stats
from .stats import COUNTS, STREAMS, PixelStats, count_dtype, neighbour_stride, sum_types
from .store import STATS_NAME, Manifest, manifest_of, read_stats, write_files_csv, write_stats

Status = tuple[str, str, str]


class ScanError(RuntimeError):
    """A scan that cannot be done as asked; the CLI prints one line and exits 2."""


class NoImagesError(ScanError):
    """Nothing usable was found."""


class MergeRefused(ScanError):
    """--merge was asked with files from another sensor than the saved stats."""


@dataclass
class ScanResult:
    out_dir: Path
    stats: PixelStats
    attrs: dict
    statuses: list[Status]
    elapsed: float
    outputs: list[Path] = field(default_factory=list)
    resumed_files: int = 0
    detection: Detection | None = None
    others: list[ScanResult] = field(default_factory=list)  # the other groups, with --all-groups

    @property
    def skipped(self) -> list[Status]:
        return [s for s in self.statuses if s[1] == "skipped"]


@dataclass
class Segment:
    """A run of files whose merged partial is checkpointed as one unit."""

    id: str
    headers: list[Header]


def scan(inputs: list[str], out_dir: str | Path, config: Config | None = None, client: Client | None = None,
         merge: bool = False, log: Callable[[str], None] = print, progress: bool = True,
         detect_defects: bool = True) -> ScanResult:
    """Scan image files into per-pixel statistics saved in ``out_dir``.

    Uses ``client`` if given (e.g. in a notebook), else the cluster described by ``config``.
    With ``merge``, the files are added to the stats already in ``out_dir``; files counted
    there before are recognised and not counted again. An interrupted scan resumes from its
    checkpoints when run again with the same inputs. Unless ``detect_defects`` is False, the
    defects are then classified and every output is written (see results.py).
    """
    config = config or Config()
    out_dir = Path(out_dir)
    started = time.monotonic()
    expansion = expand(list(inputs))
    if not expansion.paths:
        raise NoImagesError(f"no image files found in {', '.join(inputs) or 'the given inputs'}")
    discovery_skips: list[Status] = [(i, "skipped", why) for i, why in expansion.problems]
    log(f"found {len(expansion.paths)} files")

    def with_client(c: Client) -> ScanResult:
        headers = _probe_all(c, expansion.paths, config.scan, progress)
        if detect_defects and config.output.report:
            preload_report()  # after the cluster start-up, which imports most of what the client needs
        groups, skipped = _stackable_groups(headers)
        run = dict(client=c, config=config, merge=merge, log=log, progress=progress, detect_defects=detect_defects,
                   started=started)
        if not config.scan.all_groups:
            main = groups[0]
            for other in groups[1:]:
                skipped.extend((h.path, "skipped", _other_group_reason(other, main)) for h in other.headers)
            return _scan_group(main, out_dir, discovery_skips + skipped, **run)
        results = []
        for g in groups:
            log(f"group {g.describe()}: {len(g.headers)} files -> {out_dir / group_folder(g)}")
            results.append(_scan_group(g, out_dir / group_folder(g), discovery_skips + skipped, **run))
        used = [(p, s, f"group {group_folder(g)}") for g, r in zip(groups, results) for p, s, _ in r.statuses if s == "used"]
        write_files_csv(_ensure(out_dir), discovery_skips + skipped + used)
        results[0].others = results[1:]
        return results[0]

    if client is not None:
        return with_client(client)
    with open_client(config.cluster, log) as c:
        return with_client(c)


def skip_summary(skipped: list[Status]) -> str:
    """' (3 cannot decode, 1 different sensor or layout; see files.csv)': why, most common first."""
    if not skipped:
        return ""
    counts = Counter(reason.split(":")[0] for _, _, reason in skipped)
    return " (" + ", ".join(f"{n} {why}" for why, n in counts.most_common()) + "; see files.csv)"


def _scan_group(main: Group, out_dir: Path, skipped: list[Status], *, client: Client, config: Config, merge: bool,
                log: Callable[[str], None], progress: bool, detect_defects: bool, started: float) -> ScanResult:
    """Reduce one group of stackable files into out_dir (merging into saved stats if asked)."""
    prior, prior_attrs = _load_prior(out_dir, main) if merge else (None, {})
    manifest = manifest_of(prior_attrs)
    counted = {h.path for h in main.headers if manifest.get(h.path, ())[:2] == (h.size, h.mtime)}
    todo = [h for h in main.headers if h.path not in counted]
    skipped = skipped + [(p, "skipped", f"already counted in {out_dir / STATS_NAME}") for p in sorted(counted)]
    sent_before = bytes_sent(client)
    stats, statuses, digests, resumed = _reduce_segments(client, todo, main.first, out_dir, config, log, progress,
                                                         manifest)
    if stats.n:
        sent = bytes_sent(client) - sent_before
        log(f"partial statistics sent by the workers: {sent / 2**20:,.0f} MB ({sent / stats.n / 2**20:.2f} MB per image)")
    if prior is not None:
        stats = prior.merge(stats)
    all_statuses = skipped + statuses
    if stats.n == 0:
        write_files_csv(_ensure(out_dir), all_statuses)
        first = next((s[2] for s in statuses if s[1] == "skipped"), "no files")
        raise NoImagesError(f"none of the {len(statuses)} files of the main group could be decoded "
                            f"(first: {first}); see {out_dir / 'files.csv'}")
    identity = {h.path: (h.size, h.mtime) for h in main.headers}
    manifest.update({s[0]: (*identity[s[0]], digests.get(s[0], "")) for s in statuses if s[1] == "used"})
    attrs = {**_attrs(main, config), **({"created": prior_attrs["created"]} if prior_attrs.get("created") else {})}
    # stats.zarr is written while the defects are classified: both only read the stats, and
    # the workers sit idle by now, so the client's two jobs share the cores
    with ThreadPoolExecutor(1, thread_name_prefix="write-stats") as pool:
        saved = pool.submit(_save_stats, _ensure(out_dir), stats, attrs, manifest)
        outputs = [write_files_csv(out_dir, all_statuses)]
        result = ScanResult(out_dir, stats, attrs, all_statuses, time.monotonic() - started, outputs, resumed)
        log(f"scanned {stats.n} images ({attrs['group']}) in {result.elapsed:.1f} s; "
            f"{len(result.skipped)} skipped{skip_summary(result.skipped)}")
        try:
            if detect_defects and stats.n >= 2:
                written = write_results(out_dir, stats, attrs, all_statuses, config, log, result.elapsed)
                result.detection = written.detection
                result.outputs += written.outputs
            elif detect_defects:
                log(f"only {stats.n} image: statistics saved, but classifying defects needs at least 2")
        finally:
            outputs.insert(0, saved.result())
    return result


def _save_stats(out_dir: Path, stats: PixelStats, attrs: dict, manifest: Manifest) -> Path:
    """stats.zarr, then the checkpoints it makes redundant are removed."""
    path = write_stats(out_dir, stats, attrs, manifest)
    Checkpoints(out_dir, "").clear()
    return path


def group_folder(g: Group) -> str:
    """A safe subfolder name for --all-groups, e.g. '4000x6000-uint16-raw-Canon-EOS-R5'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", g.describe()).strip("-.")[:120] or "group"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _load_prior(out_dir: Path, main: Group) -> tuple[PixelStats | None, dict]:
    """Saved stats to merge into, refused if they come from another sensor or layout."""
    if not (out_dir / STATS_NAME).exists():
        return None, {}
    prior, attrs = read_stats(out_dir)
    h = main.first
    mine = {"shape": list(h.shape), "dtype": h.dtype, "raw": h.raw, "make": h.make, "model": h.model, "serial": h.serial}
    theirs = {k: attrs.get(k) for k in mine}
    differ = [f"{k} {theirs[k]!r} vs {mine[k]!r}" for k in mine if theirs[k] != mine[k]]
    if differ:
        raise MergeRefused(f"cannot merge into {out_dir / STATS_NAME}: it holds another sensor or layout "
                           f"({'; '.join(differ)})")
    return prior, attrs


def _probe_all(client: Client, paths: list[str], settings, progress: bool) -> list[Header]:
    """Read every header once, in parallel on the workers (or only the first, for a uniform set)."""
    batch = settings.probe_batch
    chunks = [paths[i : i + batch] for i in range(0, len(paths), batch)]
    if settings.uniform:
        template = client.submit(read_header, paths[0], pure=False).result()
        if template.error:
            raise NoImagesError(f"the first file, {paths[0]}, is not usable: {template.error}")
        futures = client.map(probe_like, chunks, template=template, pure=False)
    else:
        futures = client.map(probe, chunks, pure=False)
    if progress and len(chunks) > 1:
        ProgressBar(futures, "headers", scheduler=client.scheduler.address, interval="200ms")
    return [h for part in client.gather(futures) for h in part]


def _stackable_groups(headers: list[Header]) -> tuple[list[Group], list[Status]]:
    """Groups of files that can be stacked, largest first; unreadable and unsupported files skipped."""
    skipped: list[Status] = [(h.path, "skipped", h.error) for h in headers if h.error]
    groups = []
    for g in group(headers):
        refusal = _unsupported(g.first)
        if refusal:
            skipped.extend((h.path, "skipped", refusal) for h in g.headers)
        else:
            groups.append(g)
    if not groups:
        first = skipped[0][2] if skipped else "no files"
        raise NoImagesError(f"none of the {len(headers)} files could be used (first: {first})")
    return groups, skipped


def _unsupported(h: Header) -> str:
    """Why a sensor cannot be scanned correctly, or '' if it can."""
    if h.raw and (h.cfa_pattern is None or len(h.cfa_pattern) != 2 or any(len(r) != 2 for r in h.cfa_pattern)):
        size = f"{len(h.cfa_pattern)}x{len(h.cfa_pattern[0])} " if h.cfa_pattern else ""
        return (f"unsupported colour filter: a {size}pattern that is not a 2x2 Bayer mosaic (e.g. Fujifilm X-Trans); "
                f"same-colour neighbours would be wrong, so it is refused")
    return ""


def _other_group_reason(other: Group, main: Group) -> str:
    why = f"different sensor or layout: {other.describe()} (scanning the largest group, {main.describe()}"
    a, b = other.first, main.first
    if a.shape[:2] == b.shape[1::-1] and a.shape[2:] == b.shape[2:] and (a.make, a.model) == (b.make, b.model):
        why += "; the same sensor turned by 90 degrees, as rotated JPEGs are: scan it with --all-groups"
    return why + ")"


def _segments(headers: list[Header], per_segment: int, salt: tuple) -> list[Segment]:
    """Cut the files into checkpoint units; ids change if any file or setting changes."""
    out = []
    for i in range(0, len(headers), per_segment):
        part = headers[i : i + per_segment]
        out.append(Segment(tokenize(salt, [(h.path, h.size, h.mtime) for h in part]), part))
    return out


def _reduce_segments(client: Client, headers: list[Header], first: Header, out_dir: Path, config: Config,
                     log: Callable[[str], None], progress: bool,
                     manifest: Manifest) -> tuple[PixelStats, list[Status], dict[str, str], int]:
    """Run every segment not checkpointed yet, in waves, merging each into the running total
    in order and checkpointing the total after each segment.

    Returns the merged stats, every file's status, the digests of the files used, and how
    many files an earlier interrupted run had already done.
    """
    counted_by_size: dict[int, dict[str, str]] = {}
    for path, (size, _, digest) in manifest.items():
        if digest:
            counted_by_size.setdefault(size, {})[digest] = path
    shape, dtype = tuple(first.shape), first.dtype
    stride = neighbour_stride(first.raw)
    batch_size = choose_batch_size(config.scan, shape, dtype)
    salt = (shape, dtype, stride, STREAMS, config.scan.range_counts and COUNTS)
    segments = _segments(headers, max(1, config.scan.checkpoint_files), salt)
    checkpoints = Checkpoints(out_dir, tokenize([s.id for s in segments]))
    saved, records = checkpoints.load()
    if set(records) - {s.id for s in segments}:
        saved, records = None, {}
    resumed = sum(len(s.headers) for s in segments if s.id in records)
    if records:
        log(f"resuming: {len(records)} of {len(segments)} segments ({resumed} of {len(headers)} files) "
            f"already done by an interrupted run")

    row_values = int(np.prod(shape[1:]))
    tile_rows = max(1, config.scan.tile_values // row_values)
    threads = max(1, sum(client.nthreads().values()))
    total = _RunningTotal(saved, shape, most_frames=len(headers))
    todo = [s for s in segments if s.id not in records]
    counts = config.scan.range_counts
    wave = segments_in_flight(shape, dtype, config.scan)
    done_files = resumed
    for start in range(0, len(todo), wave):
        parts: dict = {}  # future -> (segment's place in the running total, index of its part)
        for k, seg in enumerate(todo[start : start + wave]):
            partitions, known = _partitions(seg, threads, batch_size, dtype, counted_by_size)
            images, statuses = image_array(partitions, shape, dtype, tile_rows, stride, reader=read_file, known=known,
                                           counts=counts)
            tiles = tile_stats(images, split_every=config.scan.split_every)
            # in order (distributed runs the latest submission first by default): the running
            # total takes segments in order, so a later one's tiles would wait
            futures = client.compute(segment_outputs(tiles, statuses), optimize_graph=False, priority=wave - k)
            place = total.expect(seg, np.cumsum((0, *tiles.chunks[1]))[:-1])
            parts.update({f: (place, i) for i, f in enumerate(futures)})
        files = sum(len(seg.headers) for seg in todo[start : start + wave])
        label = (f"scanning {files} files" if files == len(headers) - resumed
                 else f"scanning files {done_files + 1}-{done_files + files} of {len(headers)}")
        bar = _progress_thread(client, list(parts), label) if progress else None
        for future in as_completed(list(parts), loop=client.loop):
            place, index = parts.pop(future)
            # the future, not its value: a tile that cannot be merged yet stays on its worker
            for seg, record in total.add(place, index, future):
                records[seg.id] = record
                if len(records) < len(segments):  # the last goes straight into stats.zarr
                    checkpoints.save(total.stats(), records)
        if bar:
            bar.join(timeout=10)
        done_files += files
    statuses = [s for seg in segments for s in records[seg.id][0]]
    digests = {p: d for seg in segments for p, d in records[seg.id][1].items()}
    return total.stats(), statuses, digests, resumed


def _partitions(seg: Segment, threads: int, batch_size: int, dtype: str,
                counted_by_size: dict[int, dict[str, str]]) -> tuple[list[list[list[str]]], list[dict[str, str]]]:
    """A segment's files as partitions (one per worker thread, within the exact integer limit)
    of batches, and the already-counted digests each partition must not count again."""
    paths = [h.path for h in seg.headers]
    per_partition = min(-(-len(paths) // threads), sum_types(dtype)[2])
    size_of = {h.path: h.size for h in seg.headers}
    partitions, known = [], []
    for i in range(0, len(paths), per_partition):
        files = paths[i : i + per_partition]
        partitions.append([files[j : j + batch_size] for j in range(0, len(files), batch_size)])
        known.append({d: p for f in files for d, p in counted_by_size.get(size_of[f], {}).items()})
    return partitions, known


@dataclass
class _SegmentParts:
    segment: Segment
    tile_starts: np.ndarray
    waiting: set[int]  # tiles not merged yet
    arrived: dict[int, object] = field(default_factory=dict)  # tiles (or their futures) not merged yet
    record: tuple[list[Status], dict[str, str]] | None = None  # (statuses, digests), once known
    n: int = 0  # frames used, by the statuses
    merged_n: int | None = None  # frames of the tiles merged (each tile carries the segment's)


class _RunningTotal:
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
        self.mean = np.array(saved.mean) if saved is not None else None
        self.m2 = np.array(saved.m2) if saved is not None else None
        self.counts = saved.counts.astype(self.count_type) if saved is not None and saved.counts is not None else None
        self.pending: list[_SegmentParts] = []

    def expect(self, segment: Segment, tile_starts: np.ndarray) -> _SegmentParts:
        """Register a segment whose parts are: one ``PixelStats`` per tile, then the statuses."""
        place = _SegmentParts(segment, tile_starts, set(range(len(tile_starts))))
        self.pending.append(place)
        return place

    def add(self, place: _SegmentParts, index: int, part) -> Iterator[tuple[Segment, tuple]]:
        """Take one part (its value, or a Future of it); yields each segment it completes, with
        its (statuses, digests).

        A generator, to be run to its end: at each yield the total holds exactly the segments
        completed so far (the next one's waiting tiles are merged only after), so that a
        checkpoint saved there never holds more than it lists.
        """
        if index == len(place.tile_starts):
            place.record = _fetch(part)
            place.n = sum(1 for s in place.record[0] if s[1] == "used")
        else:
            place.arrived[index] = part
        while self.pending:
            head = self.pending[0]
            for t in list(head.arrived):
                self._merge_tile(head, t, _fetch(head.arrived.pop(t)))
            if head.waiting or head.record is None:
                break
            if head.merged_n not in (None, head.n):
                raise RuntimeError(f"segment {head.segment.id}: its tiles hold {head.merged_n} frames, "
                                   f"its statuses {head.n}")
            self.n += head.n
            self.pending.pop(0)
            yield head.segment, head.record

    def _merge_tile(self, head: _SegmentParts, t: int, tile: PixelStats) -> None:
        head.waiting.discard(t)
        head.merged_n = tile.n
        if tile.n == 0:
            return
        if self.mean is None:
            self.mean = np.empty((len(STREAMS), *self.shape))
            self.m2 = np.empty((len(STREAMS), *self.shape))
            if tile.counts is not None:
                self.counts = np.zeros((len(COUNTS), *self.shape), self.count_type)
        rows = slice(head.tile_starts[t], head.tile_starts[t] + tile.mean.shape[1])
        counts = None if self.counts is None else self.counts[:, rows]
        merged = PixelStats(self.n, self.mean[:, rows], self.m2[:, rows], counts).merge(tile)
        self.mean[:, rows], self.m2[:, rows] = merged.mean, merged.m2
        if self.counts is not None and merged.counts is not None:
            self.counts[:, rows] = merged.counts

    def stats(self) -> PixelStats:
        if self.n == 0 or self.mean is None:
            return PixelStats.empty(self.shape)
        counts = None if self.counts is None else self.counts.astype(count_dtype(self.n), copy=False)
        return PixelStats(self.n, self.mean, self.m2, counts)


def _fetch(part):
    """A part's value; a Future is fetched from the cluster, which then lets go of its copy."""
    if isinstance(part, Future):
        value = part.result()
        part.release()
        return value
    return part


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
    return values * sum_bytes_per_value(dtype) + _buffer_bytes(shape, dtype, settings)


def _buffer_bytes(shape: tuple[int, ...], dtype: str, settings) -> int:
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


def _progress_thread(client: Client, futures: list, label: str) -> threading.Thread:
    """Draw the bar from a thread while the main thread saves checkpoints as segments finish."""
    thread = threading.Thread(target=ProgressBar, args=(futures, label),
                              kwargs={"scheduler": client.scheduler.address, "interval": "200ms"}, daemon=True)
    thread.start()
    return thread


def _attrs(main: Group, config: Config) -> dict:
    h = main.first
    return {
        "dtype": h.dtype,
        "raw": h.raw,
        "make": h.make,
        "model": h.model,
        "serial": h.serial,
        "cfa_pattern": [list(r) for r in h.cfa_pattern] if h.cfa_pattern else None,
        "color_desc": h.color_desc,
        "black_level": list(h.black_level),
        "white_level": h.white_level,
        "group": main.describe(),
        "neighbour_stride": neighbour_stride(h.raw),
        "hotpixels_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
