"""The sensor never gathers on the client: what a scan's client allocates stays far below one
float64 plane of the sensor, and a worker killed during detection loses nothing."""

from __future__ import annotations

import os
import signal
import threading
import time
import tracemalloc

import numpy as np
import pytest

from pipeline import Config, scan
from pipeline.defect import read_csv

from ..conftest import write_stack

QUIET = {"progress": False, "log": lambda m: None}


def _darks(root, height: int, width: int, hot: list[tuple[int, int]]) -> None:
    """8 16-bit darks of a monochrome sensor, with hot sensels."""
    rng = np.random.default_rng(3)
    stack = rng.normal(600, 8, (8, height, width))
    for y, x in hot:
        stack[:, y, x] += 400
    write_stack(root, np.clip(np.rint(stack), 0, 65535).astype(np.uint16))


HOT = [(100, 200), (700, 1500), (1150, 30), (5, 5)]


@pytest.fixture(scope="module")
def big_darks(tmp_path_factory):
    """A 1600 x 1200 sensor (1.9 M values)."""
    root = tmp_path_factory.mktemp("big")
    _darks(root, 1200, 1600, HOT)
    return root, HOT


def _defects(out) -> list[tuple]:
    return [(d.x, d.y, d.kind, round(d.score, 6)) for d in read_csv(out / "defects.csv")]


def _client_peak(root, out, client) -> int:
    tracemalloc.start()
    try:
        scan([str(root)], out, Config(), client=client, **QUIET)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_the_client_holds_no_sensor_sized_array(big_darks, local_client, tmp_path):
    """The statistics (36+ bytes per value) and the score maps (20) stay on the workers. What
    the client holds is bounded whatever the sensor (the maps' samples for the tails and the
    histograms, at most about a million values each; the candidates; the reduced maps): a
    sensor 2.5 times larger costs its client under 1 byte more per added value, where gathering
    the statistics took 50 or more."""
    root, hot = big_darks
    larger = tmp_path / "larger"
    _darks(larger, 2000, 2400, HOT)
    scan([str(root)], tmp_path / "warm", Config(), client=local_client, **QUIET)  # imports, kernels, caches
    small = _client_peak(root, tmp_path / "small", local_client)
    large = _client_peak(larger, tmp_path / "large", local_client)
    added = 2000 * 2400 - 1200 * 1600
    assert large - small < added, f"{(large - small) / added:.1f} bytes per added sensor value on the client"
    for out in ("small", "large"):
        found = {(d.y, d.x): d.kind for d in read_csv(tmp_path / out / "defects.csv")}
        assert all(found.get(p) == "hot" for p in hot)
        assert (tmp_path / out / "report.html").stat().st_size > 100_000


@pytest.mark.slow
@pytest.mark.parametrize("during", [("detect-measure", "detect-score"), ("fold-into-total",)],
                         ids=["detection", "writing"])
def test_a_worker_killed_during_detection_or_writing_loses_nothing(big_darks, tmp_path, during):
    """A worker process is killed (SIGKILL) while the bands are measured and scored, or while
    the tiles are folded into stats.zarr; its nanny starts another, what it held is computed
    again, and the statistics and defects are those of a scan that nobody disturbed."""
    from distributed import Client, LocalCluster

    from pipeline.state.store import read_stats

    root, _ = big_darks
    config = Config()
    config.scan.tile_values = 40_000  # 48 tiles to fold
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        scan([str(root)], tmp_path / "calm", config, client=client, **QUIET)
        done: list = []
        worker = threading.Thread(target=lambda: done.append(scan([str(root)], tmp_path / "hit", config,
                                                                   client=client, **QUIET)), daemon=True)
        worker.start()
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and worker.is_alive() and time.monotonic() < deadline:
            for address, keys in client.processing().items():
                if any(str(k).startswith(during) for k in keys):
                    pid = client.run(os.getpid, workers=[address])[address]
                    os.kill(pid, signal.SIGKILL)
                    killed = address
                    break
            time.sleep(0.01)
        worker.join(180)
        assert killed is not None, f"no {during[0]} task ran long enough to be killed"
        assert done, "the scan did not finish after the worker was killed"
    assert _defects(tmp_path / "hit") == _defects(tmp_path / "calm")
    hit, calm = read_stats(tmp_path / "hit")[0], read_stats(tmp_path / "calm")[0]
    np.testing.assert_array_equal(hit.mean, calm.mean)
    np.testing.assert_array_equal(hit.m2, calm.m2)
    np.testing.assert_array_equal(hit.counts, calm.counts)


def test_workers_that_cannot_write_the_output_leave_it_to_the_client(big_darks, tmp_path, monkeypatch):
    """Workers that cannot create files in --out (another machine's folder): the scan says so,
    the client writes the tiles as they arrive and detects band by band itself, and the
    results are those of workers that could."""
    from distributed import Client, LocalCluster

    import pipeline.state.atomic as atomic

    root, _ = big_darks
    said: list[str] = []
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        scan([str(root)], tmp_path / "shared", Config(), client=client, **QUIET)
        monkeypatch.setattr(atomic, "writable", lambda folder: False)  # the workers run in this process
        scan([str(root)], tmp_path / "alone", Config(), client=client, progress=False, log=said.append)
    assert any("the workers cannot write" in line for line in said)
    assert _defects(tmp_path / "alone") == _defects(tmp_path / "shared")
    from pipeline.state.store import read_stats

    a, b = read_stats(tmp_path / "alone")[0], read_stats(tmp_path / "shared")[0]
    np.testing.assert_array_equal(a.m2, b.m2)
    np.testing.assert_array_equal(a.counts, b.counts)
