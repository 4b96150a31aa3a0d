"""Final stats -> defects.csv, the maps other tools read, report.html and the terminal summary.

Shared by `hotpixels scan` (right after the reduction) and `hotpixels detect DIR` (again from
saved stats with new thresholds, without reading any image).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .config import Config
from .defect import Defect, write_csv
from .detect import DetectConfig, Detection, detect
from .detect.detector import is_raw_darks
from .kinds import KINDS
from .outputs import ExportContext, write_exports
from .records import FileStatus, StackMeta
from .state import place
from .state.store import (
    Manifest,
    frame_days,
    frame_table,
    read_hot_set,
    read_size,
    read_stack_kind,
    read_stats,
    stats_location,
)
from .stats import PixelStats
from .stats.dark_subtraction import VANISHED, hot_candidates
from .stats.fit import FrameTable
from .stats.model import EXPOSURE_UNIT

if TYPE_CHECKING:
    from distributed import Client

    from .report import Prepared

DEFECTS_NAME = "defects.csv"
MAP_PIXELS = 512 * 512  # the most pixels of each map the report embeds (``report.write_report``'s default)


@dataclass
class Results:
    detection: Detection
    outputs: list[place.Folder]
    seconds: dict[str, float] = field(default_factory=dict)  # "detection" and "outputs": where the time went


def write_results(out_dir: place.Where, stats: PixelStats | None, meta: StackMeta,
                  statuses: list[FileStatus],
                  config: Config, log: Callable[[str], None] = print, elapsed: float | None = None,
                  report_only: bool = False, manifest: Manifest | None = None,
                  hot_set: np.ndarray | None = None, client: Client | None = None,
                  decided: tuple[str, str] | None = None) -> Results:
    """Classify the defects and write every output the config asks for (only report.html
    with ``report_only``: defects.csv and the maps stay as they are). ``manifest``: the counted
    frames (their exposure factors and dates feed the physics model); ``hot_set``: the stack's
    possible hot sensels as saved (``dark_subtraction.hot_candidates``; found again if None).

    With ``stats``, detection runs here on them. Without, it runs band by band from
    ``out_dir``/stats.zarr (``engine.detect``): on ``client``'s workers, or in this process a
    band at a time; the defects are the same. ``decided``: photos or darks and why, as the scan
    found it (read from stats.zarr if None)."""
    out_dir = place.folder(out_dir)
    detect_config, frames, days = detection_inputs(out_dir, stats, meta, config.detect, manifest, hot_set)
    prepared = None
    began = time.monotonic()
    if stats is None:
        from .engine.detect import Here, detect_on_cluster
        from .report.numbers import block_factor

        n, shape = read_size(out_dir)
        runner = client or Here(detect_config.threads)
        detection, prepared = detect_on_cluster(runner, place.url(stats_location(out_dir)), n, shape,
                                                detect_config, meta.layout, frames, days,
                                                block_factor(shape[0], shape[1], MAP_PIXELS),
                                                decided=decided or read_stack_kind(out_dir),
                                                jpeg=meta.file_format == "jpeg")
    else:
        n, shape = stats.n, tuple(stats.pixel_shape)
        detection = detect(stats, detect_config, layout=meta.layout, frames=frames, days=days,
                           jpeg=meta.file_format == "jpeg")
    defects = detection.defects
    warning = few_frames(n, is_raw_darks(detection.stack_kind, shape))
    if warning:
        log(f"warning: {warning}")
    seconds = {"detection": time.monotonic() - began}
    began = time.monotonic()
    outputs = []
    if not report_only:
        write_csv(defects, out_dir / DEFECTS_NAME)
        outputs.append(out_dir / DEFECTS_NAME)
        context = ExportContext(out_dir, defects, shape, n, meta)
        outputs += write_exports(config.output.exports, context)
    if config.output.report or report_only:
        outputs.append(_report(out_dir, stats, meta, statuses, detection, elapsed, frames, days, prepared, n, shape,
                               warning))
    seconds["outputs"] = time.monotonic() - began
    summarize(detection, log)
    return Results(detection, outputs, seconds)


def detection_inputs(out_dir: place.Folder, stats: PixelStats | None, meta: StackMeta, detect_config: DetectConfig,
                     manifest: Manifest | None, hot_set: np.ndarray | None = None
                     ) -> tuple[DetectConfig, FrameTable | None, np.ndarray | None]:
    """What detection takes besides the statistics, as a scan gives it: the config with the
    camera's black level, and the physics model's frame table and capture days (from the counted
    frames' manifest and the stack's possible hot sensels, saved or found again)."""
    if detect_config.black_level is None and meta.black_level:
        detect_config = dataclasses.replace(detect_config, black_level=float(np.mean(meta.black_level)))
    if hot_set is None:
        hot_set = read_hot_set(out_dir) if stats is None else None
        if hot_set is None:
            whole = stats if stats is not None else read_stats(out_dir)[0]
            hot_set = hot_candidates(whole.mean[1], whole.m2[0])
    frames = frame_table(manifest or {}, meta, hot_set)
    days = frame_days(manifest or {}) if meta.dates else None
    return detect_config, frames, days


def _report(out_dir: place.Folder, stats: PixelStats | None, meta: StackMeta, statuses: list[FileStatus],
            detection: Detection, elapsed: float | None, frames: FrameTable | None, days: np.ndarray | None,
            prepared: Prepared | None, n: int, shape: tuple[int, ...], few: str = "") -> place.Folder:
    from .report import write_report

    shown = {"group": meta.group, "make": meta.make, "model": meta.model, "serial": meta.serial, "dtype": meta.dtype,
             "color_desc": meta.layout.colors, "cfa_pattern": [list(r) for r in meta.layout.cfa or ()],
             "black_level": list(meta.black_level), "white_level": meta.white_level}
    table = {"n_images": n, "shape": "x".join(map(str, shape)),
             **{k: v for k, v in shown.items() if v not in (None, "", [])}}
    if elapsed is not None:
        table["scan time"] = f"{elapsed:.1f} s"
    # M2 and n rather than stats.var: that would be a float64 copy of both streams, only to draw block maxima
    mean, m2 = stats.stream("value") if stats is not None else (None, None)
    return write_report(out_dir / "report.html", value_mean=mean, value_m2=m2, n_frames=n, prepared=prepared,
                        defects=detection.defects, files=statuses, detection=detection, meta=table,
                        dark_rate=detection.dark_rate, frame_days=None if days is None else days.tolist(),
                        physics_notes=physics_notes(meta, frames, days, detection),
                        warnings=[w for w in (meta.layout_notice, few) if w])


# under this many frames, a sensel's own variance over them is too uncertain for the tails the
# criteria assume: measured on synth's 640x480 stacks (seeds 0, 2, 3, 4; DNG and PNG photos),
# chance alone made 4-16 false reports at 6 frames, 2-5 at 10, 0-1 at 15 and at 20 (0.2-0.5 at 40).
# Raw darks hold each sensel's variance to its neighbours' (the sensor's own noise): 6, 10 and 14
# DNG and 16-bit TIFF darks (seeds 2, 3) made none, so they are not warned of
FEW_FRAMES = 15


def few_frames(n: int, raw_darks: bool = False) -> str:
    """The warning of a stack too short for its statistics to be trusted (empty: none)."""
    if n >= FEW_FRAMES or raw_darks:
        return ""
    return (f"only {n} frames: with fewer than {FEW_FRAMES}, chance alone makes false reports (on synthetic "
            f"stacks of 0.3 MP, 2-5 at 10 frames and 4-16 at 6); 30-50 frames are plenty")


def physics_notes(meta: StackMeta, frames: FrameTable | None, days: np.ndarray | None,
                  detection: Detection) -> list[str]:
    """What the physics model did with this stack, in words, for the report."""
    notes = []
    if frames is not None and not frames.physical and detection.stack_kind != "darks":
        # the stand-in the scan kept for darks (``detector.plan_detection`` leaves it out of photos)
        notes.append("no exposure model: no frame has an exposure time, and each frame's mean level stands in "
                     "for it only in darks; in photos it is the scene's brightness")
    elif frames is not None:
        known = frames.known
        recorded = frames.factors[frames.factors > 0]  # as shot: a dark-subtracted frame's own exposure
        where = {"fits": "FITS header", "xisf": "XISF header"}.get(meta.file_format, "EXIF")
        source = (f"each frame's exposure time x ISO/100 ({where})" if frames.physical
                  else "each frame's mean level (no frame has an exposure time; darks)")
        notes.append(f"exposure model: {source}; {len(known)} of {len(frames.factors)} frames with one"
                     + (f", {recorded.min() * EXPOSURE_UNIT:.4g} to {recorded.max() * EXPOSURE_UNIT:.4g} s at "
                        "ISO 100" if frames.physical and len(recorded) else ""))
        if frames.n_subtracted:
            were, them = ("frames were", "them") if frames.n_subtracted > 1 else ("frame was", "it")
            notes.append(f"{frames.n_subtracted} {were} dark-subtracted in camera (long-exposure noise "
                         f"reduction: {VANISHED} {them}); counted at zero exposure (see files.csv)")
    elif meta.exposure_source == "":
        notes.append("no exposure model: the frames' exposures are unknown or all alike")
    if days is not None and len(days):
        dated = sum(1 for d in detection.defects if d.since)
        notes.append(f"capture dates from {_date(int(days.min()))} to {_date(int(days.max()))}; "
                     f"{dated} defects appeared during them")
    lines = sum(1 for d in detection.defects if d.kind in ("column", "row"))
    if lines:
        notes.append(f"{lines} partial columns or rows (each one defect; the exports list their sensels)")
    return notes


def _date(day: int) -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


def summarize(detection: Detection, log: Callable[[str], None], top: int = 10) -> None:
    """Counts per class and the strongest defects, as the seed article printed its ten lowest variances."""
    counts = Counter(d.kind for d in detection.defects)
    log(f"stack treated as {detection.stack_kind}: {detection.stack_reason}")
    log("defects: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in KINDS))
    if not detection.defects:
        return
    log(f"strongest {min(top, len(detection.defects))}:")
    log(f"  {'x':>6} {'y':>6} {'ch':>3} {'kind':<6} {'score':>8} {'mean':>9} {'std':>8}  evidence")
    for d in detection.defects[:top]:
        log(f"  {d.x:>6} {d.y:>6} {_channel(d):>3} {d.kind:<6} {d.score:>8.1f} {d.mean:>9.2f} {d.std:>8.2f}"
            f"  {d.detail}")


def _channel(d: Defect) -> str:
    return d.color or str(d.channel)
