"""`--out s3://...`: the workers write stats.zarr and the checkpoints into an object store, the
client writes the rest there, and the folder keeps every guarantee a local one gives (one
scan at a time, resume, merge, a whole stats.zarr whatever the moment of a crash).

The store is a real S3 server on 127.0.0.1 (moto's), reached through s3fs as a user's AWS
bucket is: the endpoint comes from fsspec's own configuration (``FSSPEC_S3_ENDPOINT_URL``), which
the scheduler's and the workers' processes inherit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from pipeline import Config, read_stats, scan
from pipeline.state import lock, place
from pipeline.state.checkpoint import CHECKPOINT_DIR, Checkpoints
from pipeline.state.store import STATS_NAME, SWAP_NAME, finish_swap

from ..conftest import BIN, start_cluster, stop, wait_for, write_stack

QUIET = {"progress": False, "log": lambda m: None}
HOTPIXELS = str(BIN / "hotpixels")
BUCKET = "hotpixels-results"


@pytest.fixture(scope="module")
def s3():
    """An S3 server on loopback and the settings that reach it, for this process and its children."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import fsspec

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    settings = {"AWS_ACCESS_KEY_ID": "hotpixels", "AWS_SECRET_ACCESS_KEY": "hotpixels",
                "AWS_DEFAULT_REGION": "us-east-1", "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}"}
    before = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    conf_before = dict(fsspec.config.conf.get("s3", {}))
    fsspec.config.conf["s3"] = {**conf_before, "endpoint_url": settings["FSSPEC_S3_ENDPOINT_URL"]}
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(BUCKET)
    try:
        yield fs
    finally:
        fsspec.config.conf["s3"] = conf_before
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture(scope="module")
def cluster(s3):
    """`dask scheduler` and two `dask worker` processes that reach the S3 server as the client does."""
    address, procs = start_cluster(workers=2)
    from distributed import Client

    try:
        with Client(address, timeout="30s") as client:
            yield client
    finally:
        stop(procs)


@pytest.fixture(scope="module")
def darks(tmp_path_factory):
    """12 16-bit darks of a 96 x 128 monochrome sensor with four hot sensels, one on the border."""
    root = tmp_path_factory.mktemp("darks")
    rng = np.random.default_rng(5)
    stack = rng.normal(600, 8, (12, 96, 128))
    for y, x in [(10, 20), (50, 100), (0, 64), (80, 3)]:
        stack[:, y, x] += 500
    stack = np.clip(np.rint(stack), 0, 65535).astype(np.uint16)
    write_stack(root, stack)
    return root, stack


def _small_segments() -> Config:
    c = Config()
    c.scan.batch_size = 2
    c.scan.checkpoint_files = 4
    c.scan.tile_values = 3000  # several row tiles, each written by a worker
    return c


def _listing(fs, url: str) -> set[str]:
    root = url.split("://", 1)[1]
    return {p[len(root) + 1:] for p in fs.find(root, withdirs=True)}


def _arrays(group) -> dict[str, np.ndarray]:
    return {name: group[name][...] for name in group.array_keys()}


@pytest.mark.slow
def test_a_scan_into_s3_writes_what_a_scan_into_a_folder_writes(s3, cluster, darks, tmp_path):
    import zarr

    root, stack = darks
    url = f"s3://{BUCKET}/same"
    said: list[str] = []
    scan([str(root)], tmp_path / "local", _small_segments(), client=cluster, progress=False, log=lambda m: None)
    scan([str(root)], url, _small_segments(), client=cluster, progress=False, log=said.append)
    assert not any("cannot write" in line for line in said)  # the workers wrote the statistics

    mine, theirs = zarr.open_group(f"{url}/{STATS_NAME}", mode="r"), zarr.open_group(str(tmp_path / "local" / STATS_NAME))
    assert set(mine.array_keys()) == set(theirs.array_keys())
    for name, values in _arrays(theirs).items():
        np.testing.assert_array_equal(mine[name][...], values, err_msg=name)
    for key in ("n_images", "shape", "manifest", "hot_set", "stack_kind"):
        assert mine.attrs[key] == theirs.attrs[key], key
    stats, _ = read_stats(url)
    np.testing.assert_allclose(stats.mean[0], stack.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.var[0], stack.astype(np.float64).var(0), rtol=1e-10)

    for name in ("defects.csv", "files.csv", "dcraw.badpixels", "siril.lst"):
        remote = s3.cat(f"{BUCKET}/same/{name}")
        local = (tmp_path / "local" / name).read_bytes()
        if name == "files.csv":
            assert remote.count(b"\n") == local.count(b"\n")
        else:
            assert remote == local, name
    defects = s3.cat(f"{BUCKET}/same/defects.csv").decode()
    for y, x in [(10, 20), (50, 100), (0, 64), (80, 3)]:
        assert f"\n{x},{y},0,hot," in defects
    assert b"<html" in s3.cat(f"{BUCKET}/same/report.html")[:2000].lower()
    status = json.loads(s3.cat(f"{BUCKET}/same/.hotpixels-status.json"))
    assert status["state"] == "done"
    # nothing of the work is left: no partial stats, no pending swap, no checkpoints, no lock
    left = _listing(s3, url)
    assert not [p for p in left if p.startswith((".stats.zarr.", CHECKPOINT_DIR, lock.LOCK_NAME, ".hotpixels-probe"))]

    # `hotpixels fix --map` takes the bucket's map as it takes the folder's: the same copies
    from pipeline.fix.run import fix

    for name, where in (("from-s3", url), ("from-folder", tmp_path / "local")):
        rows = fix([str(root)], where, tmp_path / name, log=lambda m: None)
        assert [r.status for r in rows] == ["fixed"] * len(stack)
    copies = sorted((tmp_path / "from-folder").glob("*.png"))
    assert len(copies) == len(stack)
    for copy in copies:
        assert (tmp_path / "from-s3" / copy.name).read_bytes() == copy.read_bytes(), copy.name


@pytest.mark.slow
def test_merge_into_s3_counts_every_file_once(s3, cluster, darks, tmp_path):
    root, stack = darks
    url = f"s3://{BUCKET}/merged"
    files = sorted(str(p) for p in root.iterdir())
    scan(files[:5], url, _small_segments(), client=cluster, **QUIET)
    result = scan(files, url, _small_segments(), client=cluster, merge=True, **QUIET)
    assert sum(s.used for s in result.statuses) == len(files) - 5
    stats, _ = read_stats(url)
    assert stats.n == len(stack)
    np.testing.assert_allclose(stats.mean[0], stack.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.var[0], stack.astype(np.float64).var(0), rtol=1e-10)


def test_an_s3_folder_is_held_by_one_scan_at_a_time(s3, monkeypatch):
    url = f"s3://{BUCKET}/held"
    with lock.hold(url, "hotpixels scan"):
        with pytest.raises(lock.OutputLocked, match="in use by `hotpixels scan`"):
            with lock.hold(url, "hotpixels scan --merge"):
                pass
        assert lock.live_holder(url)["command"] == "hotpixels scan"
    assert lock.live_holder(url) is None
    assert not s3.exists(f"{BUCKET}/held/{lock.LOCK_NAME}")

    # a lock left by a scan on another machine, untouched for longer than STALE_AFTER, is taken over
    left = {"host": "elsewhere", "pid": 1, "command": "hotpixels scan", "started": time.time() - 600, "token": "x"}
    s3.pipe_file(f"{BUCKET}/held/{lock.LOCK_NAME}", json.dumps(left).encode())
    with pytest.raises(lock.OutputLocked):
        lock.check_free(url)
    monkeypatch.setattr(lock, "STALE_AFTER", 0.5)
    time.sleep(1.0)
    said: list[str] = []
    with lock.hold(url, "hotpixels scan", said.append):
        assert lock.live_holder(url)["host"] != "elsewhere"
    assert said and said[0].startswith("taking over") and "no longer running" in said[0]


@pytest.mark.slow
def test_a_copy_into_place_cut_short_leaves_a_whole_stats_zarr(s3, cluster, darks):
    """An object store has no rename: the new stats.zarr is copied into place after a small file
    names it. A crash halfway through that copy leaves a stats.zarr with only some of its
    objects; readers read the whole new one the file names, and the next scan finishes the copy."""
    root, stack = darks
    url = f"s3://{BUCKET}/cut"
    scan([str(root)], url, _small_segments(), client=cluster, **QUIET)
    whole = f"{BUCKET}/cut/.{STATS_NAME}.partial-0123456789abcdef"
    s3.copy(f"{BUCKET}/cut/{STATS_NAME}", whole, recursive=True)  # the new stats, whole, where they were built
    s3.pipe_file(f"{BUCKET}/cut/{SWAP_NAME}", whole.rsplit("/", 1)[1].encode())
    for name in s3.find(f"{BUCKET}/cut/{STATS_NAME}"):  # the crash: half of the old objects gone
        if "/m2/" in name or name.endswith("zarr.json"):
            s3.rm(name)
    stats, _ = read_stats(url)
    np.testing.assert_allclose(stats.var[0], stack.astype(np.float64).var(0), rtol=1e-10)

    finish_swap(url)  # what the next scan into the folder does first, under its lock
    assert not s3.exists(f"{BUCKET}/cut/{SWAP_NAME}") and not s3.exists(whole)
    stats, _ = read_stats(url)
    np.testing.assert_allclose(stats.var[0], stack.astype(np.float64).var(0), rtol=1e-10)


@pytest.mark.slow
def test_a_killed_scan_into_s3_resumes_from_its_checkpoints_there(s3, tmp_path):
    stack = np.random.default_rng(3).integers(0, 256, (60, 80, 60, 3), dtype=np.uint8)
    write_stack(tmp_path / "in", stack)
    (tmp_path / "c.yaml").write_text("scan:\n  batch_size: 2\n  checkpoint_files: 4\n")
    url = f"s3://{BUCKET}/killed"
    cmd = [HOTPIXELS, "scan", str(tmp_path / "in"), "--out", url, "--config", str(tmp_path / "c.yaml"),
           "--workers", "1", "--no-progress"]
    out = place.folder(url)

    def saved() -> int:
        runs = [p.name for p in (out / CHECKPOINT_DIR).iterdir()] if (out / CHECKPOINT_DIR).exists() else []
        return sum(len(Checkpoints(out, run).segments()) for run in runs)

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    assert wait_for(lambda: saved() >= 3 or proc.poll() is not None, timeout=120, interval=0.05)
    assert proc.poll() is None, "the scan finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not s3.exists(f"{BUCKET}/killed/{STATS_NAME}")
    done_before = saved()
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    line = next(x for x in resumed.stdout.splitlines() if x.startswith("resuming:"))
    assert "of 60 files" in line and int(line.split()[1]) >= done_before
    stats, _ = read_stats(url)
    assert stats.n == 60
    np.testing.assert_allclose(stats.mean[0], stack.mean(0), rtol=1e-12)
    assert not s3.exists(f"{BUCKET}/killed/{CHECKPOINT_DIR}")

    status = subprocess.run([HOTPIXELS, "status", url], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "done" in status.stdout, status.stdout + status.stderr
    again = subprocess.run([HOTPIXELS, "detect", url], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"wrote {url}/defects.csv" in again.stdout


def test_a_bucket_that_is_not_there_is_named_and_never_created(s3, darks):
    root, _ = darks
    got = subprocess.run([HOTPIXELS, "scan", str(root), "--out", "s3://no-such-bucket/run", "--no-progress"],
                         capture_output=True, text=True, timeout=120)
    assert got.returncode != 0
    assert "there is no bucket 'no-such-bucket'" in got.stderr and "Traceback" not in got.stderr, got.stderr
    assert not s3.exists("no-such-bucket")
