"""End to end: real files, real clusters, the saved contract and the command line."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from pipeline import Config, read_stats, scan
from pipeline.state.files import read_files_csv
from pipeline.stats import stats_of_stack

from .conftest import BIN, run_or_dump, saved_attrs, send, spawned_workers, write_stack

HOTPIXELS = str(BIN / "hotpixels")


@pytest.fixture(scope="module")
def rgb_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("rgb")
    stack = np.random.default_rng(7).integers(0, 256, (19, 21, 17, 3), dtype=np.uint8)
    write_stack(root / "a", stack[:10])
    write_stack(root / "b" / "deeper", stack[10:], prefix="more")
    (root / "notes.txt").write_text("not an image")
    return root, stack


def small_config(batch_size=4, tile_values=200):
    config = Config()
    config.scan.batch_size = batch_size
    config.scan.tile_values = tile_values  # several row tiles even on tiny frames
    return config


def test_scan_local_cluster_writes_the_contract(rgb_set, local_client, tmp_path):
    root, stack = rgb_set
    result = scan([str(root)], tmp_path / "out", small_config(), client=local_client, progress=False, log=lambda m: None)
    group = zarr.open_group(str(tmp_path / "out" / "stats.zarr"), mode="r")
    for name in ("mean", "m2", "residual_mean", "residual_m2"):
        assert group[name].dtype == np.float64 and group[name].shape == (21, 17, 3)
    assert "var" not in group and "residual_var" not in group  # m2 / n_images: not written
    assert group.attrs["n_images"] == 19 and group.attrs["shape"] == [21, 17, 3] and group.attrs["dtype"] == "uint8"
    ref = stack.astype(np.float64)
    np.testing.assert_allclose(group["mean"][...], ref.mean(0), rtol=1e-12)
    np.testing.assert_allclose(group["m2"][...], ref.var(0) * 19, rtol=1e-12)
    np.testing.assert_allclose(group["m2"][...] / group.attrs["n_images"], ref.var(0), rtol=1e-12)
    files = read_files_csv(tmp_path / "out")
    assert len(files) == 19 and all(s == "used" for _, s, _ in files)  # notes.txt is not an image: not listed
    stats, _ = read_stats(tmp_path / "out")
    attrs = saved_attrs(tmp_path / "out")
    assert stats.n == 19 and attrs["dtype"] == "uint8"
    assert result.stats.n == 19
    for i, name in enumerate(("above_count", "below_count")):
        assert group[name].dtype == np.uint16
        np.testing.assert_array_equal(group[name][...], stats_of_stack(stack).counts[i])


def test_scan_without_range_counts(rgb_set, local_client, tmp_path):
    """scan.range_counts off: the same moments, no count arrays, and detection still runs."""
    root, stack = rgb_set
    config = small_config()
    config.scan.range_counts = False
    result = scan([str(root)], tmp_path / "out", config, client=local_client, progress=False, log=lambda m: None)
    stats, _ = read_stats(tmp_path / "out")
    attrs = saved_attrs(tmp_path / "out")
    assert stats.counts is None and result.stats.counts is None and attrs["counts"] == []
    np.testing.assert_allclose(stats.var[0], stack.astype(np.float64).var(0), rtol=1e-12)
    assert result.detection is not None and (tmp_path / "out" / "defects.csv").exists()


def test_uint16_grayscale_odd_size_via_glob(local_client, tmp_path):
    stack = np.random.default_rng(2).integers(0, 65536, (7, 13, 11), dtype=np.uint16)
    write_stack(tmp_path / "in", stack, ext="tif")
    result = scan([str(tmp_path / "in" / "*.tif")], tmp_path / "out", small_config(batch_size=3, tile_values=30),
                  client=local_client, progress=False, log=lambda m: None)
    np.testing.assert_allclose(result.stats.mean[0], stack.mean(0), rtol=1e-12)
    np.testing.assert_allclose(result.stats.var[0], stack.astype(np.float64).var(0), rtol=1e-12)


def test_single_image(local_client, tmp_path):
    frame = np.random.default_rng(0).integers(0, 256, (1, 5, 3, 3), dtype=np.uint8)
    paths = write_stack(tmp_path / "in", frame)
    result = scan([str(paths[0])], tmp_path / "out", small_config(), client=local_client, progress=False, log=lambda m: None)
    assert result.stats.n == 1
    np.testing.assert_array_equal(result.stats.mean[0], frame[0])
    assert np.all(result.stats.var[0] == 0)


def test_other_shapes_and_bad_files_are_skipped_with_reasons(rgb_set, local_client, tmp_path):
    root, stack = rgb_set
    extra = tmp_path / "extra"
    write_stack(extra, np.zeros((2, 17, 21, 3), np.uint8), prefix="rotated")  # the same sensor turned
    write_stack(extra, np.zeros((1, 21, 17), np.uint8), prefix="gray")
    (extra / "truncated.png").write_bytes((root / "a" / "frame_0000.png").read_bytes()[:200])
    (extra / "empty.jpg").write_bytes(b"")
    result = scan([str(root), str(extra), str(tmp_path / "missing.png")], tmp_path / "out", small_config(),
                  client=local_client, progress=False, log=lambda m: None)
    np.testing.assert_allclose(result.stats.var[0], stack.astype(np.float64).var(0), rtol=1e-12)
    reasons = {Path(p).name: r for p, s, r in read_files_csv(tmp_path / "out") if s == "skipped"}
    assert set(reasons) == {"rotated_0000.png", "rotated_0001.png", "gray_0000.png", "truncated.png", "empty.jpg", "missing.png"}
    assert reasons["rotated_0000.png"].startswith("different sensor or layout: 17x21x3 uint8")
    assert reasons["empty.jpg"] == "empty file"
    assert reasons["missing.png"] == "no such file or directory"
    assert reasons["truncated.png"].startswith("cannot decode")


@pytest.mark.slow
def test_real_cluster_gives_identical_results(rgb_set, local_client, real_cluster, tmp_path):
    root, _ = rgb_set
    local = scan([str(root)], tmp_path / "local", small_config(), client=local_client, progress=False, log=lambda m: None)
    proc = subprocess.run([HOTPIXELS, "scan", str(root), "--out", str(tmp_path / "remote"), "--scheduler", real_cluster,
                           "--batch-size", "4"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"connected to {real_cluster}" in proc.stdout
    remote, _ = read_stats(tmp_path / "remote")
    assert remote.n == local.stats.n == 19
    # different tiling and batching change only float rounding; same settings match to the bit
    np.testing.assert_allclose(remote.mean, local.stats.mean, rtol=1e-12)
    np.testing.assert_allclose(remote.var, local.stats.var, rtol=1e-12)


def _kernels_loaded(address_or_client) -> bool:
    """Whether every worker has loaded the kernels (the preload's work) within 60 s, without a task."""
    from distributed import Client

    client = address_or_client if isinstance(address_or_client, Client) else Client(address_or_client, timeout="30s")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            loaded = client.run(lambda: "pipeline.stats.kernels" in sys.modules and "pipeline.engine.graph" in sys.modules)
            if loaded and all(loaded.values()):
                return True
            time.sleep(0.2)
        return False
    finally:
        if client is not address_or_client:
            client.close()


@pytest.mark.slow
def test_workers_load_the_kernels_before_their_first_task(real_cluster, local_client):
    """`dask worker --preload pipeline.worker_setup` (and every local cluster) loads the package
    and numba's kernels in the background, instead of in the first read task."""
    from distributed import Client

    from pipeline.config import ClusterConfig
    from pipeline.engine.cluster import open_client

    assert _kernels_loaded(real_cluster)
    # an earlier local cluster (``local_client``) left distributed's 64 kB trim in this process's
    # environment, which a nanny takes over its setting: the scan's cluster gives its own anyway
    before = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    with open_client(ClusterConfig(workers=1, dashboard_address="127.0.0.1:0"), log=lambda m: None) as client:
        assert _kernels_loaded(client)
        # and their allocator keeps what a task frees for the next one (``cluster.WORKER_MALLOC``)
        seen = client.run(lambda: {k: os.environ.get(k) for k in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_",
                                                                  "MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")})
        assert list(seen.values()) == [{"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "268435456",
                                        "MALLOC_TRIM_THRESHOLD_": "268435456", "OMP_NUM_THREADS": "1"}]
        # and they keep a heartbeat that met the command's scheduler gone out of its output
        assert all("quiet_lost_heartbeat" in names for names in _worker_log_filters(client))
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") == before  # this process's own, as it was
    assert os.environ.get("HOTPIXELS_LOCAL_WORKER") is None
    # a worker of the user's own cluster logs it: there the scheduler going away means something
    with Client(real_cluster, timeout="30s", set_as_default=False) as theirs:
        filters = _worker_log_filters(theirs)
        assert filters and not any("quiet_lost_heartbeat" in names for names in filters)


def _worker_log_filters(client) -> list[list[str]]:
    """Each worker's filters on distributed's worker log, by name."""
    return list(client.run(lambda: [getattr(f, "__name__", "") for f in logging.getLogger("distributed.worker").filters])
                .values())


def run_cli(*args, timeout=120):
    return run_or_dump([HOTPIXELS, *args], timeout=timeout)


def test_no_usable_image_exits_2_with_one_line(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    for inputs in ([str(tmp_path / "nothing-here")], [str(tmp_path / "in")]):
        proc = run_cli("scan", *inputs, "--out", str(tmp_path / "out"), "--workers", "1")
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hotpixels: error:"), proc.stderr
        assert "Traceback" not in proc.stderr


def test_unreachable_scheduler_fails_fast(tmp_path, rgb_set):
    from .conftest import free_port

    start = time.monotonic()
    proc = run_cli("scan", str(rgb_set[0]), "--out", str(tmp_path / "out"), "--scheduler", f"tcp://127.0.0.1:{free_port()}")
    assert time.monotonic() - start < 20
    assert proc.returncode == 3
    assert "cannot reach the Dask scheduler" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_dashboard_link_is_printed_before_computing(tmp_path):
    """A script reading the log sees the link while the scan is still running."""
    stack = np.random.default_rng(1).integers(0, 256, (60, 64, 48, 3), dtype=np.uint8)
    write_stack(tmp_path / "in", stack)
    proc = subprocess.Popen([HOTPIXELS, "scan", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--batch-size", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    link_line = None
    for line in proc.stdout:
        if "dashboard: http://127.0.0.1:" in line:
            link_line = line
            assert proc.poll() is None  # still running: the line was flushed before the work
            break
    rest, err = proc.communicate(timeout=120)
    assert link_line and proc.returncode == 0, err
    assert "scanned 60 images" in rest
    assert "tasks" in err and "ETA" in err or "100%" in err  # the progress bar went to the terminal


def test_uniform_set_reads_one_header_and_still_catches_odd_files(rgb_set, local_client, tmp_path):
    root, stack = rgb_set
    folder = tmp_path / "in"
    write_stack(folder, stack[:5])
    write_stack(folder, np.zeros((1, 9, 9, 3), np.uint8), prefix="z_odd")  # sorted last: not the template
    config = small_config()
    config.scan.uniform = True
    result = scan([str(folder)], tmp_path / "out", config, client=local_client, progress=False, log=lambda m: None)
    np.testing.assert_allclose(result.stats.var[0], stack[:5].astype(np.float64).var(0), rtol=1e-12)
    reasons = {Path(p).name: r for p, s, r in result.statuses if s == "skipped"}
    assert reasons == {"z_odd_0000.png": "decoded shape 9x9x3 differs from the group's 21x17x3"}


def test_sigusr1_prints_every_thread_s_stack_and_the_scan_goes_on(rgb_set, tmp_path):
    """A scan that seems stuck: `kill -USR1` to it and to its workers prints where each thread
    is, and the scan finishes as it would have."""
    cmd = [HOTPIXELS, "scan", str(rgb_set[0]), "--out", str(tmp_path / "out"), "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("local cluster with 2 workers"):  # the workers are up
            break
    workers = spawned_workers(proc.pid)
    assert len(workers) == 2
    send([proc.pid, *workers], signal.SIGUSR1)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "wrote " in out
    stacks = [block for block in err.split("\n\n") if "most recent call first" in block]
    assert any("pipeline/cli.py" in block for block in stacks), err  # the command's own
    assert any("distributed/worker.py" in block or "distributed/nanny.py" in block
               for block in stacks if "pipeline/cli.py" not in block), err  # a worker's


def test_a_uniform_set_s_frames_take_no_shooting_data_from_the_first(tmp_path, local_client):
    """--uniform reads one header: the other frames' exposures, ISOs and dates are unknown, not the
    first file's (files.csv would have said every frame was shot at its exposure, on its day)."""
    import csv

    from pipeline.synth import synthesize_collection

    truth = synthesize_collection(tmp_path / "in", frames=6, size=(96, 64), fmt="dng", seed=2, defects_per_kind=1)
    config = small_config()
    config.scan.uniform = True
    said: list[str] = []
    scan([str(tmp_path / "in")], tmp_path / "out", config, client=local_client, progress=False, log=said.append)
    with open(tmp_path / "out" / "files.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and all(r["status"] == "used" and r["exposure"] == r["iso"] == r["time"] == "" for r in rows)
    assert any(m.startswith("--uniform: only the first file's header was read") for m in said)
    assert len({f["exposure"] for f in truth["frames_meta"]}) > 1  # they differ: the template's would be wrong
