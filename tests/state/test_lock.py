"""One scan per output folder: refused at once while a live process holds it, taken over when
its holder died."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from pipeline.state.lock import LOCK_NAME, STALE_AFTER, OutputLocked, check_free, hold
from tests.conftest import wait_for, write_stack

REPO = Path(__file__).resolve().parents[2]


def test_a_held_folder_is_refused_with_who_holds_it(tmp_path):
    with hold(tmp_path, "hotpixels scan"):
        with pytest.raises(OutputLocked, match=rf"in use by `hotpixels scan` \(pid {os.getpid()} on "):
            with hold(tmp_path, "hotpixels scan --merge"):
                pass
        with pytest.raises(OutputLocked):
            check_free(tmp_path)
        with pytest.raises(OutputLocked):  # a group's folder of an --all-groups scan
            check_free(tmp_path / "Canon-EOS")
    assert not (tmp_path / LOCK_NAME).exists()
    check_free(tmp_path)


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pipeline.state.lock import hold\n"
                               f"with hold({str(tmp_path)!r}, 'hotpixels scan'):\n    print('held', flush=True)\n"
                               "    time.sleep(60)"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(OutputLocked):
        check_free(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    said = []
    with hold(tmp_path, "hotpixels scan", said.append):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert len(said) == 1 and f"pid {holder.pid}" in said[0] and "no longer running" in said[0]


def test_another_hosts_lock_is_stale_only_when_untouched(tmp_path):
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps({"host": "elsewhere-" + socket.gethostname(), "pid": 1, "command": "hotpixels scan",
                                "started": time.time(), "token": "x"}))
    with pytest.raises(OutputLocked, match="on elsewhere-"):
        check_free(tmp_path)
    old = time.time() - STALE_AFTER - 5
    os.utime(lock, (old, old))
    said = []
    with hold(tmp_path, "hotpixels scan", said.append):
        pass
    assert said and "elsewhere-" in said[0]


@pytest.mark.slow
def test_a_second_scan_detect_and_fix_are_refused_while_a_scan_runs(tmp_path):
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 60000, (40, 30, 40)).astype(np.uint16)
    write_stack(tmp_path / "in", stack)
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "pipeline.cli"]
    first = subprocess.Popen([*cli, "scan", str(tmp_path / "in"), "--out", str(out), "--workers", "1",
                              "--no-progress"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: (out / LOCK_NAME).exists(), timeout=60)
    for args in (["scan", str(tmp_path / "in"), "--out", str(out), "--workers", "1", "--no-progress"],
                 ["scan", str(tmp_path / "in"), "--out", str(out), "--merge", "--no-progress"],
                 ["detect", str(out)],
                 ["fix", str(tmp_path / "in"), "--map", str(out), "--out", str(tmp_path / "fixed")]):
        second = subprocess.run([*cli, *args], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert second.returncode == 4, (args, second.stdout, second.stderr)
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"in use by `hotpixels scan` (pid {first.pid}" in lines[0]
    assert first.wait(300) == 0, first.stderr
    assert not (out / LOCK_NAME).exists()
    group = zarr.open_group(str(out / "stats.zarr"), mode="r")
    assert group.attrs["n_images"] == 40
    assert np.allclose(group["mean"][...], stack.mean(axis=0), rtol=0, atol=1e-9)
    assert np.allclose(group["m2"][...] / 40, stack.astype(np.float64).var(axis=0), rtol=1e-12, atol=1e-6)
