"""The report's bokeh models: maps and their colour mappers, defect markers, histograms, tables.

bokeh is imported inside each builder (importing it costs about a second, which a scan pays
in the background through ``preload``). Markers, tooltips and the image extents stay in
full-resolution coordinates (x = column, y = row, row 0 at the top), so what you read in the
report is what is in defects.csv and the exported maps. Kind names and colours come from
``pipeline.kinds``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..defect import Defect
from ..kinds import BY_NAME, KINDS

__all__ = ["add_markers", "colour_mappers", "counts_figure", "defect_table", "files_table", "histogram_figure",
           "map_figure", "marker_sources"]


# --------------------------------------------------------------------------- maps


def map_figure(title, img, full_w, full_h, x_range, y_range, mapper, value_label, factor, width):
    """A block-reduced map drawn over the full-resolution frame, with a hover and a colour bar."""
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


def colour_mappers(var_small: np.ndarray, mean_small: np.ndarray):
    """The variance map's (log, over its positive values) and the mean map's (linear) colour mappers."""
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


# --------------------------------------------------------------------------- markers


def marker_sources(defects: Sequence[Defect]):
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


def add_markers(p, sources, legend: bool):
    """Circle the defects of ``sources`` on map ``p`` in their kind's colour, with a hover (and a legend)."""
    from bokeh.models import HoverTool

    renderers = []
    for kind, src in sources.items():
        kw = {"legend_label": kind} if legend else {}
        r = p.scatter("x", "y", source=src, marker="circle", size=9, fill_alpha=0, line_width=2,
                      line_color=BY_NAME[kind].colour, **kw)
        renderers.append(r)
    if renderers:
        p.add_tools(HoverTool(renderers=renderers, tooltips=[
            ("x", "@px"), ("y", "@py"), ("channel", "@channel @color"), ("kind", "@kind"),
            ("score", "@score{0.[00]}"), ("mean", "@mean{0.[000]}"), ("std", "@std{0.[000]}")]))
    if legend and renderers:
        p.legend.click_policy = "hide"
        p.legend.location = "top_right"
        p.legend.background_fill_alpha = 0.6


# --------------------------------------------------------------------------- scores and classes


def histogram_figure(name: str, hist: dict[str, Any], marks: Mapping[str, float]):
    """A score's histogram (``numbers.histogram``) on a log axis, its thresholds drawn as dashed lines."""
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
    lo, hi = (float(edges[0]), float(edges[-1])) if len(edges) else (0.0, 0.0)
    for key, val in marks.items():
        p.add_layout(Span(location=val, dimension="height", line_color="#d62728", line_dash="dashed", line_width=2))
        # a threshold in the right half is labelled to its left: to its right the plot cut the label off
        left = val > lo + 0.5 * (hi - lo)
        p.add_layout(Label(x=val, y=ymax, text=f"{key} = {val:.3g} " if left else f" {key} = {val:.3g}",
                           text_align="right" if left else "left", text_font_size="9pt", text_color="#d62728"))
    if hist["note"]:
        p.add_layout(Label(x=5, y=5, x_units="screen", y_units="screen", text=hist["note"][:120],
                           text_font_size="8pt", text_color="#555555"))
    return p


def counts_figure(counts: Mapping[str, int]):
    """Bars of the defects per class, every kind in ``KINDS`` order (zero ones too), in its colour."""
    from bokeh.plotting import figure

    p = figure(x_range=list(KINDS), title="defects per class", width=460, height=280, toolbar_location=None, tools="")
    p.vbar(x=list(KINDS), top=[counts.get(k, 0) for k in KINDS], width=0.7, color=[BY_NAME[k].colour for k in KINDS])
    p.y_range.start = 0
    return p


# --------------------------------------------------------------------------- tables


def _plain_cells():
    """One text formatter and one (unused: the tables are read-only) editor for all the columns
    that would each get their own default ones: the same cells, fewer models to serialize."""
    from bokeh.models import StringEditor, StringFormatter

    return {"formatter": StringFormatter(), "editor": StringEditor()}


def defect_table(defects: Sequence[Defect], cap: int):
    """The ``cap`` highest-scoring defects as a sortable table, and how many rows it holds."""
    from bokeh.models import ColumnDataSource, DataTable, NumberFormatter, TableColumn

    rows = sorted(defects, key=lambda d: -d.score)[:cap]

    def col(attr):
        # plain lists, not numpy: they land in the HTML as readable JSON text
        return [(None if isinstance(v, float) and not math.isfinite(v) else v)
                for v in (getattr(d, attr) for d in rows)]

    fields = ["x", "y", "channel", "color", "kind", "score", "mean", "neighbour_mean", "dark_rate", "since",
              "length", "cluster", "detail"]
    src = ColumnDataSource({f: col(f) for f in fields})
    num = NumberFormatter(format="0.0", nan_format="", null_format="")
    widths = {"x": 50, "y": 50, "channel": 55, "color": 45, "kind": 60, "since": 85, "length": 50, "cluster": 50,
              "detail": 420}
    numeric = ("score", "mean", "neighbour_mean", "dark_rate")
    cells = _plain_cells()
    columns = [TableColumn(field=f, title=f, width=widths.get(f, 90),
                           **(dict(cells, formatter=num) if f in numeric else cells)) for f in fields]
    return DataTable(source=src, columns=columns, width=1100, height=min(600, 28 + 25 * max(1, len(rows))),
                     index_position=None, sortable=True), len(rows)


def files_table(files: Sequence[tuple[Any, Any, Any]], cap: int):
    """The files as (status, path, reason) rows, skipped ones first, at most ``cap``; and how many rows."""
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


# --------------------------------------------------------------------------- physics


def rate_mapper(rate_small: np.ndarray):
    """The dark-rate map's colours: log over the rates above zero, up to the strongest."""
    from bokeh.models import LogColorMapper

    pos = rate_small[np.isfinite(rate_small) & (rate_small > 0)]
    lo, hi = (float(v) for v in np.percentile(pos, [50, 99.99])) if pos.size else (0.1, 1.0)
    lo = max(lo, 1e-3)
    return LogColorMapper(palette="Inferno256", low=lo, high=max(hi, lo * 10), nan_color="rgba(0,0,0,0)")


def timeline_figure(frame_days: Sequence[int], defects: Sequence[Defect], width: int):
    """When the frames were taken (ticks) and how many defects each day shows: those there from
    the first frame, then each one dated by its onset (``since``), as a step over the dates.
    Dates are days since 1970 (UTC)."""
    from bokeh.models import ColumnDataSource, DatetimeTickFormatter, HoverTool
    from bokeh.plotting import figure

    ms = 86400 * 1000.0
    days = np.sort(np.asarray(frame_days, np.float64))
    dated = sorted((d for d in defects if d.since), key=lambda d: d.since)
    onsets = [_day(d.since) for d in dated]
    start = int(days[0] if len(days) else min(onsets))
    end = int(days[-1] if len(days) else max(onsets))
    at_start = len(defects) - len(onsets)
    steps_x = [start * ms] + [d * ms for d in onsets] + [end * ms]
    steps_y = [at_start] + [at_start + i + 1 for i in range(len(onsets))] + [len(defects)]
    p = figure(title="defects present by capture date (ticks: the frames)", x_axis_type="datetime", width=width,
               height=260, tools="pan,xwheel_zoom,box_zoom,reset,save", y_axis_label="defects")
    p.step(steps_x, steps_y, mode="after", line_width=2, color="#e6194b")
    frames = ColumnDataSource({"x": days * ms, "y": np.zeros(len(days))})
    p.scatter("x", "y", source=frames, marker="dash", angle=math.pi / 2, size=10, color="#4363d8")
    if onsets:
        appear = ColumnDataSource({"x": [d * ms for d in onsets], "y": steps_y[1:-1],
                                   "what": [f"{d.kind} ({d.x}, {d.y}) since {d.since}" for d in dated]})
        r = p.scatter("x", "y", source=appear, size=7, color="#e6194b")
        p.add_tools(HoverTool(renderers=[r], tooltips=[("", "@what")]))
    p.xaxis.formatter = DatetimeTickFormatter(days="%Y-%m-%d", months="%Y-%m", years="%Y")
    return p


def _day(since: str) -> int:
    import calendar
    import time

    return int(calendar.timegm(time.strptime(since[:10], "%Y-%m-%d")) // 86400)
