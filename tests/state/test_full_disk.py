"""A full disk or a read-only --out: one clear line and a non-zero exit, the results already there
whole and unchanged. On a real small file system: a tmpfs mounted by the test where the machine
allows it (root, or a container with CAP_SYS_ADMIN), skipped with the reason where it does not."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from pipeline import read_stats
from tests.conftest import write_stack

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def tmpfs(folder: Path, size: str):
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {(done.stderr or done.stdout).strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def hotpixels(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")
            and ".hotpixels-checkpoints" not in p.parts}


@pytest.mark.slow
def test_a_full_disk_ends_the_scan_in_one_line_and_keeps_the_results(tmp_path):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (6, 20, 24)).astype(np.uint8)
    write_stack(tmp_path / "small", small)
    write_stack(tmp_path / "big", rng.integers(0, 255, (6, 480, 640, 3)).astype(np.uint8))
    with tmpfs(tmp_path / "fs", "6m") as fs:
        first = hotpixels("scan", str(tmp_path / "small"), "--out", str(fs / "out"), "--workers", "1", "--no-progress")
        assert first.returncode == 0, first.stderr
        before = snapshot(fs / "out")
        assert "stats.zarr/zarr.json" in before and "defects.csv" in before
        full = hotpixels("scan", str(tmp_path / "big"), "--out", str(fs / "out"), "--workers", "1", "--no-progress")
        assert full.returncode == 5
        lines = full.stderr.strip().splitlines()
        assert len(lines) == 1, full.stderr
        assert lines[0].startswith("hotpixels: error: cannot write ") and "the disk is full" in lines[0]
        assert f"what was already in {fs / 'out'} is unchanged" in lines[0]
        assert snapshot(fs / "out") == before
        stats, _ = read_stats(fs / "out")
        np.testing.assert_allclose(stats.mean[0], small.mean(0), rtol=1e-12)


@pytest.mark.slow
def test_a_read_only_output_is_refused_in_one_line(tmp_path):
    rng = np.random.default_rng(1)
    write_stack(tmp_path / "in", rng.integers(0, 255, (6, 20, 24)).astype(np.uint8))
    with tmpfs(tmp_path / "fs", "6m") as fs:
        assert hotpixels("scan", str(tmp_path / "in"), "--out", str(fs / "out"), "--workers", "1",
                         "--no-progress").returncode == 0
        before = snapshot(fs / "out")
        remount = subprocess.run(["mount", "-o", "remount,ro", str(fs)], capture_output=True, text=True)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount the tmpfs read-only: {remount.stderr.strip()}")
        for args in (["scan", str(tmp_path / "in"), "--out", str(fs / "out"), "--workers", "1", "--no-progress"],
                     ["detect", str(fs / "out")],
                     ["fix", str(tmp_path / "in"), "--map", str(fs / "out"), "--out", str(fs / "fixed")]):
            done = hotpixels(*args)
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 5 and len(lines) == 1, (args, done.stderr)
            assert "read-only file system" in lines[0], lines[0]
        assert snapshot(fs / "out") == before
