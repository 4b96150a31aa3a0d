"""The dashboard's /hotpixels page: a scan's files done, skipped and left, its rate, and a
preview of the defect map, live.

A scan's client reports after every segment with ``client.set_metadata(["hotpixels", job],
record)``; the scheduler keeps the records, and this page, served by the scheduler's own
dashboard (a bokeh server), reads them once a second. So there is no other port or process:
``hotpixels scan`` adds the page to its LocalCluster (``register(cluster.scheduler)``), and a
scheduler you start yourself gets it with ``dask scheduler --preload pipeline.engine.dashboard``.
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
import time
from typing import Any

import numpy as np

# under "distributed" so that a `dask scheduler` log shows the lines, formatted like its own
log = logging.getLogger("distributed.dashboard.hotpixels")

METADATA_KEY = "hotpixels"
PATH = "/hotpixels"
NOTHING = "no hotpixels scan has reported to this scheduler yet"
STALE_SECONDS = 300  # a "running" record this old: its client has probably gone away
MAX_ROWS = 50


def dask_setup(server: Any) -> None:
    """distributed's preload hook (``dask scheduler --preload pipeline.engine.dashboard``). Named as a
    worker's preload by mistake it does nothing: a worker has no scheduler dashboard."""
    from distributed import Scheduler

    if not isinstance(server, Scheduler):
        log.warning("pipeline.engine.dashboard is a scheduler preload; ignored on a %s", type(server).__name__)
        return
    if register(server):
        port = getattr(getattr(server, "http_server", None), "port", "?")
        log.info("hotpixels page at %s of the dashboard (port %s)", _path(server), port)
    elif _dashboard(server) is None:
        log.warning("no hotpixels page: this scheduler has no dashboard (--no-dashboard, or bokeh "
                    "missing or of a version distributed does not accept)")


def register(scheduler: Any) -> bool:
    """Serve the page on ``scheduler``'s dashboard; False if it has none. The scan calls it with
    its LocalCluster's ``cluster.scheduler``; a second call does nothing. Callable from any
    thread: the page is added on the scheduler's event loop, where its server runs. It uses
    distributed's dashboard internals; should they change, it says so and returns False rather
    than fail the scan."""
    try:
        on_loop = asyncio.get_running_loop() is scheduler.loop.asyncio_loop
    except RuntimeError:
        on_loop = False
    try:
        if on_loop:
            return _install(scheduler)
        from distributed.utils import sync

        async def install() -> bool:
            return _install(scheduler)

        return bool(sync(scheduler.loop, install))
    except (ImportError, AttributeError, TypeError, ValueError, KeyError):
        log.warning("could not add the hotpixels page to this version of distributed's dashboard", exc_info=True)
        return False


def page_url(dashboard_link: str) -> str:
    """The page's address from a dashboard link (``client.dashboard_link``, ``.../status``)."""
    base = dashboard_link.rstrip("/")
    if base.endswith("/status"):
        base = base[: -len("/status")]
    return base + PATH


def _path(scheduler: Any) -> str:
    """The page's path on ``scheduler``'s dashboard, with its prefix (``--dashboard-prefix``)."""
    dashboard = _dashboard(scheduler)
    return (dashboard.prefix if dashboard is not None else "") + PATH


def _bokeh_apps(scheduler: Any) -> list[Any]:
    try:
        from bokeh.server.tornado import BokehTornado
    except ImportError:
        return []
    return [app for app in getattr(getattr(scheduler, "http_application", None), "applications", [])
            if isinstance(app, BokehTornado)]


def _dashboard(scheduler: Any) -> Any:
    """distributed's own bokeh server on the scheduler (it serves /status), or None."""
    return next((app for app in _bokeh_apps(scheduler) if "/status" in app.app_paths), None)


def _install(scheduler: Any) -> bool:
    """What distributed's ``dashboard.scheduler.connect`` does for its pages, for ours, next to
    them on the same http server (same prefix, same navigation bar)."""
    dashboard = _dashboard(scheduler)
    if dashboard is None:
        log.debug("no dashboard on %s: no hotpixels page", scheduler.address)
        return False
    if any(PATH in app.app_paths for app in _bokeh_apps(scheduler)):
        return True
    from distributed.dashboard.core import BokehApplication
    from distributed.dashboard.scheduler import template_variables
    from tornado.ioloop import IOLoop

    variables = template_variables(scheduler)  # memoized: the very dict the other pages render
    pages = variables.get("pages")
    if isinstance(pages, list) and "hotpixels" not in pages:  # in place: every page's navigation
        pages.insert(pages.index("info") if "info" in pages else len(pages), "hotpixels")
    app = BokehApplication({PATH: hotpixels_doc}, scheduler, prefix=dashboard.prefix, template_variables=variables)
    scheduler.http_application.add_application(app)
    app.initialize(IOLoop.current())
    app.start()
    return True


# -- reading the records ----------------------------------------------------------------------

def _number(value: Any, default: float = 0.0) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def _count(value: Any) -> int:
    return max(int(_number(value)), 0)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def job_view(job: Any, record: Any) -> dict[str, Any]:
    """One record as the page shows it: every field present and of its type, whatever the
    record holds (a scan of another version, a hand-set key), so one bad record cannot break
    the page."""
    rec = record if isinstance(record, dict) else {}
    total, done = _count(rec.get("files_total")), _count(rec.get("files_done"))
    skipped = _count(rec.get("files_skipped"))
    eta = rec.get("eta_seconds")
    return {
        "job": _text(rec.get("job") or job),
        "state": _text(rec.get("state")) or ("malformed" if not isinstance(record, dict) else "unknown"),
        "out": _text(rec.get("out")),
        "command": _text(rec.get("command")),
        "started": _number(rec.get("started")),
        "updated": _number(rec.get("updated")),
        "total": total, "done": done, "skipped": skipped, "left": max(total - done - skipped, 0),
        "segments": _count(rec.get("segments_done")),
        "segment_files": _count(rec.get("segment_files")),
        "rate": max(_number(rec.get("rate")), 0.0),
        "eta": None if eta is None else max(_number(eta, -1.0), -1.0),
        "summary": _text(rec.get("summary")),
        "reason": _text(rec.get("reason")),
        "preview": rec.get("preview"),
    }


def jobs(metadata: Any) -> list[dict[str, Any]]:
    """The jobs, newest first (by start, then by last report); a record set to None is dropped."""
    items = metadata.items() if isinstance(metadata, dict) else []
    views = [job_view(job, record) for job, record in items if record is not None]
    return sorted(views, key=lambda v: (v["started"] or v["updated"], v["updated"]), reverse=True)[:MAX_ROWS]


def headline_job(views: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest running job, else the newest."""
    return next((v for v in views if v["state"] == "running"), views[0] if views else None)


def preview_image(preview: Any) -> np.ndarray | None:
    """The preview as a 2-D uint8 array, row 0 at the top; None if absent or malformed."""
    if not isinstance(preview, dict):
        return None
    try:
        values = np.asarray(preview.get("values"), dtype=float)
    except (TypeError, ValueError):
        return None
    if values.ndim != 2 or values.size == 0 or values.size > 4_000_000:
        return None
    return np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "–"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def _ago(updated: float, now: float) -> str:
    return duration(max(now - updated, 0)) + " ago" if updated else "–"


def _rate(rate: float) -> str:
    return f"{rate:.3g}" if rate > 0 else "–"


# -- the page ---------------------------------------------------------------------------------

_STATE_COLOURS = {"running": "#1f6fb2", "done": "#2a8a3e", "failed": "#c0392b", "cancelled": "#8a6d00"}


def _card(value: str, label: str, colour: str = "#222", size: int = 46) -> str:
    return (f'<div style="min-width:170px"><div style="font-size:{size}px;font-weight:700;line-height:1.1;'
            f'color:{colour};white-space:nowrap">{html.escape(value)}</div>'
            f'<div style="font-size:15px;color:#666">{html.escape(label)}</div></div>')


def _bar(view: dict[str, Any]) -> str:
    """Done (blue) and skipped (grey) as shares of the total."""
    total = max(view["total"], 1)
    done, skipped = 100 * min(view["done"], total) / total, 100 * min(view["skipped"], total) / total
    return ('<div style="display:flex;height:10px;width:720px;background:#e3e3e3;border-radius:5px;overflow:hidden">'
            f'<div style="width:{done:.2f}%;background:#1f6fb2"></div>'
            f'<div style="width:{skipped:.2f}%;background:#9a9a9a"></div></div>')


def headline_html(view: dict[str, Any] | None, now: float) -> str:
    """The big numbers of one job (every record string escaped: it is shown as HTML)."""
    font = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
    if view is None:
        return f'<div style="{font};font-size:20px;color:#555;padding:24px 0">{NOTHING}</div>'
    state = view["state"]
    stale = state == "running" and view["updated"] and now - view["updated"] > STALE_SECONDS
    line = (f'<span style="color:{_STATE_COLOURS.get(state, "#555")};font-weight:700">{html.escape(state)}</span>'
            f' &nbsp;{html.escape(view["out"]) or "?"} &nbsp;<span style="color:#888">job {html.escape(view["job"])},'
            f' updated {_ago(view["updated"], now)}</span>')
    if stale:
        line += ' <span style="color:#c0392b">(no report for a while: has the scan stopped?)</span>'
    row = '<div style="display:flex;gap:14px;margin:14px 0 10px 0">{}</div>'
    numbers = row.format(_card(f"{view['done']:,}", "files done", "#1f6fb2") + _card(f"{view['skipped']:,}", "skipped")
                         + _card(f"{view['left']:,}", "left") + _card(f"{view['total']:,}", "files in all"))
    running = state == "running"
    progress = row.format(
        _card(_rate(view["rate"]), "files / s", size=34) + _card(duration(view["eta"]), "ETA", size=34)
        + _card(f"{view['segments']:,}", "segments done", size=34)
        + _card(f"{view['segment_files']:,}" if running else "–",
                f"being read, from segment {view['segments'] + 1}" if running else "no segment running", size=34))
    notes = "".join(f'<div style="font-size:15px;margin-top:6px;color:{colour}">{html.escape(text)}</div>'
                    for text, colour in ((view["summary"], "#222"), (view["reason"], "#c0392b"),
                                         (view["command"], "#888")) if text)
    return (f'<div style="{font}"><div style="font-size:18px">{line}</div>{numbers}{_bar(view)}{progress}'
            f'{notes}</div>')


def table_data(views: list[dict[str, Any]], now: float) -> dict[str, list[Any]]:
    columns = ("state", "out", "done", "skipped", "left", "total", "segments", "segment_files", "rate", "eta",
               "updated", "result", "job")
    data: dict[str, list[Any]] = {c: [] for c in columns}
    for v in views:
        row = {**v, "segment_files": v["segment_files"] if v["state"] == "running" else "",
               "rate": _rate(v["rate"]), "eta": duration(v["eta"]), "updated": _ago(v["updated"], now),
               "result": v["summary"] or v["reason"]}
        for c in columns:
            data[c].append(row[c])
    return data


class Page:
    """The document's models and its once-a-second update from the scheduler's records."""

    PREVIEW_SIZE = 420

    def __init__(self, scheduler: Any, doc: Any):
        from bokeh.layouts import column, row
        from bokeh.models import ColumnDataSource, DataTable, Div, LinearColorMapper, Range1d, TableColumn
        from bokeh.palettes import Greys256
        from bokeh.plotting import figure

        self.scheduler, self.doc = scheduler, doc
        self.headline = Div(text="", width=780)
        self.image = ColumnDataSource({"image": [np.zeros((1, 1), np.uint8)], "dw": [1], "dh": [1]})
        self.preview = figure(title="defect map: no preview yet", tools="", toolbar_location=None,
                              x_range=Range1d(0, 1), y_range=Range1d(1, 0),  # y flipped: row 0 at the top
                              frame_width=self.PREVIEW_SIZE, frame_height=self.PREVIEW_SIZE, min_border=4)
        self.preview.axis.visible = False
        self.preview.grid.visible = False
        self.preview.title.text_font_size = "14px"
        self.preview.image(image="image", x=0, y=0, dw="dw", dh="dh", source=self.image,
                           color_mapper=LinearColorMapper(palette=Greys256, low=0, high=255))
        self.source = ColumnDataSource(table_data([], 0))
        names = {"state": "state", "out": "out", "done": "done", "skipped": "skipped", "left": "left",
                 "total": "total", "segments": "segments", "segment_files": "reading now",
                 "rate": "files/s", "eta": "ETA", "updated": "updated", "result": "result", "job": "job"}
        widths = {"state": 75, "out": 200, "segments": 70, "segment_files": 95, "eta": 75, "updated": 110,
                  "result": 200, "job": 110}
        self.table = DataTable(source=self.source, index_position=None, reorderable=False, width=1240, height=200,
                               columns=[TableColumn(field=f, title=t, width=widths.get(f, 60))
                                        for f, t in names.items()])
        self.root = column(row(self.headline, self.preview), self.table)
        self._preview_key: Any = None

    def update(self) -> None:
        now = time.time()
        views = jobs(self.scheduler.get_metadata([METADATA_KEY], default={}))
        top = headline_job(views)
        self.headline.text = headline_html(top, now)
        data = table_data(views, now)
        if data != self.source.data:
            self.source.data = data
        self.doc.title = (f"Hotpixels: {top['done']:,}/{top['total']:,} files ({top['state']})" if top
                          else "Dask: Hotpixels")
        key = (top["job"], top["updated"]) if top else None
        if key != self._preview_key:
            self._preview_key = key
            self._show_preview(preview_image(top["preview"]) if top else None)

    def _show_preview(self, image: np.ndarray | None) -> None:
        if image is None:
            self.preview.title.text = "defect map: no preview yet"
            image = np.zeros((1, 1), np.uint8)
        else:
            self.preview.title.text = "defect map so far (brighter = more defective)"
        h, w = image.shape
        scale = self.PREVIEW_SIZE / max(h, w)
        self.preview.frame_width, self.preview.frame_height = max(round(w * scale), 1), max(round(h * scale), 1)
        self.preview.x_range.end = w
        self.preview.y_range.start = h
        self.image.data = {"image": [image], "dw": [w], "dh": [h]}


def hotpixels_doc(scheduler: Any, extra: dict[str, Any], doc: Any) -> None:
    """The bokeh document of one browser session (``BokehApplication``'s signature)."""
    from distributed.dashboard.components.scheduler import BOKEH_THEME, env

    page = Page(scheduler, doc)
    page.update()
    doc.add_periodic_callback(page.update, 1000)
    doc.add_root(page.root)
    doc.template = env.get_template("simple.html")
    doc.template_variables.update(extra)
    doc.theme = BOKEH_THEME
