"""A standalone bokeh HTML report: what was scanned, what was found, and where.

The report must open from disk, offline, years later, and stay light for a 60 MP sensor. So:
BokehJS is inlined (``bokeh.resources.INLINE``, no CDN at view time); maps are block-reduced
to at most ``max_map_pixels`` (max for the variance so that a single hot or noisy pixel
still lights up its block, mean for the mean); histograms are computed here in numpy and
only the bin counts are embedded; tables are capped; the numbers are computed in threads
while the bokeh models are built. Markers,
tooltips and the image extents stay in full-resolution coordinates (x = column, y = row,
row 0 at the top), so what you read in the report is what is in defects.csv and the
exported maps.

Everything shown that comes from files (paths, skip reasons, metadata) is HTML-escaped.
"""

from __future__ import annotations

import html
import math
import os
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic
from .defect import KINDS, Defect

__all__ = ["write_report", "block_reduce"]

KIND_COLOURS = {"hot": "#e6194b", "stuck": "#f58231", "dead": "#00b7eb", "noisy": "#f032e6"}
_HIST_BINS = 200
_SAMPLE = 1_000_000  # values used to choose a histogram's range (the counts use all values)
_CHUNK = 1 << 20  # values counted at a time for a histogram
_BAND_VALUES = 1 << 19  # input values block-reduced at a time


# --------------------------------------------------------------------------- numpy side


def _block_factor(height: int, width: int, max_pixels: int) -> int:
    """Smallest integer block edge f with ceil(H/f) * ceil(W/f) <= max_pixels."""
    max_pixels = max(1, int(max_pixels))
    f = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    while math.ceil(height / f) * math.ceil(width / f) > max_pixels:
        f += 1
    return f


def _reduce_axis(arr: np.ndarray, factor: int, axis: int, how: str) -> np.ndarray:
    """Reduce one axis in blocks of ``factor`` (last block partial) through a reshape view.

    Splitting an axis in two is a view, so the full blocks cost one pass of numpy's
    contiguous reduction (~20x faster than ``ufunc.reduceat`` on a (H, W, 3) sensor).
    """
    n = arr.shape[axis]
    full = n // factor
    index: list[slice] = [slice(None)] * arr.ndim
    index[axis] = slice(0, full * factor)
    head = arr[tuple(index)]
    head = head.reshape(head.shape[:axis] + (full, factor) + head.shape[axis + 1 :])
    if how == "max":
        out = np.fmax.reduce(head, axis=axis + 1)
    else:
        out = head.sum(axis=axis + 1, dtype=np.float64)
    if n % factor:
        index[axis] = slice(full * factor, n)
        tail = arr[tuple(index)]
        tail = np.fmax.reduce(tail, axis=axis, keepdims=True) if how == "max" else tail.sum(
            axis=axis, keepdims=True, dtype=np.float64)
        out = np.concatenate([out, tail.astype(out.dtype, copy=False)], axis=axis)
    return out


def block_reduce(arr: np.ndarray, factor: int, how: str) -> np.ndarray:
    """Reduce the first two axes by ``factor`` x ``factor`` blocks ('max' or 'mean').

    Edge blocks may be partial and are reduced over what they hold. 'max' ignores NaN
    (``np.fmax``). Works on (H, W) and (H, W, C) without copying the full-size input.
    """
    if how not in ("max", "mean"):
        raise ValueError(f"how must be 'max' or 'mean', not {how!r}")
    arr = np.asarray(arr)
    if factor == 1:
        return arr.astype(np.float64)
    # a band of block rows at a time: the row reduction's float64 temporary stays a few MB
    # (each block is reduced by the same numpy loop either way: the same numbers)
    step = factor * max(1, _BAND_VALUES // max(1, factor * arr[:1].size))
    out = np.concatenate([_reduce_axis(_reduce_axis(arr[r : r + step], factor, 0, how), factor, 1, how)
                          for r in range(0, arr.shape[0], step)]).astype(np.float64, copy=False)
    if how == "mean":
        h, w = arr.shape[:2]
        nr = np.minimum(factor, h - np.arange(0, h, factor)).astype(np.float64)
        nc = np.minimum(factor, w - np.arange(0, w, factor)).astype(np.float64)
        counts = np.multiply.outer(nr, nc)
        out = out / (counts if out.ndim == 2 else counts[..., None])
    return out


def _map_for_display(arr: np.ndarray, factor: int, how: str, divisor: float | None = None) -> np.ndarray:
    """Block-reduced 2-D map: RGB becomes max over channels ('max') or their mean ('mean').

    ``divisor`` (with 'max' only): the map of ``arr / divisor``, divided after the reduction
    (float64 division by a positive number is monotonic: the same maxima, bit for bit).
    """
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) map, got shape {arr.shape}")
    small = block_reduce(arr, factor, how)
    if small.ndim == 3:
        small = np.fmax.reduce(small, axis=2) if how == "max" else small.mean(axis=2)
    if divisor is not None:
        if how != "max" or not divisor > 0:
            raise ValueError(f"a divisor needs 'max' and a positive value, got {how!r} and {divisor!r}")
        small = small / divisor  # float64, as M2/n is
    return np.ascontiguousarray(small, dtype=np.float32)


def _finite_sample(flat: np.ndarray) -> np.ndarray:
    step = max(1, flat.size // _SAMPLE)
    s = flat[::step]
    return s[np.isfinite(s)]


def _histogram_chunk(chunk: np.ndarray, lo: float, hi: float):
    """One chunk's share of ``_histogram``: bin counts, outliers below and above (count, extreme), finite values.

    The bins are ``np.histogram``'s own, and it bins each value on its own: the chunks' counts
    add up to those of the whole array.
    """
    counts, _ = np.histogram(chunk, bins=_HIST_BINS, range=(lo, hi))
    low = chunk[chunk < lo]
    low = low[np.isfinite(low)]  # the outliers only: small, whatever the sensor size
    high = chunk[chunk > hi]
    high = high[np.isfinite(high)]
    return (counts, (low.size, float(low.min()) if low.size else math.inf),
            (high.size, float(high.max()) if high.size else -math.inf), int(np.count_nonzero(np.isfinite(chunk))))


def _histogram(values: np.ndarray, marks: Sequence[float], pool=None) -> dict[str, Any] | None:
    """Counts over a range that holds the bulk and the thresholds; outliers go to the edges.

    The range is the 0.01-99.99 % quantiles of a sample, widened to include every mark
    (with a margin); values beyond it are added to the first/last bin so that nothing is
    hidden, and the note says how many there are and how far they reach. The values are
    counted in chunks (``pool``: in threads), so that the temporaries stay a few MB, with
    exactly the counts of one ``np.histogram`` over them all.
    """
    flat = np.asarray(values).reshape(-1)
    sample = _finite_sample(flat)
    if sample.size == 0:
        return None
    lo, hi = (float(v) for v in np.percentile(sample, [0.01, 99.99]))
    for m in marks:
        if math.isfinite(m):
            lo, hi = min(lo, m), max(hi, m)
    span = hi - lo
    lo, hi = (lo - 0.05 * span, hi + 0.05 * span) if span > 0 else (lo - 0.5, hi + 0.5)
    chunks = [flat[i : i + _CHUNK] for i in range(0, flat.size, _CHUNK)]
    shares = (pool.map if pool is not None and len(chunks) > 1 else map)(lambda c: _histogram_chunk(c, lo, hi), chunks)
    counts, edges = np.histogram(flat[:0], bins=_HIST_BINS, range=(lo, hi))  # the edges, and zero counts
    n_low, low_min, n_high, high_max, n = 0, math.inf, 0, -math.inf, 0
    for c, (nl, mn), (nh, mx), nf in shares:
        counts += c
        n_low, low_min, n_high, high_max, n = n_low + nl, min(low_min, mn), n_high + nh, max(high_max, mx), n + nf
    counts[0] += n_low
    counts[-1] += n_high
    parts = []
    if n_low:
        parts.append(f"{n_low:,} below {lo:.3g} (min {low_min:.3g}) in the first bin")
    if n_high:
        parts.append(f"{n_high:,} above {hi:.3g} (max {high_max:.3g}) in the last bin")
    note = "; ".join(parts)
    return {"counts": counts, "edges": edges, "note": note, "n": n}


def _related_thresholds(name: str, thresholds: Mapping[str, float]) -> dict[str, float]:
    """Thresholds named like the score: equal, or the score name plus a '_', '.' or ':' suffix."""
    out = {}
    for key, val in thresholds.items():
        k = str(key)
        if k == name or (k.startswith(name) and k[len(name)] in "_.:"):
            try:
                out[k] = float(val)
            except (TypeError, ValueError):
                continue
    return out


def _workers() -> int:
    return min(os.cpu_count() or 1, 4)


# --------------------------------------------------------------------------- bokeh side


def preload() -> threading.Thread:
    """Import bokeh in a background thread (about a second), so a scan pays for it while its
    workers compute rather than after; the report's own imports then find it loaded."""
    def load() -> None:
        import bokeh.embed  # noqa: F401
        import bokeh.layouts  # noqa: F401
        import bokeh.models  # noqa: F401
        import bokeh.plotting  # noqa: F401
        import bokeh.resources  # noqa: F401

    thread = threading.Thread(target=load, name="preload-bokeh", daemon=True)
    thread.start()
    return thread


@contextmanager
def _without_document_validation():
    """Skip bokeh's document validation (its integrity checks, about a sixth of ``file_html``).

    It only logs warnings about model graphs, and this module's graph is fixed and tested; the
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


def _map_figure(title, img, full_w, full_h, x_range, y_range, mapper, value_label, factor, width):
    from bokeh.models import ColorBar, HoverTool
    from bokeh.plotting import figure

    height = int(min(900, max(250, width * full_h / max(full_w, 1))))
    p = figure(title=title, x_range=x_range, y_range=y_range, width=width, height=height,
               tools="pan,wheel_zoom,box_zoom,reset,save", active_scroll="wheel_zoom",
               x_axis_label="x (column)", y_axis_label="y (row)")
    ny, nx = img.shape
    # the image covers whole blocks: dw = nx*f >= W, so block i spans rows [i*f, (i+1)*f) exactly;
    # with the reversed y range, bokeh draws array row 0 at y = 0, i.e. at the top.
    r = p.image(image=[img], x=0, y=0, dw=nx * factor, dh=ny * factor, color_mapper=mapper)
    p.add_tools(HoverTool(renderers=[r], tooltips=[("x", "$x{0}"), ("y", "$y{0}"), (value_label, "@image{0.[000]}")]))
    p.add_layout(ColorBar(color_mapper=mapper, width=10, title=value_label), "right")
    p.grid.visible = False
    return p


def _mappers(var_small: np.ndarray, mean_small: np.ndarray):
    from bokeh.models import LinearColorMapper, LogColorMapper

    pos = var_small[np.isfinite(var_small) & (var_small > 0)]
    if pos.size:
        lo, hi = (float(v) for v in np.percentile(pos, [1, 99.9]))
        hi = max(hi, lo * 10)
        var_mapper = LogColorMapper(palette="Viridis256", low=lo, high=hi, nan_color="rgba(0,0,0,0)")
    else:
        var_mapper = LinearColorMapper(palette="Viridis256", low=0, high=1, nan_color="rgba(0,0,0,0)")
    fin = mean_small[np.isfinite(mean_small)]
    lo, hi = (float(v) for v in np.percentile(fin, [0.5, 99.5])) if fin.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    mean_mapper = LinearColorMapper(palette="Greys256", low=lo, high=hi, nan_color="rgba(0,0,0,0)")
    return var_mapper, mean_mapper


def _marker_sources(defects: Sequence[Defect]):
    """One ColumnDataSource per kind (legend entries can then hide a kind)."""
    from bokeh.models import ColumnDataSource

    sources = {}
    for kind in KINDS:
        ds = [d for d in defects if d.kind == kind]
        if not ds:
            continue
        sources[kind] = ColumnDataSource({
            "x": np.array([d.x + 0.5 for d in ds], dtype=np.float64),
            "y": np.array([d.y + 0.5 for d in ds], dtype=np.float64),
            "px": np.array([d.x for d in ds], dtype=np.int32),
            "py": np.array([d.y for d in ds], dtype=np.int32),
            "channel": np.array([d.channel for d in ds], dtype=np.int32),
            "color": [d.color for d in ds],
            "kind": [d.kind for d in ds],
            "score": np.array([d.score for d in ds], dtype=np.float64),
            "mean": np.array([d.mean for d in ds], dtype=np.float64),
            "std": np.array([d.std for d in ds], dtype=np.float64),
        })
    return sources


def _add_markers(p, sources, legend: bool):
    from bokeh.models import HoverTool

    renderers = []
    for kind, src in sources.items():
        kw = {"legend_label": kind} if legend else {}
        r = p.scatter("x", "y", source=src, marker="circle", size=9, fill_alpha=0, line_width=2,
                      line_color=KIND_COLOURS[kind], **kw)
        renderers.append(r)
    if renderers:
        p.add_tools(HoverTool(renderers=renderers, tooltips=[
            ("x", "@px"), ("y", "@py"), ("channel", "@channel @color"), ("kind", "@kind"),
            ("score", "@score{0.[00]}"), ("mean", "@mean{0.[000]}"), ("std", "@std{0.[000]}")]))
    if legend and renderers:
        p.legend.click_policy = "hide"
        p.legend.location = "top_right"
        p.legend.background_fill_alpha = 0.6


def _histogram_figure(name: str, hist: dict[str, Any], marks: Mapping[str, float]):
    from bokeh.models import ColumnDataSource, Label, Span
    from bokeh.plotting import figure

    counts, edges = hist["counts"], hist["edges"]
    keep = counts > 0
    src = ColumnDataSource({"left": edges[:-1][keep], "right": edges[1:][keep], "top": counts[keep].astype(np.float64)})
    ymax = float(counts.max()) if counts.size and counts.max() > 0 else 1.0
    p = figure(title=f"score: {name} ({hist['n']:,} values)", width=460, height=280, y_axis_type="log",
               y_range=(0.5, ymax * 2), tools="pan,wheel_zoom,box_zoom,reset,save",
               x_axis_label=name, y_axis_label="pixels (log)")
    p.quad(left="left", right="right", top="top", bottom=0.5, source=src, fill_color="#4c72b0", line_color=None)
    for key, val in marks.items():
        p.add_layout(Span(location=val, dimension="height", line_color="#d62728", line_dash="dashed", line_width=2))
        p.add_layout(Label(x=val, y=ymax, text=f" {key} = {val:.3g}", text_font_size="9pt", text_color="#d62728"))
    if hist["note"]:
        p.add_layout(Label(x=5, y=5, x_units="screen", y_units="screen", text=hist["note"][:120],
                           text_font_size="8pt", text_color="#555555"))
    return p


def _plain_cells():
    """One text formatter and one (unused: the tables are read-only) editor for all the columns
    that would each get their own default ones: the same cells, fewer models to serialize."""
    from bokeh.models import StringEditor, StringFormatter

    return {"formatter": StringFormatter(), "editor": StringEditor()}


def _defect_table(defects: Sequence[Defect], cap: int):
    from bokeh.models import ColumnDataSource, DataTable, NumberFormatter, TableColumn

    rows = sorted(defects, key=lambda d: -d.score)[:cap]

    def col(attr):
        # plain lists, not numpy: they land in the HTML as readable JSON text
        return [(None if isinstance(v, float) and not math.isfinite(v) else v)
                for v in (getattr(d, attr) for d in rows)]

    fields = ["x", "y", "channel", "color", "kind", "score", "mean", "std", "neighbour_mean", "residual_mean", "detail"]
    src = ColumnDataSource({f: col(f) for f in fields})
    num = NumberFormatter(format="0.000", nan_format="", null_format="")
    widths = {"x": 60, "y": 60, "channel": 60, "color": 50, "kind": 60, "detail": 300}
    numeric = ("score", "mean", "std", "neighbour_mean", "residual_mean")
    cells = _plain_cells()
    columns = [TableColumn(field=f, title=f, width=widths.get(f, 90),
                           **(dict(cells, formatter=num) if f in numeric else cells)) for f in fields]
    return DataTable(source=src, columns=columns, width=1100, height=min(600, 28 + 25 * max(1, len(rows))),
                     index_position=None, sortable=True), len(rows)


def _files_table(files: Sequence[tuple[Any, Any, Any]], cap: int):
    from bokeh.models import ColumnDataSource, DataTable, TableColumn

    norm = [(str(p), str(s), "" if r is None else str(r)) for p, s, r in files]
    # the skipped ones are the ones to read: they come first
    rows = [f for f in norm if f[1] != "used"] + [f for f in norm if f[1] == "used"]
    rows = rows[:cap]
    src = ColumnDataSource({"path": [r[0] for r in rows], "status": [r[1] for r in rows],
                            "reason": [r[2] for r in rows]})
    cells = _plain_cells()
    cols = [TableColumn(field="status", title="status", width=70, **cells),
            TableColumn(field="path", title="path", width=650, **cells),
            TableColumn(field="reason", title="reason", width=380, **cells)]
    return DataTable(source=src, columns=cols, width=1100, height=min(500, 28 + 25 * max(1, len(rows))),
                     index_position=None), len(rows)


# --------------------------------------------------------------------------- entry point


def write_report(
    path: str | os.PathLike,
    *,
    value_mean: np.ndarray,
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
) -> Path:
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
    """
    from bokeh.embed import file_html
    from bokeh.layouts import column, gridplot, row
    from bokeh.models import Div, Range1d
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    path = Path(path)
    value_mean = np.asarray(value_mean)
    if (value_var is None) == (value_m2 is None) or (value_m2 is not None and n_frames is None):
        raise ValueError("give value_var, or value_m2 with n_frames")
    spread = np.asarray(value_var if value_var is not None else value_m2)
    if value_mean.shape != spread.shape:
        raise ValueError(f"mean {value_mean.shape} and variance {spread.shape} differ in shape")
    full_h, full_w = value_mean.shape[:2]
    channels = value_mean.shape[2] if value_mean.ndim == 3 else 1
    meta = dict(meta or {})
    defects = list(defects)
    files = list(files)

    # ---- summary
    counts = Counter(d.kind for d in defects)
    sites = len({(d.x, d.y) for d in defects})
    n_used = sum(1 for f in files if str(f[1]) == "used")
    n_skipped = len(files) - n_used
    scores = dict(getattr(detection, "scores", None) or {}) if detection is not None else {}
    thresholds = dict(getattr(detection, "thresholds", None) or {}) if detection is not None else {}
    stack_kind = getattr(detection, "stack_kind", None) if detection is not None else None
    stack_reason = getattr(detection, "stack_reason", None) if detection is not None else None

    kind_cells = "".join(
        f"<td style='padding:0 1em'><span style='color:{KIND_COLOURS[k]};font-size:1.4em'>&#9679;</span> "
        f"<b>{k}</b>: <span class='count-{k}'>{counts.get(k, 0)}</span></td>" for k in KINDS)
    summary = [
        f"<h1 style='margin-bottom:0.2em'>{_esc(title)}</h1>",
        f"<p><b>{len(defects):,}</b> defects at <b>{sites:,}</b> pixel sites on a {full_w} x {full_h}"
        f"{f' x {channels}' if channels > 1 else ''} image; "
        f"<b>{n_used:,}</b> files used, <b>{n_skipped:,}</b> skipped.</p>",
        f"<table><tr>{kind_cells}</tr></table>",
    ]
    if stack_kind is not None:
        summary.append(f"<p>Stack treated as <b>{_esc(stack_kind)}</b>"
                       f"{': ' + _esc(stack_reason) if stack_reason else ''}.</p>")
    elif detection is None:
        summary.append("<p>No detection details were given: score histograms are not shown.</p>")
    if thresholds:
        summary.append("<p>Thresholds: " + ", ".join(f"{_esc(k)} = {_esc(_fmt(v))}"
                                                     for k, v in thresholds.items()) + "</p>")
    parts: list[Any] = [Div(text="".join(summary), width=1100)]
    if meta:
        parts.append(Div(text="<h2>Run</h2>" + _kv_table(list(meta.items())), width=1100))

    factor = _block_factor(full_h, full_w, max_map_pixels)
    with ThreadPoolExecutor(_workers()) as pool:
        # the numbers are computed in threads (numpy releases the GIL while it counts)
        # while this thread builds the bokeh models that do not need them
        var_job = pool.submit(_map_for_display, spread, factor, "max", None if value_var is not None else n_frames)
        mean_job = pool.submit(_map_for_display, value_mean, factor, "mean")
        hist_jobs = []
        for name, arr in scores.items():
            marks = _related_thresholds(str(name), thresholds)
            hist_jobs.append((name, marks, pool.submit(_histogram, np.asarray(arr), list(marks.values()))))

        # ---- tables
        table, n_rows = _defect_table(defects, max_table_rows)
        ftable, n_frows = _files_table(files, max_file_rows)

        # ---- counts per class
        p_counts = figure(x_range=list(KINDS), title="defects per class", width=460, height=280,
                          toolbar_location=None, tools="")
        p_counts.vbar(x=list(KINDS), top=[counts.get(k, 0) for k in KINDS], width=0.7,
                      color=[KIND_COLOURS[k] for k in KINDS])
        p_counts.y_range.start = 0

        # ---- maps
        var_small, mean_small = var_job.result(), mean_job.result()
        var_mapper, mean_mapper = _mappers(var_small, mean_small)
        x_range = Range1d(0, full_w, bounds=(0, full_w))
        y_range = Range1d(full_h, 0, bounds=(0, full_h))  # reversed: row 0 at the top, as stored
        shown = sorted(defects, key=lambda d: -d.score)[:max_markers]
        sources = _marker_sources(shown)
        chan_note = " (max over channels)" if channels > 1 else ""
        mean_note = " (mean over channels)" if channels > 1 else ""
        block = f"{factor}x{factor} blocks" if factor > 1 else "full resolution"
        p_var = _map_figure(f"variance{chan_note}, block max, {block}", var_small, full_w, full_h, x_range, y_range,
                            var_mapper, "variance", factor, 560)
        p_mean = _map_figure(f"mean{mean_note}, block mean, {block}", mean_small, full_w, full_h, x_range, y_range,
                             mean_mapper, "mean", factor, 560)
        _add_markers(p_var, sources, legend=True)
        _add_markers(p_mean, sources, legend=False)
        map_note = ("<h2>Maps</h2><p>Pan and zoom are linked; circles mark defects (hover for details, click a "
                    "legend entry to hide a kind). Coordinates are full-resolution stored pixels, row 0 at the top.")
        if len(shown) < len(defects):
            map_note += f" Only the {len(shown):,} highest-scoring of {len(defects):,} defects are marked."
        parts += [Div(text=map_note + "</p>", width=1100), row(p_var, p_mean)]

        # ---- score histograms
        hist_figs = []
        hist_notes = []
        for name, marks, job in hist_jobs:
            hist = job.result()
            if hist is None:
                hist_notes.append(f"{_esc(name)}: no finite values")
                continue
            hist_figs.append(_histogram_figure(str(name), hist, marks))
    parts.append(Div(text="<h2>Scores and classes</h2>" + (
        "<p>" + "; ".join(hist_notes) + "</p>" if hist_notes else ""), width=1100))
    parts.append(gridplot([p_counts, *hist_figs], ncols=2, toolbar_location="right"))

    # ---- tables
    note = (f"all {n_rows:,}" if n_rows == len(defects)
            else f"the {n_rows:,} highest-scoring of {len(defects):,} (see defects.csv for all)")
    parts += [Div(text=f"<h2>Defects</h2><p>Sorted by score; showing {note}.</p>", width=1100), table]
    fnote = (f"all {n_frows:,}" if n_frows == len(files)
             else f"{n_frows:,} of {len(files):,}, skipped first (see files.csv for all)")
    parts += [Div(text=f"<h2>Files</h2><p>{n_used:,} used, {n_skipped:,} skipped; showing {fnote}.</p>",
                  width=1100), ftable]

    with _without_document_validation():
        doc = file_html(column(*parts), INLINE, title=title)
    return atomic.write_text(path, doc)
