"""The scan: discover -> group -> read and reduce (engine) -> save (state) -> detect and write.

This module only sequences the stages and talks to the user; each stage lives in its own
subpackage, and the Dask part in ``pipeline.engine``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__
from .discover import (
    MOSAIC_LOOKS,
    Group,
    apply_cfa,
    expand,
    gray_mosaic,
    group,
    may_be_gray_mosaic,
    mosaic_notice,
    probe,
    probe_like,
)
from .frames import FramePlan, plan_frames
from .io import Header, read_file, read_header, split_ref
from .io.source import split_hdu
from .kinds import KINDS
from .layout import SensorLayout
from .records import Counted, FileStatus, StackMeta
from .state import place
from .state.files import FILES_NAME, FrameInfo, write_files_csv
from .state.lock import hold
from .stats import PixelStats
from .stats.model import NO_FACTOR

if TYPE_CHECKING:
    from distributed import Client

    from .config import Config
    from .detect import Detection
    from .engine.progress import Progress
    from .state.store import Manifest, StatsArrays


class ScanError(RuntimeError):
    """A scan that cannot be done as asked; the CLI prints one line and exits 2."""


class NoImagesError(ScanError):
    """Nothing usable was found."""


class MergeRefused(ScanError):
    """--merge was asked with files from another sensor than the saved stats."""


@dataclass
class ScanResult:
    """What a scan did; its statistics are in ``out_dir``/stats.zarr, and ``stats`` loads them
    only when asked (the scan itself never holds them whole)."""

    out_dir: place.Folder
    n: int
    meta: StackMeta
    statuses: list[FileStatus]
    elapsed: float
    outputs: list[place.Folder] = field(default_factory=list)
    resumed_files: int = 0
    detection: Detection | None = None
    others: list[ScanResult] = field(default_factory=list)  # the other groups, with --all-groups

    @functools.cached_property
    def stats(self) -> PixelStats:
        from .state.store import read_stats

        return read_stats(self.out_dir)[0]

    @property
    def skipped(self) -> list[FileStatus]:
        return [s for s in self.statuses if not s.used]


def scan(inputs: list[str], out_dir: place.Where, config: Config | None = None, client: Client | None = None,
         merge: bool = False, log: Callable[[str], None] = print, progress: bool = True,
         detect_defects: bool = True, job: str | None = None, performance_report: str | Path | None = None,
         wait_for_lock: float = 0.0) -> ScanResult:
    """Scan image files into per-pixel statistics saved in ``out_dir``.

    Uses ``client`` if given (e.g. in a notebook), else the cluster described by ``config``.
    With ``merge``, the files are added to the stats already in ``out_dir``; files counted
    there before are recognised and not counted again. An interrupted scan resumes from its
    checkpoints when run again with the same inputs. Unless ``detect_defects`` is False, the
    defects are then classified and every output is written (see results.py).

    ``job``: the id under which it reports its progress (``engine.progress``: the status file
    in ``out_dir`` and the scheduler's metadata; a new one if None). ``performance_report``:
    write Dask's own performance report of the scan there (``distributed.performance_report``).
    ``wait_for_lock``: seconds to wait for another process's hold on ``out_dir`` to end or go
    stale (``state.lock.hold``) instead of refusing at once.
    """
    from .config import Config
    from .engine.cluster import open_client

    config = config or Config()
    out = place.folder(out_dir)
    started = time.monotonic()
    expansion = expand(list(inputs), config.scan.hdu)
    if not expansion.paths:
        raise NoImagesError(f"no image files found in {', '.join(inputs) or 'the given inputs'}")
    discovery_skips = [FileStatus.skip(i, why) for i, why in expansion.problems]
    log(f"found {len(expansion.paths)} files")
    if config.scan.hdu is not None and not any(split_hdu(p)[1] is not None for p in expansion.paths):
        log(f"--hdu {config.scan.hdu}: no FITS file among the inputs, so it changes nothing")

    def with_client(c: Client) -> ScanResult:
        headers = apply_cfa(_probe_all(c, expansion.paths, config.scan, progress), config.scan.cfa)
        if config.scan.uniform and not any(h.exposure or h.iso or h.time for h in headers):
            log("--uniform: only the first file's header was read, not the frames' exposures, ISOs and dates "
                "(the physics model needs them: scan without --uniform to read them)")
        if len(headers) != len(expansion.paths):
            videos = len({file for file, frame in map(split_ref, (h.path for h in headers)) if frame is not None})
            log(f"{len(expansion.paths)} files hold {len(headers)} frames ({videos} videos, cubes or "
                f"TIFF stacks are read frame by frame)")
        if detect_defects and config.output.report:
            from .report import preload

            preload()  # after the cluster start-up, which imports most of what the client needs
        groups, skipped = _stackable_groups(headers)
        command = f"hotpixels scan {' '.join(map(str, inputs))} --out {out}" + (" --merge" if merge else "")
        from .engine.progress import new_job_id

        run = functools.partial(_reported, job=job or new_job_id(), command=command, client=c, config=config,
                                merge=merge, log=log, progress=progress, detect_defects=detect_defects,
                                started=started)
        if not config.scan.all_groups:
            main = groups[0]
            for other in groups[1:]:
                skipped.extend(FileStatus.skip(h.path, _other_group_reason(other, main)) for h in other.headers)
            return run(main, out, discovery_skips + skipped)
        results = []
        for g in groups:
            log(f"group {g.describe()}: {len(g.headers)} files -> {out / group_folder(g)}")
            results.append(run(g, out / group_folder(g), discovery_skips + skipped))
        used = [FileStatus(s.path, s.status, f"group {group_folder(g)}")
                for g, r in zip(groups, results) for s in r.statuses if s.used]
        write_files_csv(_ensure(out), discovery_skips + skipped + used)
        results[0].others = results[1:]
        return results[0]

    def reported(c: Client) -> ScanResult:
        if performance_report is None:
            return with_client(c)
        from .engine.cluster import performance_report as dask_report

        with dask_report(c, performance_report):
            result = with_client(c)
        log(f"wrote Dask's performance report to {performance_report}")
        return result

    with hold(out, "hotpixels scan" + (" --merge" if merge else ""), log, wait_for_lock):
        if client is not None:
            return reported(client)
        with open_client(config.cluster, log) as c:
            return reported(c)


def skip_summary(skipped: list[FileStatus]) -> str:
    """' (3 cannot decode, 1 different sensor or layout; see files.csv)': why, most common first."""
    if not skipped:
        return ""
    counts = Counter(s.reason.split(":")[0] for s in skipped)
    return " (" + ", ".join(f"{n} {why}" for why, n in counts.most_common()) + "; see files.csv)"


def _reported(main: Group, out_dir: place.Folder, skipped: list[FileStatus], *, job: str, command: str, client: Client,
              log: Callable[[str], None], **kwargs) -> ScanResult:
    """``_scan_group``, telling its progress (``engine.progress``): as it goes, and at the end done
    with what it found, failed with why, or cancelled."""
    from .engine.progress import Progress

    tell = Progress(client, _ensure(out_dir), job, command, log)
    tell.status.files_skipped = len(skipped)
    try:
        result = _scan_group(main, out_dir, skipped, client=client, log=log, tell=tell, **kwargs)
    except BaseException as exc:
        tell.fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    found = Counter(d.kind for d in result.detection.defects) if result.detection is not None else Counter()
    tell.finish(f"{result.n} frames, {len(result.skipped)} skipped; " + ", ".join(f"{found.get(k, 0)} {k}"
                                                                                  for k in KINDS))
    return result


def _scan_group(main: Group, out_dir: place.Folder, skipped: list[FileStatus], *, client: Client, config: Config,
                merge: bool, log: Callable[[str], None], progress: bool, detect_defects: bool, started: float,
                tell: Progress | None = None) -> ScanResult:
    """Reduce one group of stackable files into out_dir (merging into saved stats if asked)."""
    from .detect.stack_kind import classify_sample, join_samples
    from .engine.cluster import bytes_sent
    from .engine.copies import find_copies
    from .engine.graph import row_tiles
    from .engine.plan import rows_per_tile
    from .engine.run import reduce_files, run_one
    from .engine.total import StatsSink
    from .state.atomic import writable
    from .state.checkpoint import Checkpoints
    from .state.store import (
        create_stats,
        dark_subtracted_paths,
        discard_stats,
        finish_stats,
        finish_swap,
        frame_table,
        planned_arrays,
        write_dark_rate_rows,
    )
    from .stats.dark_subtraction import SUBTRACTED_NOTE, VANISHED, best_hot_candidates

    finish_swap(out_dir)  # a remote folder's stats.zarr whose copy into place a crash cut short
    main, notice = _mosaic_saved_as_gray(client, main, out_dir, merge)
    if notice:
        log(f"warning: {notice}")
    prior_arrays, prior_meta, prior_n, manifest = _load_prior(out_dir, main) if merge else (None, None, 0, {})
    counted = {h.path for h in main.headers if h.path in manifest
               and (manifest[h.path].size, manifest[h.path].mtime) == (h.size, h.mtime)}
    todo = [h for h in main.headers if h.path not in counted]
    stats_path = out_dir / "stats.zarr"
    skipped = skipped + [FileStatus.skip(p, f"already counted in {stats_path}") for p in sorted(counted)]
    copies = find_copies(client, todo)
    if copies:
        log(f"{len(copies)} files are copies of others among the inputs: each is counted once")
        skipped += [FileStatus.skip(p, f"already counted: same content as {first}") for p, first in copies.items()]
        todo = [h for h in todo if h.path not in copies]
    if tell is not None:
        tell.status.files_skipped = len(skipped)  # the total the progress counts: these and the files to read
    sent_before = bytes_sent(client)
    first = main.first
    frames = plan_frames(todo, manifest, first.shape[2] if len(first.shape) == 3 else 1, clip_level(first),
                         config.scan.range_counts, None if prior_meta is None else prior_meta.exposure_source,
                         black=int(min(first.black_level)) if first.black_level else 0)
    for reason in frames.reasons:
        log(f"physics model: {reason}")
    counted_by_size: dict[int, dict[str, str]] = {}
    for path, entry in manifest.items():
        if entry.digest:
            counted_by_size.setdefault(entry.size, {})[entry.digest] = path
    spec = frames.model.spec if frames.model.spec.any else None
    arrays = planned_arrays(tuple(first.shape), rows_per_tile(tuple(first.shape), config.scan), prior_n + len(todo),
                            config.scan.range_counts, spec.names if spec is not None else (), prior_arrays)
    tmp = create_stats(_ensure(out_dir), arrays)
    try:
        # the workers write stats.zarr where they can reach the folder; else this process, a tile at a time
        local = not run_one(client, writable, str(out_dir))
        if local:
            log(f"the workers cannot write {out_dir}: the statistics come here to be written, a tile at a time")
        sink = StatsSink(str(tmp), arrays, str(stats_path) if prior_arrays is not None else "")
        reduced = reduce_files(client, todo, tuple(first.shape), first.dtype, first.layout.stride, out_dir,
                               config.scan, read_file, log, progress, counted_by_size, sink, local,
                               frames.model if frames.model.spec.any else None, tell)
        record = reduced.record
        statuses, digests = record.statuses, record.digests
        new_frames = reduced.n - prior_n
        if new_frames:
            sent = bytes_sent(client) - sent_before
            log(f"partial statistics sent by the workers: {sent / 2**20:,.0f} MB "
                f"({sent / new_frames / 2**20:.2f} MB per image)")
        all_statuses = skipped + statuses
        if reduced.n == 0:
            write_files_csv(_ensure(out_dir), all_statuses, by_path_info(main, frames))
            reason = next((s.reason for s in statuses if not s.used), "no files")
            raise NoImagesError(f"none of the {len(statuses)} files of the main group could be decoded "
                                f"(first: {reason}); see {out_dir / FILES_NAME}")
        by_path = {h.path: h for h in main.headers}
        for s in statuses:
            if s.used:
                h = by_path[s.path]
                manifest[s.path] = Counted(h.size, h.mtime, digests.get(s.path, ""), h.exposure, h.iso, h.time,
                                           h.temperature, record.factors.get(s.path, NO_FACTOR),
                                           _sketch(record.spikes.get(s.path)), h.gain)
        extra = {name for name, _ in arrays.extra}
        meta = dataclasses.replace(stack_meta(main), exposure_source=frames.source if "xr" in extra else "",
                                   dates="first_day_1" in extra, clip_level=clip_level(first), layout_notice=notice)
        if prior_meta is not None and prior_meta.created:
            meta = dataclasses.replace(meta, created=prior_meta.created)
        hot_set = best_hot_candidates([t.hot for t in reduced.tiles if t.hot is not None])
        subtracted = dark_subtracted_paths(manifest, meta, hot_set)
        if subtracted:
            were, them = ("frames were", "them") if len(subtracted) > 1 else ("frame was", "it")
            log(f"physics model: {len(subtracted)} {were} dark-subtracted in camera ({VANISHED} "
                f"{them}): counted at zero exposure in the dark-current fit")
            frames.notes.update({p: "; ".join(filter(None, [frames.notes.get(p), SUBTRACTED_NOTE]))
                                 for p in subtracted})
        table = frame_table(manifest, meta, hot_set)
        if table is not None and table.physical and "xr" in extra:
            tiles = row_tiles(arrays.shape[0], arrays.chunk_rows)
            if local:
                for y0, y1 in tiles:
                    write_dark_rate_rows(tmp, y0, y1, reduced.n, table)
            else:
                client.gather(client.map(write_dark_rate_rows, [str(tmp)] * len(tiles), *zip(*tiles),
                                         n=reduced.n, table=table, pure=False, key="write-dark-rate"))
        decided = classify_sample(reduced.n, join_samples([t.sample for t in reduced.tiles if t.sample is not None]))
        saved = finish_stats(tmp, out_dir, reduced.n, meta, arrays, manifest, hot_set, decided)
    except BaseException:
        discard_stats(tmp)
        raise
    Checkpoints(out_dir, "").clear()  # stats.zarr holds everything they did
    outputs = [saved, write_files_csv(out_dir, all_statuses, by_path_info(main, frames))]
    result = ScanResult(out_dir, reduced.n, meta, all_statuses, time.monotonic() - started, outputs, reduced.resumed)
    log(f"scanned {reduced.n} images ({meta.group}) in {result.elapsed:.1f} s; "
        f"{len(result.skipped)} skipped{skip_summary(result.skipped)}")
    if detect_defects and reduced.n >= 2:
        from .results import write_results

        # on the workers, band by band from stats.zarr (here, a band at a time, if they cannot reach it)
        began = time.monotonic()
        written = write_results(out_dir, None, meta, all_statuses, config, log, result.elapsed,
                                manifest=manifest, hot_set=hot_set, client=None if local else client, decided=decided)
        result.detection = written.detection
        result.outputs += written.outputs
        took = time.monotonic() - began
        values = math.prod(first.shape)
        parts = written.seconds
        log(f"defects found in {parts['detection']:.1f} s ({parts['detection'] / values * 1e9:.0f} ns per sensor "
            f"value), outputs written in {parts['outputs']:.1f} s ({parts['outputs'] / values * 1e9:.0f} ns per "
            f"sensor value); {took:.1f} s in all")
    elif detect_defects:
        log(f"only {reduced.n} image: statistics saved, but classifying defects needs at least 2")
    return result


def group_folder(g: Group) -> str:
    """A safe subfolder name for --all-groups, e.g. '4000x6000-uint16-raw-Canon-EOS-R5'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", g.describe()).strip("-.")[:120] or "group"


def _ensure(path: place.Folder) -> place.Folder:
    place.make(path)
    return path


def _mosaic_saved_as_gray(client: Client, main: Group, out_dir: place.Folder, merge: bool) -> tuple[Group, str]:
    """The group read as the Bayer mosaic its gray frames show (``discover.gray_mosaic``, from a
    few spread over the group), and what to tell the user; the group as it is where they show
    none. A mosaic read as gray compares each sensel with other colours, and its defects hide in
    lit frames. Merged into saved statistics: their layout, where these frames show it or none
    (darks); saved as gray, they stay gray, and the notice says so."""
    from .engine.run import run_one
    from .state.store import STATS_NAME, read_meta

    if not may_be_gray_mosaic(main.first):
        return main, ""
    looks = main.headers[:: max(1, -(-len(main.headers) // MOSAIC_LOOKS))][:MOSAIC_LOOKS]
    mosaic = run_one(client, gray_mosaic, [h.path for h in looks])
    saved = read_meta(out_dir).layout if merge and (out_dir / STATS_NAME).exists() else None
    if saved is not None and saved.mosaic and saved.period == 2 and (mosaic is None or saved.name in mosaic.patterns):
        return Group([dataclasses.replace(h, layout=saved) for h in main.headers]), ""
    if mosaic is None:
        return main, ""
    if saved is not None and not saved.mosaic:
        return main, mosaic_notice(mosaic, applied=False)
    layout = SensorLayout.bayer(mosaic.patterns[0])
    return Group([dataclasses.replace(h, layout=layout) for h in main.headers]), mosaic_notice(mosaic)


def _load_prior(out_dir: place.Folder, main: Group) -> tuple[StatsArrays | None, StackMeta | None, int, Manifest]:
    """What the saved stats to merge into hold (their arrays, the stack, their frame count) and
    the files they hold, refused if they come from another sensor or layout; their numbers stay
    on disk, for the workers to merge tile by tile."""
    from .state.store import STATS_NAME, read_manifest, read_saved

    if not (out_dir / STATS_NAME).exists():
        return None, None, 0, {}
    arrays, theirs, n = read_saved(out_dir)
    h = main.first
    mine = {"shape": tuple(h.shape), "dtype": h.dtype, "raw": h.raw, "make": h.make, "model": h.model,
            "serial": h.serial, "cfa": h.layout.name}
    saved = {"shape": tuple(arrays.shape), "dtype": theirs.dtype, "raw": theirs.raw, "make": theirs.make,
             "model": theirs.model, "serial": theirs.serial, "cfa": theirs.layout.name}
    differ = [f"{k} {saved[k]!r} vs {mine[k]!r}" for k in mine if saved[k] != mine[k]]
    manifest = read_manifest(out_dir)
    saved_gains = {c.gain if c.iso is None else None for c in manifest.values()}
    if saved_gains and saved_gains != {h.unconverted_gain}:
        theirs_gain = ", ".join("(none)" if g is None else f"{g:g}" for g in sorted(saved_gains, key=str))
        differ.append(f"GAIN {theirs_gain} vs {_gain(h)}, and no EGAIN or ISO converts a camera's gain setting")
    if theirs.raw_margins and h.raw_margins and tuple(theirs.raw_margins) != tuple(h.raw_margins):
        differ.append(f"raw margins (top, left, raw height, raw width) {tuple(theirs.raw_margins)} read by LibRaw "
                      f"{theirs.libraw_version or '?'} vs {tuple(h.raw_margins)} now: the visible areas differ")
    if differ:
        raise MergeRefused(f"cannot merge into {out_dir / STATS_NAME}: it holds another sensor or layout "
                           f"({'; '.join(differ)})")
    return arrays, theirs, n, manifest


def _probe_all(client: Client, paths: list[str], settings, progress: bool) -> list[Header]:
    """Read every header once, in parallel on the workers (or only the first, for a uniform set)."""
    from .engine.run import map_batches, run_one

    label = "headers" if progress else ""
    if settings.uniform:
        template = run_one(client, read_header, paths[0])  # one header, even of a video
        if template.error:
            raise NoImagesError(f"the first file, {paths[0]}, is not usable: {template.error}")
        return map_batches(client, probe_like, paths, settings.probe_batch, label, template=template)
    return map_batches(client, probe, paths, settings.probe_batch, label)


def _stackable_groups(headers: list[Header]) -> tuple[list[Group], list[FileStatus]]:
    """Groups of files that can be stacked, largest first; unreadable and unsupported files skipped."""
    skipped = [FileStatus.skip(h.path, h.error) for h in headers if h.error]
    groups = []
    for g in group(headers):
        refusal = g.first.layout.refusal()
        if refusal:
            skipped.extend(FileStatus.skip(h.path, refusal) for h in g.headers)
        else:
            groups.append(g)
    if not groups:
        first = skipped[0].reason if skipped else "no files"
        raise NoImagesError(f"none of the {len(headers)} files could be used (first: {first})")
    return groups, skipped


def _other_group_reason(other: Group, main: Group) -> str:
    a, b = other.first, main.first
    if a.group_key()[:-1] == b.group_key()[:-1]:  # the same sensor at another gain setting
        return (f"another gain setting: GAIN {_gain(a)}, against GAIN {_gain(b)} of the largest group, and no "
                f"EGAIN or ISO says what either is worth: scan each setting apart with --all-groups")
    why = f"different sensor or layout: {other.describe()} (scanning the largest group, {main.describe()}"
    if a.shape[:2] == b.shape[1::-1] and a.shape[2:] == b.shape[2:] and (a.make, a.model) == (b.make, b.model):
        why += "; the same sensor turned by 90 degrees, as rotated JPEGs are: scan it with --all-groups"
    return why + ")"


def _gain(h: Header) -> str:
    return "(none)" if h.unconverted_gain is None else f"{h.unconverted_gain:g}"


def _sketch(bits: list[int] | None) -> tuple[int, ...] | None:
    return None if bits is None else tuple(bits)


def clip_level(h: Header) -> int:
    """The value at which a sensel of these files clips: the raw white level, else the dtype's maximum."""
    top = int(np.iinfo(np.dtype(h.dtype)).max) if np.dtype(h.dtype).kind in "ui" else 0
    return min(top, int(h.white_level)) if h.white_level else top


def by_path_info(main: Group, frames: FramePlan) -> dict[str, FrameInfo]:
    """What files.csv says of each file's shooting data."""
    return {h.path: FrameInfo(h.exposure, h.iso, h.time, h.temperature, frames.notes.get(h.path, ""), h.gain)
            for h in main.headers}


def stack_meta(main: Group) -> StackMeta:
    """What stats.zarr records of a group's sensor besides its statistics."""
    h = main.first
    return StackMeta(dtype=h.dtype, layout=h.layout, raw=h.raw, make=h.make, model=h.model, serial=h.serial,
                     black_level=tuple(h.black_level), white_level=h.white_level, group=main.describe(),
                     version=__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), file_format=h.format,
                     raw_margins=tuple(h.raw_margins), libraw_version=_libraw_version() if h.raw else "")


def _libraw_version() -> str:
    from .io.raw import libraw_version

    return libraw_version()
