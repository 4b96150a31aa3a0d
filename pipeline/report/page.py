"""The report page: ``write_report`` assembles its sections and writes report.html atomically.

The page must open from disk, offline, years later: BokehJS is inlined (``bokeh.resources.INLINE``,
no CDN at view time). It stays light for a 60 MP sensor (``numbers``: block-reduced maps, only
histogram counts embedded; tables capped), and quick: the numbers are computed in threads while
the bokeh models (``figures``) are built. Sections, top to bottom: summary, run metadata, maps,
dark current and onsets (where the stack has a physics model), scores and classes, defect
table, file table.

Everything shown that comes from files (paths, skip reasons, metadata) is HTML-escaped.
"""

from __future__ import annotations

import html
import os
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..defect import Defect
from ..kinds import BY_NAME, KINDS
from ..state import atomic, place
from . import figures
from .numbers import block_factor, histogram, map_for_display, related_thresholds

__all__ = ["Prepared", "preload", "write_report"]

_WIDTH = 1100  # of the text blocks and tables, in screen pixels


# --------------------------------------------------------------------------- bokeh at large


def preload() -> threading.Thread:
    """Import bokeh in a background thread (about a second), so a scan pays for it while its
    workers compute rather than after; the report's own imports then find it loaded."""
    def load() -> None:
        import bokeh.embed
        import bokeh.layouts
        import bokeh.models
        import bokeh.plotting
        import bokeh.resources  # noqa: F401

    thread = threading.Thread(target=load, name="preload-bokeh", daemon=True)
    thread.start()
    return thread


@contextmanager
def _without_document_validation():
    """Skip bokeh's document validation (its integrity checks, about a sixth of ``file_html``).

    It only logs warnings about model graphs, and this package's graph is fixed and tested; the
    page is the same with or without it. An explicit setting of False is left as it is."""
    from bokeh.settings import settings

    setting = settings.perform_document_validation
    if not setting():
        yield
        return
    setting.set_value(False)
    try:
        yield
    finally:
        setting.unset_value()


def _workers() -> int:
    return min(os.cpu_count() or 1, 4)


# --------------------------------------------------------------------------- text


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)) and len(value) <= 8:
        return " x ".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else str(value)
    return str(value)


def _kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{_esc(k)}</th><td>{_esc(_fmt(v))}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def _div(text: str):
    """A page-wide block of HTML (the callers escape what comes from files)."""
    from bokeh.models import Div

    return Div(text=text, width=_WIDTH)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Prepared:
    """The report's numbers where they were reduced elsewhere (on the workers, band by band): the
    maps block-reduced by ``factor`` and ready to draw (``numbers.display``), and each score's
    histogram (``numbers.histogram_of``; None: no finite value), for a sensor of ``shape``."""

    shape: tuple[int, ...]
    factor: int
    variance: np.ndarray
    mean: np.ndarray
    dark_rate: np.ndarray | None = None
    histograms: dict[str, dict[str, Any] | None] | None = None


@dataclass(frozen=True)
class _Inputs:
    """``write_report``'s data, checked and normalised once, as the sections read it."""

    mean: np.ndarray | None  # None where the numbers are ``prepared``
    spread: np.ndarray | None  # the variance; or M2, when ``divisor`` (the frame count) is set
    divisor: int | None
    height: int
    width: int
    channels: int
    defects: list[Defect]
    counts: Counter  # defects per kind
    files: list[tuple[Any, Any, Any]]
    has_detection: bool
    scores: dict[str, Any]
    thresholds: dict[str, Any]
    stack_kind: str | None
    stack_reason: str | None
    prepared: Prepared | None = None

    @property
    def n_used(self) -> int:
        return sum(1 for f in self.files if str(f[1]) == "used")


def _inputs(value_mean, value_var, value_m2, n_frames, defects, files, detection,
            prepared: Prepared | None = None) -> _Inputs:
    """Refuse unclear arrays before any work (a variance, or M2 with the frame count, shaped like
    the mean), and read the duck-typed detection once."""
    if prepared is not None:
        defects = list(defects)
        shape = prepared.shape
        return _Inputs(
            mean=None, spread=None, divisor=None, height=shape[0], width=shape[1],
            channels=shape[2] if len(shape) == 3 else 1, defects=defects, counts=Counter(d.kind for d in defects),
            files=list(files), has_detection=detection is not None, scores={},
            thresholds=dict(getattr(detection, "thresholds", None) or {}),
            stack_kind=getattr(detection, "stack_kind", None), stack_reason=getattr(detection, "stack_reason", None),
            prepared=prepared)
    value_mean = np.asarray(value_mean)
    if (value_var is None) == (value_m2 is None) or (value_m2 is not None and n_frames is None):
        raise ValueError("give value_var, or value_m2 with n_frames")
    spread = np.asarray(value_var if value_var is not None else value_m2)
    if value_mean.shape != spread.shape:
        raise ValueError(f"mean {value_mean.shape} and variance {spread.shape} differ in shape")
    height, width = value_mean.shape[:2]
    defects = list(defects)
    return _Inputs(
        mean=value_mean, spread=spread, divisor=None if value_var is not None else n_frames,
        height=height, width=width, channels=value_mean.shape[2] if value_mean.ndim == 3 else 1,
        defects=defects, counts=Counter(d.kind for d in defects), files=list(files),
        has_detection=detection is not None,
        scores=dict(getattr(detection, "scores", None) or {}),
        thresholds=dict(getattr(detection, "thresholds", None) or {}),
        stack_kind=getattr(detection, "stack_kind", None), stack_reason=getattr(detection, "stack_reason", None))


# --------------------------------------------------------------------------- sections


def _summary_section(run: _Inputs, title: str, warnings: Sequence[str] = ()):
    """The answer first, before any figure loads: how many defects of each kind (in the colours
    the maps use), on what image, from how many files, and how the stack was read."""
    kind_cells = "".join(
        f"<td style='padding:0 1em'><span style='color:{BY_NAME[k].colour};font-size:1.4em'>&#9679;</span> "
        f"<b>{k}</b>: <span class='count-{k}'>{run.counts.get(k, 0)}</span></td>" for k in KINDS)
    sites = len({(d.x, d.y) for d in run.defects})
    n_used = run.n_used
    summary = [
        f"<h1 style='margin-bottom:0.2em'>{_esc(title)}</h1>",
        f"<p><b>{len(run.defects):,}</b> defects at <b>{sites:,}</b> pixel sites on a {run.width} x {run.height}"
        f"{f' x {run.channels}' if run.channels > 1 else ''} image; "
        f"<b>{n_used:,}</b> frames used, <b>{len(run.files) - n_used:,}</b> skipped.</p>",
        f"<table><tr>{kind_cells}</tr></table>",
        *(f"<p class='warning' style='color:#a40000'><b>Warning:</b> {_esc(w)}.</p>" for w in warnings),
    ]
    if run.stack_kind is not None:
        summary.append(f"<p>Stack treated as <b>{_esc(run.stack_kind)}</b>"
                       f"{': ' + _esc(run.stack_reason) if run.stack_reason else ''}.</p>")
    elif not run.has_detection:
        summary.append("<p>No detection details were given: score histograms are not shown.</p>")
    if run.thresholds:
        summary.append("<p>Thresholds: " + ", ".join(f"{_esc(k)} = {_esc(_fmt(v))}"
                                                     for k, v in run.thresholds.items()) + "</p>")
    return _div("".join(summary))


def _run_section(meta: Mapping[str, Any]) -> list[Any]:
    """What was scanned and how (frames, shape, camera, levels, scan time): reports of different
    runs can be told apart and a run repeated. Nothing without metadata."""
    return [_div("<h2>Run</h2>" + _kv_table(list(meta.items())))] if meta else []


def _maps_section(run: _Inputs, factor: int, var_small: np.ndarray, mean_small: np.ndarray,
                  max_markers: int) -> list[Any]:
    """Where the defects are: the variance map (block max: a lone hot or noisy pixel still shows)
    and the mean map, linked, in full-resolution coordinates, the strongest defects circled."""
    from bokeh.layouts import row
    from bokeh.models import Range1d

    var_mapper, mean_mapper = figures.colour_mappers(var_small, mean_small)
    x_range = Range1d(0, run.width, bounds=(0, run.width))
    y_range = Range1d(run.height, 0, bounds=(0, run.height))  # reversed: row 0 at the top, as stored
    shown = sorted(run.defects, key=lambda d: -d.score)[:max_markers]
    sources = figures.marker_sources(shown)
    chan_note = " (max over channels)" if run.channels > 1 else ""
    mean_note = " (mean over channels)" if run.channels > 1 else ""
    block = f"{factor}x{factor} blocks" if factor > 1 else "full resolution"
    frame = (run.width, run.height, x_range, y_range)
    p_var = figures.map_figure(f"variance{chan_note}, block max, {block}", var_small, *frame,
                               var_mapper, "variance", factor, 560)
    p_mean = figures.map_figure(f"mean{mean_note}, block mean, {block}", mean_small, *frame,
                                mean_mapper, "mean", factor, 560)
    figures.add_markers(p_var, sources, legend=True)
    figures.add_markers(p_mean, sources, legend=False)
    map_note = ("<h2>Maps</h2><p>Pan and zoom are linked; circles mark defects (hover for details, click a "
                "legend entry to hide a kind). Coordinates are full-resolution stored pixels, row 0 at the top.")
    if len(shown) < len(run.defects):
        map_note += f" Only the {len(shown):,} highest-scoring of {len(run.defects):,} defects are marked."
    return [_div(map_note + "</p>"), row(p_var, p_mean)]


def _start_histograms(pool: ThreadPoolExecutor, run: _Inputs) -> list[tuple[Any, dict[str, float], Future]]:
    """Count each score's histogram in ``pool``, over a range that holds its own thresholds:
    (name, thresholds, future), in the detection's order of the scores."""
    if run.prepared is not None:
        return [(name, related_thresholds(str(name), run.thresholds), _done(hist))
                for name, hist in (run.prepared.histograms or {}).items()]
    jobs = []
    for name, arr in run.scores.items():
        marks = related_thresholds(str(name), run.thresholds)
        jobs.append((name, marks, pool.submit(histogram, np.asarray(arr), list(marks.values()))))
    return jobs


def _scores_section(run: _Inputs, hist_jobs: list[tuple[Any, dict[str, float], Future]]) -> list[Any]:
    """How the defects split into classes, and how far each score's tail stands out from the bulk
    past its thresholds: whether the thresholds sit where they should."""
    from bokeh.layouts import gridplot

    p_counts = figures.counts_figure(run.counts)
    hist_figs = []
    hist_notes = []
    for name, marks, job in hist_jobs:
        hist = job.result()
        if hist is None:
            hist_notes.append(f"{_esc(name)}: no finite values")
            continue
        hist_figs.append(figures.histogram_figure(str(name), hist, marks))
    text = "<h2>Scores and classes</h2>" + ("<p>" + "; ".join(hist_notes) + "</p>" if hist_notes else "")
    return [_div(text), gridplot([p_counts, *hist_figs], ncols=2, toolbar_location="right")]


def _defects_section(run: _Inputs, cap: int) -> list[Any]:
    """The strongest defects with their evidence, sortable; capped for size, and the page says so
    (defects.csv lists them all)."""
    table, n_rows = figures.defect_table(run.defects, cap)
    note = (f"all {n_rows:,}" if n_rows == len(run.defects)
            else f"the {n_rows:,} highest-scoring of {len(run.defects):,} (see defects.csv for all)")
    return [_div(f"<h2>Defects</h2><p>Sorted by score; showing {note}.</p>"), table]


def _files_section(run: _Inputs, cap: int) -> list[Any]:
    """What was read, skipped files first with their reason: frames left out silently would make
    the statistics look like they cover more than they do."""
    table, n_rows = figures.files_table(run.files, cap)
    n_used = run.n_used
    note = (f"all {n_rows:,}" if n_rows == len(run.files)
            else f"{n_rows:,} of {len(run.files):,}, skipped first (see files.csv for all)")
    return [_div(f"<h2>Files</h2><p>{n_used:,} used, {len(run.files) - n_used:,} skipped; showing {note}.</p>"),
            table]


def _physics_section(run: _Inputs, factor: int, rate_small: np.ndarray | None, frame_days: Sequence[int] | None,
                     notes: Sequence[str], max_markers: int) -> list[Any]:
    """What the physics model found: each sensel's dark current (DN/s at ISO 100, block max, the
    hot ones circled) and when the defects appeared over the frames' dates; with what the model
    says of the frames (exposures, dates, dark-subtracted frames)."""
    from bokeh.models import Range1d

    parts = []
    text = "<h2>Dark current and onsets</h2>"
    if notes:
        text += "<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>"
    parts.append(_div(text))
    if rate_small is not None:
        x_range = Range1d(0, run.width, bounds=(0, run.width))
        y_range = Range1d(run.height, 0, bounds=(0, run.height))
        block = f"{factor}x{factor} blocks" if factor > 1 else "full resolution"
        p = figures.map_figure(f"dark current above the neighbours', DN/s at ISO 100, block max, {block}", rate_small,
                               run.width, run.height, x_range, y_range, figures.rate_mapper(rate_small), "DN/s",
                               factor, 760)
        hot = [d for d in sorted(run.defects, key=lambda d: -d.score) if d.kind in ("hot", "column", "row")]
        figures.add_markers(p, figures.marker_sources(hot[:max_markers]), legend=True)
        parts.append(p)
    if frame_days is not None and len(frame_days):
        parts.append(figures.timeline_figure(frame_days, run.defects, _WIDTH))
    return parts


def _figure_sections(run: _Inputs, *, max_map_pixels: int, max_markers: int, max_table_rows: int,
                     max_file_rows: int, dark_rate: np.ndarray | None = None,
                     frame_days: Sequence[int] | None = None, physics_notes: Sequence[str] = ()) -> list[Any]:
    """Maps, scores and classes, defects and files; the numbers (maps, histograms) are computed in
    threads (numpy releases the GIL while it counts) while this thread builds the models that do
    not need them, so the page costs little more than its slowest number."""
    factor = block_factor(run.height, run.width, max_map_pixels)
    with ThreadPoolExecutor(_workers()) as pool:
        ready = run.prepared
        if ready is not None:
            factor = ready.factor
            var_job, mean_job = _done(ready.variance), _done(ready.mean)
            rate_job = _done(ready.dark_rate) if ready.dark_rate is not None else None
        else:
            assert run.spread is not None and run.mean is not None
            var_job = pool.submit(map_for_display, run.spread, factor, "max", run.divisor)
            mean_job = pool.submit(map_for_display, run.mean, factor, "mean")
            rate_job = pool.submit(map_for_display, dark_rate, factor, "max") if dark_rate is not None else None
        hist_jobs = _start_histograms(pool, run)
        defects = _defects_section(run, max_table_rows)
        files = _files_section(run, max_file_rows)
        maps = _maps_section(run, factor, var_job.result(), mean_job.result(), max_markers)
        scores = _scores_section(run, hist_jobs)
        physics = []
        if rate_job is not None or frame_days is not None or physics_notes:
            physics = _physics_section(run, factor, rate_job.result() if rate_job is not None else None, frame_days,
                                       physics_notes, max_markers)
    return maps + physics + scores + defects + files


def _done(value: Any) -> Future:
    """A number computed before, as the sections wait for the ones computed here."""
    future: Future = Future()
    future.set_result(value)
    return future


# --------------------------------------------------------------------------- entry point


def write_report(
    path: place.Where,
    *,
    value_mean: np.ndarray | None = None,
    value_var: np.ndarray | None = None,
    value_m2: np.ndarray | None = None,
    n_frames: int | None = None,
    defects: Sequence[Defect],
    files: Sequence[tuple[Any, Any, Any]],
    detection: Any = None,
    meta: Mapping[str, Any] | None = None,
    max_map_pixels: int = 512 * 512,
    max_table_rows: int = 2000,
    max_file_rows: int = 2000,
    max_markers: int = 20000,
    title: str = "hotpixels report",
    dark_rate: np.ndarray | None = None,
    frame_days: Sequence[int] | None = None,
    physics_notes: Sequence[str] = (),
    warnings: Sequence[str] = (),
    prepared: Prepared | None = None,
) -> place.Folder:
    """Write the standalone HTML report and return its path.

    Parameters
    ----------
    path : path-like
        Output ``.html`` (written atomically).
    value_mean, value_var : ndarray, (H, W) or (H, W, C)
        Per-pixel mean and variance of the stack (float64).
    value_m2, n_frames : ndarray like value_mean, int
        Instead of ``value_var``: the sums of squared deviations M2 and the frame count, as the
        stats hold them. The map shows block maxima, and M2/n is monotonic in M2, so dividing
        the maxima gives the same map without a full-size float64 copy of M2/n.
    defects : sequence of Defect
        Marked on the maps (the ``max_markers`` strongest) and listed (``max_table_rows``).
    files : sequence of (path, status, reason)
        status is 'used' or 'skipped'; skipped ones are listed first.
    detection : object, optional
        Duck-typed: ``scores`` (dict name -> ndarray), ``thresholds`` (dict name -> float),
        ``stack_kind`` and ``stack_reason`` (str). Each score gets a histogram; a threshold
        is drawn on the score whose name it equals or extends (``name_hot``, ``name.low``).
    meta : mapping, optional
        Shown as a key/value table (n_images, shape, camera, levels, elapsed, ...).
    max_map_pixels : int
        Upper bound on the pixels of each embedded map (block-reduced to fit).
    dark_rate : ndarray (H, W[, C]), optional
        Each sensel's dark current above its neighbours' (DN/s at ISO 100): drawn as a map.
    frame_days : sequence of int, optional
        The frames' capture days (days since 1970): the timeline of the defects' onsets.
    physics_notes : sequence of str
        What the physics model says of the stack (listed above those figures).
    warnings : sequence of str
        What the user should act on (a mosaic saved as gray), at the top, under the counts.
    prepared : Prepared, optional
        Instead of the arrays (value_*, dark_rate) and the detection's score maps: the maps and
        histograms reduced where the statistics are (a cluster's workers).
    """
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.resources import INLINE

    path = place.folder(path)
    if prepared is None and value_mean is None:
        raise ValueError("give value_mean (with value_var, or value_m2 and n_frames), or prepared numbers")
    run = _inputs(value_mean, value_var, value_m2, n_frames, defects, files, detection, prepared)
    parts = [_summary_section(run, title, warnings), *_run_section(dict(meta or {})),
             *_figure_sections(run, max_map_pixels=max_map_pixels, max_markers=max_markers,
                               max_table_rows=max_table_rows, max_file_rows=max_file_rows, dark_rate=dark_rate,
                               frame_days=frame_days, physics_notes=physics_notes)]
    with _without_document_validation():
        doc = file_html(column(*parts), INLINE, title=title)
    return atomic.write_text(path, doc)
