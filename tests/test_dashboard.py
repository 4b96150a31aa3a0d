"""The dashboard's /hotpixels page on real schedulers: a `dask scheduler --preload pipeline.engine.dashboard`
process (over HTTP, over bokeh's own websocket protocol, and drawn by headless Chromium), the
scan's LocalCluster (``register``), and a scheduler without a dashboard."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from distributed import Client, LocalCluster
from PIL import Image

from pipeline.engine import dashboard
from pipeline.engine.dashboard import NOTHING, page_url, register

from .conftest import BIN, free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]


def preview_values() -> np.ndarray:
    """A 96x64 preview: dim noise, scattered hot pixels, a bright column at x=70 and a white
    4x4 block at rows 4-7, columns 8-11 (top left: where it must be drawn, row 0 at the top)."""
    rng = np.random.default_rng(7)
    values = rng.integers(0, 40, (64, 96))
    values[rng.integers(16, 64, 40), rng.integers(16, 96, 40)] = rng.integers(150, 256, 40)
    values[:, 70] = 180
    values[4:8, 8:12] = 255
    return values


def records(now: float) -> dict[str, object]:
    """Two jobs per the scan's contract (one running with a preview, one done), a record that
    is not a dict and one with most keys missing."""
    return {
        "night2": {"job": "night2", "out": "/data/night2/out", "state": "running", "command": "hotpixels scan /data/night2 --out /data/night2/out",
                   "started": now - 100, "updated": now - 1, "files_total": 400, "files_done": 120, "files_skipped": 8,
                   "segments_done": 3, "segment_files": 40, "rate": 2.5, "eta_seconds": 108.8, "summary": "", "reason": "",
                   "preview": {"width": 96, "height": 64, "values": preview_values().tolist()}},
        "night1": {"job": "night1", "out": "/data/night1/out", "state": "done", "command": "hotpixels scan /data/night1",
                   "started": now - 4000, "updated": now - 3000, "files_total": 50, "files_done": 48, "files_skipped": 2,
                   "segments_done": 2, "segment_files": 0, "rate": 1.1, "eta_seconds": None,
                   "summary": "40 hot, 2 stuck, 1 dead", "reason": "", "preview": None},
        "junk": [1, 2, 3],
        "partial": {"state": "failed", "files_done": "many", "preview": {"values": [[1, 2], [3]]}},
    }


def start_scheduler(log: Path, port: int, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                             "--preload", "pipeline.engine.dashboard", *args],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    with Client(f"tcp://127.0.0.1:{port}", timeout="30s"):  # up, preload run
        pass
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def preloaded(tmp_path_factory):
    """A `dask scheduler --preload pipeline.engine.dashboard` process holding the records; yields
    (client, dashboard base URL, scheduler log)."""
    log = tmp_path_factory.mktemp("scheduler") / "scheduler.log"
    port, http = free_port(), free_port()
    proc = start_scheduler(log, port, "--dashboard-address", f"127.0.0.1:{http}")
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout="30s") as client:
            now = time.time()
            for job, record in records(now).items():
                client.set_metadata(["hotpixels", job], record)
            yield client, f"http://127.0.0.1:{http}", log
    finally:
        stop(proc)


def session_view(url: str) -> tuple[str, str, dict]:
    """The page's document as a browser session gets it over bokeh's websocket protocol:
    (title, the headline's HTML, the job table's columns)."""
    from bokeh.client import pull_session
    from bokeh.models import DataTable, Div

    with pull_session(url=url) as session:
        doc = session.document
        headline = next(iter(doc.select({"type": Div}))).text
        table = next(iter(doc.select({"type": DataTable}))).source.data
        return doc.title, headline, dict(table)


@pytest.mark.slow
def test_page_over_http(preloaded):
    client, base, log = preloaded
    page = requests.get(base + "/hotpixels", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "bokeh.min.js" in page.text and "Bokeh.embed" in page.text  # a bokeh server document
    assert 'href="hotpixels"' in page.text
    assert 'href="hotpixels"' in requests.get(base + "/status", timeout=30).text  # in every page's navigation
    assert "hotpixels page at /hotpixels of the dashboard" in log.read_text()

    title, headline, table = session_view(base + "/hotpixels")
    assert title == "Hotpixels: 120/400 files (running)"
    for text in ("120", "272", "400", "/data/night2/out", "1m 49s", "being read, from segment 4"):
        assert text in headline
    assert table["out"][:2] == ["/data/night2/out", "/data/night1/out"]  # newest first
    assert (table["done"][:2], table["skipped"][:2], table["left"][:2]) == ([120, 48], [8, 2], [272, 0])
    assert set(table["state"]) == {"running", "done", "failed", "malformed"}


# -- in a browser -------------------------------------------------------------------------------

def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"))), None)


# the page's text as drawn, shadow roots included (bokeh renders each model in its own)
DEEP_TEXT = """(() => { const out = [];
  const walk = (n) => { if (!n || n.nodeName === 'STYLE' || n.nodeName === 'SCRIPT') return;
    if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) { if (c.nodeType === 3) out.push(c.textContent); else walk(c); } };
  walk(document.body); return [document.title, out.join(' ').split(/\\s+/).join(' ')]; })()"""


class Browser:
    """Headless Chromium driven over the DevTools protocol with aiohttp's websocket client.
    Not `chromium --screenshot --virtual-time-budget`: its virtual time runs ahead of the
    network, so it shoots before bokeh's websocket session has delivered the document (blank,
    for distributed's own /status page too); here the test waits until the page shows the text."""

    def __init__(self, binary: str, profile: Path):
        self.proc = subprocess.Popen([binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                      "--force-color-profile=srgb", "--window-size=1300,1000",
                                      "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict] = []
        self.calls = 0
        port_file = profile / "DevToolsActivePort"
        assert wait_for(lambda: port_file.exists() and len(port_file.read_text().split()) == 2, 30)
        targets = requests.get(f"http://127.0.0.1:{port_file.read_text().split()[0]}/json/list", timeout=10).json()
        self.session, self.ws = self.run(self._open(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]))
        self.call("Runtime.enable")

    @staticmethod
    async def _open(url):
        import aiohttp

        session = aiohttp.ClientSession()
        return session, await session.ws_connect(url, max_msg_size=0)

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        number = self.calls

        async def answer():
            await self.ws.send_json({"id": number, "method": method, "params": params})
            while True:
                message = await self.ws.receive_json()
                if message.get("method") == "Runtime.exceptionThrown":
                    self.errors.append(message["params"])
                if message.get("id") == number:
                    assert "error" not in message, message
                    return message["result"]

        return self.run(answer())

    def text(self) -> tuple[str, str]:
        return tuple(self.call("Runtime.evaluate", expression=DEEP_TEXT, returnByValue=True)["result"]["value"])

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        self.run(self.session.close())
        self.loop.close()
        stop(self.proc)


def preview_box(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the preview on the screen: the only large dark rectangle
    (text is dark too, but no row or column of it is anywhere near as long)."""
    dark = gray <= 45
    rows, cols = np.flatnonzero(dark.sum(axis=1) > 300), np.flatnonzero(dark.sum(axis=0) > 150)
    if not len(rows) or not len(cols):
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def region(gray: np.ndarray, box, rows: tuple[int, int], cols: tuple[int, int], shape=(64, 96)) -> np.ndarray:
    """The screen pixels of preview rows [r0, r1) and columns [c0, c1), less a pixel of margin."""
    top, bottom, left, right = box
    sy, sx = (bottom - top) / shape[0], (right - left) / shape[1]
    return gray[int(top + rows[0] * sy) + 1: int(top + rows[1] * sy) - 1, int(left + cols[0] * sx) + 1: int(left + cols[1] * sx) - 1]


@pytest.mark.slow
def test_page_in_a_browser(preloaded, tmp_path):
    binary = chromium()
    if binary is None:
        pytest.skip("no chromium binary (apt-get install -y chromium): the page was checked over HTTP and bokeh's protocol only")
    client, base, _ = preloaded
    for job in ("junk", "partial"):
        client.set_metadata(["hotpixels", job], None)  # dropped from the page
    browser = Browser(binary, tmp_path / "profile")
    try:
        browser.call("Emulation.setDeviceMetricsOverride", width=1300, height=560, deviceScaleFactor=1, mobile=False)
        browser.call("Page.navigate", url=base + "/hotpixels")
        assert wait_for(lambda: "night1" in browser.text()[1], 30), browser.text()
        title, text = browser.text()
        assert title == "Hotpixels: 120/400 files (running)"  # set by bokehjs from the session's document
        assert "partial" not in text and "malformed" not in text
        for shown in ("120 files done", "8 skipped", "272 left", "400 files in all", "2.5 files / s", "1m 49s ETA",
                      "3 segments done", "40 being read, from segment 4", "running /data/night2/out",
                      "done /data/night1/out 48 2 0 50 2", "40 hot, 2 stuck, 1 dead night1"):  # the headline's numbers, and the table's rows
            assert shown in text, shown

        def drawn():
            gray = np.asarray(Image.open(io.BytesIO(png := browser.screenshot())).convert("L"), dtype=float)
            box = preview_box(gray)
            return png, gray, box

        assert wait_for(lambda: drawn()[2] is not None, 15)
        png, gray, box = drawn()
        top, bottom, left, right = box
        assert gray.std() > 30  # not blank
        assert 1.4 < (right - left) / (bottom - top) < 1.6  # 96 x 64, its aspect kept
        assert region(gray, box, (4, 8), (8, 12)).min() > 240  # the white block, top left
        assert region(gray, box, (56, 60), (8, 12)).mean() < 120  # not at the bottom (y not flipped)
        assert np.median(region(gray, box, (16, 64), (70, 71))) > 150  # the bright column at x = 70
        if os.environ.get("HOTPIXELS_DASHBOARD_SCREENSHOT"):
            Path(os.environ["HOTPIXELS_DASHBOARD_SCREENSHOT"]).write_bytes(png)

        record = records(time.time())["night2"]
        client.set_metadata(["hotpixels", "night2"], {**record, "files_done": 200, "updated": time.time()})
        assert wait_for(lambda: "200 files done" in browser.text()[1], 10)  # live, through the periodic callback
        assert browser.text()[0] == "Hotpixels: 200/400 files (running)"
        assert not browser.errors
    finally:
        browser.close()
        for job, record in records(time.time()).items():
            client.set_metadata(["hotpixels", job], record)


# -- register on the scan's LocalCluster ----------------------------------------------------------

@pytest.mark.slow
def test_register_on_a_local_cluster():
    with LocalCluster(n_workers=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        url = page_url(client.dashboard_link)
        assert requests.get(url, timeout=30).status_code == 404
        assert register(cluster.scheduler) is True
        assert register(cluster.scheduler) is True  # harmless
        assert client.run_on_scheduler(lambda dask_scheduler: register(dask_scheduler)) is True  # from its loop
        serving = [app for app in cluster.scheduler.http_application.applications
                   if "/hotpixels" in getattr(app, "app_paths", ())]
        assert len(serving) == 1
        page = requests.get(url, timeout=30)
        assert page.status_code == 200 and "Bokeh.embed" in page.text
        assert page.text.count('href="hotpixels"') == 1

        assert session_view(url)[1].count(NOTHING) == 1
        now = time.time()
        client.set_metadata(["hotpixels", "j1"], {"job": "j1", "out": "/o", "state": "done", "started": now,
                                                  "updated": now, "files_total": 9, "files_done": 7,
                                                  "files_skipped": 2, "summary": "3 hot <b>"})
        title, headline, table = session_view(url)
        assert title == "Hotpixels: 7/9 files (done)"
        assert "3 hot &lt;b&gt;" in headline and NOTHING not in headline  # record text shown as text
        assert table["left"] == [0]


# -- no dashboard --------------------------------------------------------------------------------

@contextlib.contextmanager
def captured():
    logger = logging.getLogger("distributed.dashboard.hotpixels")
    lines: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: lines.append(record.getMessage())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.slow
def test_no_dashboard_scheduler_process(tmp_path):
    log = tmp_path / "scheduler.log"
    port, http = free_port(), free_port()
    proc = start_scheduler(log, port, "--no-dashboard", "--dashboard-address", f"127.0.0.1:{http}")
    try:
        assert wait_for(lambda: "no hotpixels page: this scheduler has no dashboard" in log.read_text(), 10), log.read_text()
        assert requests.get(f"http://127.0.0.1:{http}/health", timeout=10).status_code == 200  # its http server
        assert requests.get(f"http://127.0.0.1:{http}/hotpixels", timeout=10).status_code == 404
        assert proc.poll() is None
    finally:
        stop(proc)


def test_no_dashboard_in_process_and_a_worker_preload():
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, captured() as lines:
        assert register(cluster.scheduler) is False
        assert any("no dashboard" in line for line in lines)
        worker = next(iter(cluster.workers.values()))
        dashboard.dask_setup(worker)  # `dask worker --preload pipeline.engine.dashboard` by mistake
        assert lines[-1] == "pipeline.engine.dashboard is a scheduler preload; ignored on a Worker"


# -- reading records --------------------------------------------------------------------------------

def test_records_of_any_shape():
    views = dashboard.jobs(records(1e9))
    assert [v["job"] for v in views][:2] == ["night2", "night1"]
    assert dashboard.headline_job(views)["job"] == "night2"
    partial = next(v for v in views if v["job"] == "partial")
    assert (partial["done"], partial["left"], partial["eta"], partial["preview"] is not None) == (0, 0, None, True)
    assert dashboard.preview_image(partial["preview"]) is None  # ragged
    assert dashboard.preview_image(None) is None and dashboard.preview_image({"values": "x"}) is None
    image = dashboard.preview_image(views[0]["preview"])
    assert image.shape == (64, 96) and image.dtype == np.uint8 and image[5, 9] == 255
    assert len(dashboard.jobs({**records(1e9), "gone": None})) == 4
    assert dashboard.jobs("nonsense") == [] and dashboard.headline_job([]) is None
    assert NOTHING in dashboard.headline_html(None, 0)
    view = dashboard.job_view("x", {"out": "<img src=x onerror=alert(1)>", "eta_seconds": float("nan"), "rate": -3})
    assert "<img" not in dashboard.headline_html(view, 0) and view["rate"] == 0
    stale = dashboard.job_view("s", {"state": "running", "updated": 1000.0})
    assert "has the scan stopped?" in dashboard.headline_html(stale, 1000.0 + dashboard.STALE_SECONDS + 1)
    assert "has the scan stopped?" not in dashboard.headline_html(stale, 1010.0)
    assert [dashboard.duration(s) for s in (None, 5, 109, 7300)] == ["–", "5s", "1m 49s", "2h 01m"]
    assert page_url("http://h:8787/status") == "http://h:8787/hotpixels"
