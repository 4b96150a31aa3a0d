"""Walk away from a scan: detached jobs, `hotpixels status` and `cancel`, the task stream's step
names, and Dask's performance report. Real clusters: `dask scheduler` and `dask worker`
processes on 127.0.0.1, and a LocalCluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, get_task_stream

from pipeline import Config, read_stats, scan
from pipeline.state.status import STATUS_NAME, JobStatus, write_status
from tests.conftest import start_cluster, stop, wait_for, write_stack

REPO = Path(__file__).resolve().parents[2]
QUIET = {"progress": False, "log": lambda m: None}


def hotpixels(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def photos(folder: Path, n: int) -> np.ndarray:
    stack = np.random.default_rng(5).integers(0, 256, (n, 120, 160, 3), dtype=np.uint8)
    write_stack(folder, stack)
    return stack


def assert_exact(out: Path, stack: np.ndarray) -> None:
    stats, _ = read_stats(out)
    assert stats.n == len(stack)
    np.testing.assert_allclose(stats.mean[0], stack.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.var[0], stack.astype(np.float64).var(0), rtol=1e-12)


def test_the_task_stream_names_each_step_and_the_performance_report_is_written(local_client, tmp_path):
    stack = photos(tmp_path / "in", 12)
    config = Config()
    config.scan.batch_size = 2
    with get_task_stream(local_client) as stream:
        scan([str(tmp_path / "in")], tmp_path / "out", config, client=local_client,
             performance_report=tmp_path / "dask-report.html", **QUIET)
    names = {str(t["key"] if isinstance(t["key"], str) else t["key"][0]).rsplit("-", 1)[0] for t in stream.data}
    for step in ("discover-headers", "read-and-accumulate", "convert-and-merge", "fold-into-total-and-write",
                 "detect-measure", "detect-score"):
        assert any(n.startswith(step) for n in names), (step, sorted(names))
    assert "Dask Performance Report" in (tmp_path / "dask-report.html").read_text()
    status = json.loads((tmp_path / "out" / STATUS_NAME).read_text())
    assert status["state"] == "done" and status["files_done"] == 12 and status["files_total"] == 12
    assert status["preview"]["width"] > 0 and len(status["preview"]["values"]) == status["preview"]["height"]
    assert_exact(tmp_path / "out", stack)


def test_the_cli_writes_the_performance_report_of_its_own_cluster(tmp_path):
    # the CLI's client is nobody's default, and Dask's report asks for the current client
    # (red before: "No global client found and no address provided", and no scan)
    stack = photos(tmp_path / "in", 6)
    report = tmp_path / "dask-report.html"
    done = hotpixels("scan", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "1",
                     "--no-progress", "--performance-report", str(report))
    assert done.returncode == 0, done.stderr
    assert "Dask Performance Report" in report.read_text() and f"wrote Dask's performance report to {report}" in done.stdout
    assert_exact(tmp_path / "out", stack)


def test_status_of_a_scan_whose_process_died(tmp_path):
    write_status(tmp_path, JobStatus(job="abc", out=str(tmp_path), files_total=10, files_done=4))
    done = hotpixels("status", str(tmp_path))
    assert done.returncode == 1 and done.stdout.startswith("stopped: the scan abc is no longer running")
    assert "after 4 of 10 files" in done.stdout
    assert hotpixels("status", str(tmp_path / "nothing")).returncode == 2


@pytest.mark.slow
def test_a_detached_scan_runs_on_without_its_client_is_cancelled_and_resumed(tmp_path):
    stack = photos(tmp_path / "in", 240)
    (tmp_path / "c.yaml").write_text("scan:\n  batch_size: 2\n  checkpoint_files: 4\n")
    address, procs = start_cluster(workers=2)
    out = tmp_path / "out"
    cmd = ["scan", str(tmp_path / "in"), "--out", str(out), "--config", str(tmp_path / "c.yaml"),
           "--scheduler", address, "--detach"]
    try:
        began = time.monotonic()
        submitted = hotpixels(*cmd)
        assert submitted.returncode == 0, submitted.stderr
        assert time.monotonic() - began < 30
        assert "submitted scan" in submitted.stdout and f"hotpixels status {out}" in submitted.stdout
        assert wait_for(lambda: hotpixels("status", str(out)).stdout.startswith("running:"), timeout=60)
        assert wait_for(lambda: (json.loads((out / STATUS_NAME).read_text())["segments_done"] >= 3), timeout=60)
        cancelled = hotpixels("cancel", str(out))
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        assert "cancelled: scan" in cancelled.stdout and "run the same command again to resume" in cancelled.stdout
        status = hotpixels("status", str(out))
        assert status.returncode == 1 and status.stdout.startswith("cancelled:")
        assert not (out / "stats.zarr").exists()
        again = hotpixels(*cmd)
        assert again.returncode == 0
        assert wait_for(lambda: hotpixels("status", str(out)).stdout.startswith("done:"), timeout=240)
        assert "resuming:" in (out / "scan.log").read_text()
    finally:
        stop(procs)
    assert_exact(out, stack)


@pytest.mark.slow
def test_a_new_driver_takes_over_when_the_drivers_worker_dies(tmp_path):
    stack = photos(tmp_path / "in", 240)
    (tmp_path / "c.yaml").write_text("scan:\n  batch_size: 2\n  checkpoint_files: 4\n")
    address, procs = start_cluster(workers=2)
    out = tmp_path / "out"
    try:
        assert hotpixels("scan", str(tmp_path / "in"), "--out", str(out), "--config", str(tmp_path / "c.yaml"),
                         "--scheduler", address, "--detach").returncode == 0
        assert wait_for(lambda: (out / STATUS_NAME).exists()
                        and json.loads((out / STATUS_NAME).read_text())["segments_done"] >= 3, timeout=60)
        with Client(address, timeout="10s") as client:
            holder = next(w for w, keys in client.processing().items()
                          if any(str(k).startswith("hotpixels-driver-") for k in keys))
            os.kill(client.run(os.getpid, workers=[holder])[holder], signal.SIGKILL)
        assert wait_for(lambda: hotpixels("status", str(out)).stdout.startswith("done:"), timeout=300)
    finally:
        stop(procs)
    log = (out / "scan.log").read_text()
    assert log.count("detached scan") == 2 and "resuming:" in log
    assert_exact(out, stack)
