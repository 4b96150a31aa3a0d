"""Shared fixtures: real Dask clusters (nothing a user would run is mocked) and image sets."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from distributed import Client, LocalCluster

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def local_client():
    """A LocalCluster with 2 worker processes on loopback, shared by the session."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; yields the address."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("cluster-logs")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", "127.0.0.1:0"],
                              stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT, env=env)]
    for i in range(2):
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                                       "--name", f"w{i}", "--no-dashboard", "--preload", "pipeline.worker_setup"],
                                      stdout=open(logs / f"worker{i}.log", "w"), stderr=subprocess.STDOUT, env=env))
    try:
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (Linux: /proc/PID/task/*/children)."""
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = [int(k) for k in children.read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *descendants(kid)]
    return found


def spawned_workers(pid: int) -> list[int]:
    """The worker processes among ``pid``'s descendants (multiprocessing's spawned children: a
    local cluster's workers), not its helpers (the resource tracker has no SIGUSR1 handler, and
    the signal would end it)."""
    def spawned(child: int) -> bool:
        try:
            return b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            return False

    return [child for child in descendants(pid) if spawned(child)]


def send(pids: list[int], sig: int) -> None:
    """``sig`` to each of ``pids`` that is still there."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def run_or_dump(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True)``; should the command outlive
    ``timeout``, the test fails with every thread's stack of it and of its worker processes
    (SIGUSR1: ``pipeline.thread_dump``), which say what it was waiting for."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        send([proc.pid, *spawned_workers(proc.pid)], signal.SIGUSR1)
        time.sleep(3)
        send([proc.pid, *descendants(proc.pid)][::-1], signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{shlex.join(cmd)} still ran after {timeout:g} s; its stacks (SIGUSR1) and output:\n"
                    f"{err[-40_000:]}\n--- stdout:\n{out[-5_000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def write_stack(folder: Path, stack: np.ndarray, ext: str = "png", prefix: str = "frame") -> list[Path]:
    """Write each frame losslessly; returns the paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(stack):
        path = folder / f"{prefix}_{i:04d}.{ext}"
        iio.imwrite(path, frame)
        paths.append(path)
    return paths


def saved_attrs(out_dir) -> dict:
    """stats.zarr's attrs as a user reads them, with zarr (the file contract, not our reader)."""
    import zarr

    return dict(zarr.open_group(str(Path(out_dir) / "stats.zarr"), mode="r").attrs)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def drop_root_overrides():
    """In the child, before exec: without these capabilities root obeys file permissions like anyone."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def pad_rows_reflect(frames, top: int, bottom: int):
    """Frames with halo rows as the scan once cut its tiles, ``top`` (= ``bottom``) being the
    stride: the row a stride above the first is the one a stride below it, as the kernel's
    in-place reflection (``stats.row_neighbours``) takes it (row -1 -> 1 for stride 1; -1 -> 3
    and -2 -> 2 for a mosaic's 2). The reference it must match."""
    if top == 0 and bottom == 0:
        return frames
    h = frames.shape[1]
    if h == 1:
        width = [(0, 0), (top, bottom)] + [(0, 0)] * (frames.ndim - 2)
        return np.pad(frames, width, mode="edge")

    def clamp(row: int) -> int:
        return min(max(row, 0), h - 1)

    # halo row -i is the neighbour above row top - i; row h - 1 + i the one below row h - 1 + i - bottom
    above = [clamp(c + top if c + top < h else c) for c in (top - i for i in range(1, top + 1))][::-1]
    below = [clamp(c - bottom if c - bottom >= 0 else c) for c in (h - 1 + i - bottom for i in range(1, bottom + 1))]
    return frames[:, above + list(range(h)) + below]


def start_cluster(workers: int = 1, dashboard: str = "127.0.0.1:0") -> tuple[str, list[subprocess.Popen]]:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, each in its own process group."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(BIN / "dask")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address",
                               dashboard], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True, env=env)]
    for i in range(workers):
        procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--name", f"w{i}", "--no-dashboard",
                                       "--host", "127.0.0.1", "--preload", "pipeline.worker_setup"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                      env=env))
    with Client(address, timeout="30s") as client:
        client.wait_for_workers(workers, timeout=60)
    return address, procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
