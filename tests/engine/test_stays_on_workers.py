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
    sensor 4 times larger costs its client under 1 byte more per added value, where gathering
    the statistics took 50 or more."""
    root, hot = big_darks
    larger = tmp_path / "larger"
    _darks(larger, 2400, 3200, HOT)
    scan([str(root)], tmp_path / "warm", Config(), client=local_client, **QUIET)  # imports, kernels, caches
    small = _client_peak(root, tmp_path / "small", local_client)
    large = _client_peak(larger, tmp_path / "large", local_client)
    added = 2400 * 3200 - 1200 * 1600
    assert large - small < added, f"{(large - small) / added:.1f} bytes per added sensor value on the client"
    for out in ("small", "large"):
        found = {(d.y, d.x): d.kind for d in read_csv(tmp_path / out / "defects.csv")}
        assert all(found.get(p) == "hot" for p in hot)
        assert (tmp_path / out / "report.html").stat().st_size > 100_000


@pytest.mark.slow
def test_a_worker_killed_during_detection_loses_nothing(big_darks, tmp_path):
    """A worker process is killed (SIGKILL) while the bands are measured and scored; its nanny
    starts another, the lost bands are measured again, and the defects are those of a scan
    that nobody disturbed."""
    from distributed import Client, LocalCluster

    root, _ = big_darks
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        scan([str(root)], tmp_path / "calm", Config(), client=client, **QUIET)
        done: list = []
        worker = threading.Thread(target=lambda: done.append(scan([str(root)], tmp_path / "hit", Config(),
                                                                   client=client, **QUIET)), daemon=True)
        worker.start()
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and worker.is_alive() and time.monotonic() < deadline:
            for address, keys in client.processing().items():
                if any(str(k).startswith(("measure_task", "score_task")) for k in keys):
                    pid = client.run(os.getpid, workers=[address])[address]
                    os.kill(pid, signal.SIGKILL)
                    killed = address
                    break
            time.sleep(0.01)
        worker.join(180)
        assert killed is not None, "detection ended before a worker could be killed"
        assert done, "the scan did not finish after the worker was killed"
    assert _defects(tmp_path / "hit") == _defects(tmp_path / "calm")
