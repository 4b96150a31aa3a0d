"""Bad files, merges, interruptions and lost workers never cost data or correctness."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from distributed import Client

from pipeline import Config, read_stats, scan
from pipeline.state.checkpoint import CHECKPOINT_DIR
from pipeline.state.files import read_files_csv
from pipeline.stats import stats_of_stack

from .conftest import BIN, drop_root_overrides, saved_attrs, start_cluster, stop, wait_for, write_stack

HOTPIXELS = str(BIN / "hotpixels")
QUIET = {"progress": False, "log": lambda m: None}


def config(batch=2, segment=4):
    c = Config()
    c.scan.batch_size = batch
    c.scan.checkpoint_files = segment
    c.scan.tile_values = 500
    return c


@pytest.fixture(scope="module")
def photo_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    stack = np.random.default_rng(11).integers(0, 256, (24, 15, 12, 3), dtype=np.uint8)
    write_stack(root / "a", stack[:14], prefix="a")
    write_stack(root / "b", stack[14:], prefix="b")
    return root, stack


def assert_stats_equal(stats, stack):
    ref = stack.astype(np.float64)
    assert stats.n == len(stack)
    np.testing.assert_allclose(stats.mean[0], ref.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.var[0], ref.var(0), rtol=1e-12)
    # the range counts add up exactly through batches, partitions, checkpoints, merges and stats.zarr
    np.testing.assert_array_equal(stats.counts, stats_of_stack(stack).counts)


def test_bad_inputs_are_skipped_and_the_rest_stays_exact(photo_sets, local_client, tmp_path):
    root, stack = photo_sets
    bad = tmp_path / "bad"
    bad.mkdir()
    good_bytes = (root / "a" / "a_0000.png").read_bytes()
    (bad / "truncated.png").write_bytes(good_bytes[: len(good_bytes) // 2])
    (bad / "empty.png").write_bytes(b"")
    (bad / "text.jpg").write_text("this is not a jpeg")
    write_stack(bad, np.zeros((1, 15, 12), np.uint8), prefix="gray")  # other channel count
    write_stack(bad, np.zeros((1, 15, 12, 3), np.uint16), prefix="deep", ext="tif")  # other dtype
    result = scan([str(root / "a"), str(bad)], tmp_path / "out", config(), client=local_client, **QUIET)
    assert_stats_equal(result.stats, stack[:14])
    reasons = {Path(p).name: r for p, s, r in read_files_csv(tmp_path / "out") if s == "skipped"}
    assert set(reasons) == {"truncated.png", "empty.png", "text.jpg", "gray_0000.png", "deep_0000.tif"}
    assert all(reasons.values())


def test_a_file_that_breaks_only_when_decoded_is_counted_out(photo_sets, local_client, tmp_path):
    """The header reads fine but the pixels do not: the worker task still succeeds."""
    root, stack = photo_sets
    folder = tmp_path / "in"
    write_stack(folder, stack[:6])
    data = (folder / "frame_0003.png").read_bytes()
    (folder / "frame_0003.png").write_bytes(data[: len(data) - 200])  # header intact, image data cut
    result = scan([str(folder)], tmp_path / "out", config(), client=local_client, **QUIET)
    assert_stats_equal(result.stats, np.delete(stack[:6], 3, axis=0))
    status = {Path(p).name: (s, r) for p, s, r in result.statuses}
    assert status["frame_0003.png"][0] == "skipped" and status["frame_0003.png"][1].startswith("cannot decode")


@pytest.mark.slow
def test_unreadable_file_is_skipped(photo_sets, tmp_path):
    """Permissions are real: as root (CI) the scan runs without root's override capabilities."""
    root, stack = photo_sets
    paths = write_stack(tmp_path / "in", stack[:3])
    paths[1].chmod(0)
    preexec = drop_root_overrides if os.geteuid() == 0 else None
    proc = subprocess.run([HOTPIXELS, "scan", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "1",
                           "--no-progress"], capture_output=True, text=True, timeout=180, preexec_fn=preexec)
    assert proc.returncode == 0, proc.stderr
    statuses = {Path(p).name: (s, r) for p, s, r in read_files_csv(tmp_path / "out")}
    assert statuses[paths[1].name] == ("skipped", "permission denied")
    assert sum(s == "used" for s, _ in statuses.values()) == 2
    assert "1 skipped (1 permission denied; see files.csv)" in proc.stdout


def test_merge_equals_one_scan_and_never_counts_twice(photo_sets, local_client, tmp_path):
    root, stack = photo_sets
    out = tmp_path / "out"
    scan([str(root / "a")], out, config(), client=local_client, **QUIET)
    merged = scan([str(root / "b")], out, config(), client=local_client, merge=True, **QUIET)
    assert_stats_equal(merged.stats, stack)
    stats, _ = read_stats(out)
    attrs = saved_attrs(out)
    assert_stats_equal(stats, stack)
    assert len(attrs["manifest"]["rows"]) == 24
    again = scan([str(root)], out, config(), client=local_client, merge=True, **QUIET)
    assert_stats_equal(again.stats, stack)
    assert sum(1 for s in again.statuses if s[2].startswith("already counted")) == 24


def test_an_older_stats_zarr_with_var_arrays_merges_and_is_written_without_them(photo_sets, local_client,
                                                                               tmp_path):
    """Older scans wrote ``var`` and ``residual_var`` (m2 / n) beside ``m2``. Such a stats.zarr is
    read as before, and a --merge into it writes one without them, equal to numpy."""
    import zarr

    root, stack = photo_sets
    out = tmp_path / "out"
    scan([str(root / "a")], out, config(), client=local_client, **QUIET)
    group = zarr.open_group(str(out / "stats.zarr"), mode="r+")
    for stream in ("", "residual_"):  # as an older scan left them
        m2 = group[f"{stream}m2"]
        old = group.create_array(f"{stream}var", shape=m2.shape, dtype=np.float64, chunks=m2.chunks, compressors=None)
        old[...] = m2[...] / group.attrs["n_images"]
    merged = scan([str(root / "b")], out, config(), client=local_client, merge=True, **QUIET)
    assert_stats_equal(merged.stats, stack)
    assert_stats_equal(read_stats(out)[0], stack)
    names = set(zarr.open_group(str(out / "stats.zarr"), mode="r").array_keys())
    assert {"mean", "m2", "residual_mean", "residual_m2"} <= names and not names & {"var", "residual_var"}


def test_darks_without_exposures_merged_later_keep_the_frame_mean_model(tmp_path, local_client):
    """The real Flea3 TIFF darks carry no exposure: each frame's mean stands in for it. Scanned in
    two halves with --merge, and merged a third time with nothing new, the stats keep that model
    and equal one scan of all 14, model sums included."""
    flea3 = Path(__file__).parent / "fixtures" / "flea3-icx655-darks"
    tifs = sorted(flea3.glob("*.tif"))
    halves = [tmp_path / "first", tmp_path / "second"]
    for half, files in zip(halves, (tifs[::2], tifs[1::2])):
        half.mkdir()
        for f in files:
            shutil.copy(f, half / f.name)
    whole = scan([str(flea3)], tmp_path / "whole", Config(), client=local_client, **QUIET)
    scan([str(halves[0])], tmp_path / "out", Config(), client=local_client, **QUIET)
    for _ in range(2):  # the second time, every frame is already counted
        logged: list[str] = []
        merged = scan([str(halves[1])], tmp_path / "out", Config(), client=local_client, merge=True,
                      progress=False, log=logged.append)
        assert not any("keep no exposure fit" in m for m in logged), logged
        assert saved_attrs(tmp_path / "out")["exposure_source"] == "frame mean"
        assert merged.stats.n == 14
        np.testing.assert_allclose(merged.stats.mean, whole.stats.mean, rtol=1e-12, atol=1e-12)  # Chan's merge
        assert sorted(merged.stats.extra) == sorted(whole.stats.extra) != []
        for key, values in whole.stats.extra.items():
            np.testing.assert_allclose(merged.stats.extra[key], values, rtol=1e-12, atol=1e-9, err_msg=key)


def test_merge_of_another_sensor_is_refused(photo_sets, tmp_path, local_client):
    root, _ = photo_sets
    out = tmp_path / "out"
    scan([str(root / "a")], out, config(), client=local_client, **QUIET)
    write_stack(tmp_path / "other", np.zeros((2, 12, 15, 3), np.uint8))
    before = (out / "stats.zarr" / "zarr.json").read_bytes()
    proc = subprocess.run([HOTPIXELS, "scan", str(tmp_path / "other"), "--out", str(out), "--merge", "--workers", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("hotpixels: error: cannot merge into") and "shape" in proc.stderr
    assert (out / "stats.zarr" / "zarr.json").read_bytes() == before


def slow_set(folder: Path, n=48) -> np.ndarray:
    stack = np.random.default_rng(3).integers(0, 256, (n, 160, 120, 3), dtype=np.uint8)
    write_stack(folder, stack)
    return stack


def saved_checkpoints(out: Path) -> list[str]:
    """Segments the saved running total holds (not a total still being written)."""
    from pipeline.state.checkpoint import Checkpoints

    return [seg for run in (out / CHECKPOINT_DIR).glob("*") for seg in Checkpoints(out, run.name).segments()]


def interruptible_scan(tmp_path: Path, workers: int) -> tuple[list[str], np.ndarray]:
    """A scan of 120 files in 30 checkpointed segments: slow enough to interrupt halfway."""
    stack = slow_set(tmp_path / "in", n=120)
    (tmp_path / "c.yaml").write_text("scan:\n  batch_size: 2\n  checkpoint_files: 4\n")
    cmd = [HOTPIXELS, "scan", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--config", str(tmp_path / "c.yaml"),
           "--workers", str(workers), "--no-progress"]
    return cmd, stack


def interrupt_after_checkpoints(proc: subprocess.Popen, out: Path, count: int, sig: int) -> None:
    """Send ``sig`` to the scan's whole process group once ``count`` segments are saved."""
    assert wait_for(lambda: len(saved_checkpoints(out)) >= count or proc.poll() is not None, timeout=120, interval=0.02)
    assert proc.poll() is None, "the scan finished before it could be interrupted"
    os.killpg(proc.pid, sig)


@pytest.mark.slow
def test_killed_scan_resumes_with_identical_results(tmp_path):
    cmd, stack = interruptible_scan(tmp_path, workers=1)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # SIGKILL to the whole process group: client, scheduler and workers
    interrupt_after_checkpoints(proc, tmp_path / "out", 3, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out" / "stats.zarr").exists()
    done_before = len(saved_checkpoints(tmp_path / "out"))
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    line = next(x for x in resumed.stdout.splitlines() if x.startswith("resuming:"))
    assert "of 120 files" in line and int(line.split()[1]) >= done_before
    stats, _ = read_stats(tmp_path / "out")
    assert_stats_equal(stats, stack)
    assert not (tmp_path / "out" / CHECKPOINT_DIR).exists()  # removed on a normal finish
    assert sum(1 for _, s, _ in read_files_csv(tmp_path / "out") if s == "used") == 120


@pytest.mark.slow
def test_killed_scans_never_leave_a_half_written_result(tmp_path):
    """SIGKILL at several moments: stats.zarr is either absent or complete and readable."""
    stack = slow_set(tmp_path / "in", n=16)
    cmd = [HOTPIXELS, "scan", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"]
    for delay in (2.0, 3.0, 4.0, 5.0, 6.0):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if (tmp_path / "out" / "stats.zarr").exists():
            stats, _ = read_stats(tmp_path / "out")
            assert_stats_equal(stats, stack)
        if (tmp_path / "out" / "files.csv").exists():
            assert len(read_files_csv(tmp_path / "out")) == 16


@pytest.mark.slow
def test_losing_a_worker_mid_scan_keeps_results_exact(tmp_path):
    stack = slow_set(tmp_path / "in", n=40)
    address, procs = start_cluster(workers=2)
    try:
        with Client(address, timeout="30s") as client:
            (tmp_path / "c.yaml").write_text("scan:\n  batch_size: 2\n  checkpoint_files: 8\n")
            scan_proc = subprocess.Popen([HOTPIXELS, "scan", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                          "--scheduler", address, "--config", str(tmp_path / "c.yaml"), "--no-progress"],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # wait until the victim is busy, then kill it and its nanny
            assert wait_for(lambda: any(client.processing().values()), timeout=60, interval=0.05)
            os.killpg(procs[1].pid, signal.SIGKILL)
            out, err = scan_proc.communicate(timeout=300)
            assert scan_proc.returncode == 0, err
        stats, _ = read_stats(tmp_path / "out")
        assert_stats_equal(stats, stack)
    finally:
        stop(procs)


def test_checkpoints_with_pickled_objects_are_never_loaded(tmp_path):
    """Saved state may come from someone else: an object array in a checkpoint is refused."""
    from pipeline.state.checkpoint import Checkpoints

    ck = Checkpoints(tmp_path, "run")
    ck.folder.mkdir(parents=True)
    np.savez(ck.folder / "t.npz", n=np.int64(1), mean=np.array([object()], dtype=object), m2=np.zeros(1))
    ck.segment_folder.mkdir()
    (ck.segment_folder / "seg.json").write_text(json.dumps([[["a.png", "used", ""]], {}]))
    ck.record_path.write_text(json.dumps({"n": 1, "tiles": ["t.npz"], "segments": ["seg"]}))
    assert ck.segments() == ["seg"]
    assert ck.load(1) == (None, {})  # the arrays are refused, so the scan starts over
    np.savez(ck.folder / "t.npz", n=np.int64(1), mean=np.zeros(1), m2=np.zeros(1))
    assert ck.load(1)[0] is not None and ck.load(2) == (None, {})  # a plain tile loads; another tiling does not
    whole = (ck.folder / "t.npz").read_bytes()
    for broken in (b"", b"PK\x03\x04 truncated", whole[: len(whole) // 2]):  # a crash mid-write: empty or cut short
        (ck.folder / "t.npz").write_bytes(broken)
        assert ck.load(1) == (None, {})


def test_a_checkpoint_writes_each_segment_record_once(tmp_path):
    """Saving after segment k writes segment k's statuses, not all k again (100,000 files would
    cost O(segments^2)); a record left by a crashed run, never listed, is replaced, not trusted."""
    from pipeline.records import FileStatus, ReadRecord
    from pipeline.state.checkpoint import Checkpoints, SavedTotal, load_tile, save_tile
    from pipeline.stats import PixelStats

    ck = Checkpoints(tmp_path, "run")
    ck.segment_folder.mkdir(parents=True)
    (ck.segment_folder / "s1.json").write_text(json.dumps([[["stale.png", "skipped", "old run"]], {}]))
    tile = PixelStats(1, np.zeros((2, 3, 4)), np.ones((2, 3, 4)), np.zeros((2, 3, 4), np.uint16))
    old = save_tile(ck.folder, tile)
    records = {"s0": ReadRecord([FileStatus("a.png", "used", "")], {"a.png": "d0"}, {"a.png": 5})}
    ck.save(SavedTotal(1, (old,)), records, [1])
    first = (ck.segment_folder / "s0.json").stat().st_ino  # a rewrite renames a new file over it
    records["s1"] = ReadRecord([FileStatus("b.png", "used", "")], {"b.png": "d1"})
    new = save_tile(ck.folder, tile)
    ck.save(SavedTotal(1, (new,)), records, [1, 1])
    assert not (ck.folder / old).exists()  # the tile it replaced is gone
    assert (ck.segment_folder / "s0.json").stat().st_ino == first  # not rewritten
    assert ck.segments() == ["s0", "s1"] and ck.sizes() == [1, 1]
    loaded, got = Checkpoints(tmp_path, "run").load(1)
    assert loaded == SavedTotal(1, (new,)) and got == records  # s1's stale file was replaced
    back = load_tile(ck.folder, new)
    np.testing.assert_array_equal(back.m2, tile.m2)
    assert back.counts.dtype == np.uint16
    (ck.segment_folder / "s1.json").unlink()  # a listed segment's record gone: start over
    assert Checkpoints(tmp_path, "run").load(1) == (None, {})


def test_file_names_are_never_run_by_a_shell(photo_sets, local_client, tmp_path):
    """Paths with shell syntax are just names: nothing is executed, the files are scanned."""
    root, stack = photo_sets
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(["$(touch pwned).png", "a;touch pwned.png", "`touch pwned`.png"]):
        shutil.copy(root / "a" / f"a_{i:04d}.png", folder / name)
    result = scan([str(folder)], tmp_path / "out", config(), client=local_client, **QUIET)
    assert result.stats.n == 3
    assert not any(p.name == "pwned" for p in [*tmp_path.rglob("pwned"), *Path.cwd().glob("pwned")])
    assert_stats_equal(result.stats, stack[:3])


def test_merge_recognises_the_same_photos_under_other_paths(photo_sets, local_client, tmp_path):
    """Copies (other folder, new mtime) are recognised by content and never counted twice."""
    root, stack = photo_sets
    out = tmp_path / "out"
    scan([str(root / "a")], out, config(), client=local_client, **QUIET)
    copies = tmp_path / "copies"
    shutil.copytree(root / "a", copies)
    for p in copies.iterdir():
        p.rename(p.with_name("copy-" + p.name))
    merged = scan([str(copies), str(root / "b")], out, config(), client=local_client, merge=True, **QUIET)
    assert_stats_equal(merged.stats, stack)
    reasons = [r for p, s, r in merged.statuses if "copy-" in p]
    assert len(reasons) == 14 and all(r.startswith("already counted: same content as ") for r in reasons)
    attrs = saved_attrs(out)
    assert attrs["manifest"]["columns"][:4] == ["path", "size", "mtime", "digest"]
    assert len({row[3] for row in attrs["manifest"]["rows"]}) == 24


def test_a_duplicate_inside_one_partition_counts_once():
    from pipeline.engine.graph import read_step

    frame = np.arange(6, dtype=np.uint8).reshape(2, 3)
    files = {"a": (frame, "d1"), "b": (frame, "d1"), "c": (frame + 1, "d2"), "e": (frame, "d1")}

    def reader(path, out):
        return files[path]

    part = read_step(None, 0, ["a", "b", "c"], (2, 3), "uint8", reader, {"d2": "old/c.png"}, 1, [(0, 2)])
    part = read_step(part, 1, ["e"], (2, 3), "uint8", reader, {"d2": "old/c.png"}, 1, [(0, 2)])  # a later batch
    assert [s[1:] for s in part.statuses] == [("used", ""), ("skipped", "already counted: same content as a"),
                                              ("skipped", "already counted: same content as old/c.png"),
                                              ("skipped", "already counted: same content as a")]
    assert part.tiles[0].n == 1 and part.digests == {"a": "d1"}


@pytest.mark.slow
def test_ctrl_c_stops_promptly_and_cleanly_and_the_rerun_resumes(tmp_path):
    """Ctrl-C signals the whole foreground process group: one clear line, exit 130, no worker tracebacks."""
    cmd, stack = interruptible_scan(tmp_path, workers=2)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    interrupt_after_checkpoints(proc, tmp_path / "out", 2, signal.SIGINT)
    start = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - start < 20
    # workers closing may still log a line after ours, so: our last word, not the stream's last line
    assert [line for line in err.splitlines() if line.startswith("hotpixels:")][-1:] == ["hotpixels: interrupted"]
    assert "KeyboardInterrupt" not in err
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert any(line.startswith("resuming:") for line in rerun.stdout.splitlines())
    stats, _ = read_stats(tmp_path / "out")
    assert_stats_equal(stats, stack)


def test_copies_in_other_segments_and_partitions_count_once(local_client, tmp_path):
    """Copies far apart in a run (other folders, other segments of 4 files, other partitions)
    count once, files.csv names the file each duplicates, and frames of one size that differ
    (uncompressed TIFFs: all one size) all count."""
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 4000, (10, 12, 16)).astype(np.uint16)
    write_stack(tmp_path / "in" / "a", stack, ext="tif")
    originals = sorted((tmp_path / "in" / "a").iterdir())
    assert len({p.stat().st_size for p in originals}) == 1
    later = tmp_path / "in" / "z-backup"
    later.mkdir()
    for i in (0, 3, 9):
        shutil.copy(originals[i], later / f"copy_{i}.tif")
    cfg = config()
    cfg.scan.checkpoint_files = 4
    cfg.scan.batch_size = 1
    said = []
    result = scan([str(tmp_path / "in")], tmp_path / "out", cfg, client=local_client, progress=False,
                  log=said.append)
    assert result.stats.n == 10
    assert_stats_equal(result.stats, stack)
    reasons = {Path(p).name: r for p, s, r in result.statuses if s == "skipped"}
    assert reasons == {f"copy_{i}.tif": f"already counted: same content as {originals[i]}" for i in (0, 3, 9)}
    assert any("3 files are copies of others" in m for m in said)


def test_absurd_shooting_data_never_breaks_a_scan(local_client, tmp_path):
    """Exposure 0, negative or not a number, ISO 0, dates in 1970 and in 2090: the frames count in
    the moments, stay out of the exposure model and the dates, and files.csv says why."""
    from astropy.io import fits

    rng = np.random.default_rng(4)
    stack = rng.integers(100, 900, (13, 10, 12)).astype(np.uint16)
    cards = [(0.01 * 2 ** i, 100, f"2024-0{1 + i % 6}-1{i % 9}T12:00:00") for i in range(8)]
    cards += [(0.0, 100, "2024-03-01T00:00:00"), (-1.0, 100, "2024-03-02T00:00:00"),
              (float("nan"), 100, "2024-03-03T00:00:00"), (0.5, 0, "2024-03-04T00:00:00"),
              (0.5, 100, "1970-01-01T00:00:00")]
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (frame, (exposure, iso, date)) in enumerate(zip(stack, cards, strict=True)):
        hdu = fits.PrimaryHDU(frame)
        hdu.header["EXPTIME"] = exposure if exposure == exposure else "NaN"
        hdu.header["ISOSPEED"] = iso
        hdu.header["DATE-OBS"] = date
        hdu.writeto(folder / f"f{i:02d}.fits")
    future = fits.PrimaryHDU(stack[0])
    future.header["EXPTIME"], future.header["DATE-OBS"] = 1.0, "2090-01-01T00:00:00"
    stack = np.concatenate([stack, stack[:1]])
    future.writeto(folder / "f99.fits")
    result = scan([str(folder)], tmp_path / "out", config(), client=local_client, **QUIET)
    assert result.stats.n == 14
    assert_stats_equal(result.stats, stack)
    import csv

    with open(tmp_path / "out" / "files.csv", newline="") as fh:
        notes = {Path(r["path"]).name: r["note"] for r in csv.DictReader(fh)}
    assert notes["f08.fits"] == "exposure 0 s: left out of the exposure fit"
    assert notes["f09.fits"] == "exposure -1 s: left out of the exposure fit"
    assert "left out of the exposure fit" in notes["f10.fits"]
    assert "left out of the exposure fit" in notes["f11.fits"]  # ISO 0: its gain is unknown
    assert notes["f12.fits"] == "capture time 1970-01-01 is not a date"
    assert "capture time 2090-01-01 is not a date" in notes["f99.fits"]
    assert all(not notes[f"f{i:02d}.fits"] for i in range(8))


@pytest.mark.slow
def test_time_cut_segments_resume_after_sigkill(tmp_path):
    """Segments cut by time (``scan.checkpoint_seconds``), their sizes taken from the measured rate:
    a SIGKILLed scan's rerun cuts the saved ones again as they were, resumes, and is exact."""
    from pipeline.engine.plan import first_segment
    from pipeline.state.checkpoint import Checkpoints

    stack = slow_set(tmp_path / "in", n=300)
    (tmp_path / "c.yaml").write_text("scan:\n  batch_size: 2\n  checkpoint_seconds: 0.05\n  checkpoint_files: 100000\n")
    cmd = [HOTPIXELS, "scan", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--config", str(tmp_path / "c.yaml"),
           "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    interrupt_after_checkpoints(proc, tmp_path / "out", 3, signal.SIGKILL)
    proc.wait()
    (run,) = (tmp_path / "out" / CHECKPOINT_DIR).glob("*")
    sizes = Checkpoints(tmp_path / "out", run.name).sizes()
    assert len(sizes) >= 3 and sizes[0] == first_segment(0.05, 1, (160, 120, 3), "uint8")
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    line = next(x for x in resumed.stdout.splitlines() if x.startswith("resuming:"))
    assert f"({sum(sizes[:int(line.split()[1])])} of 300 files)" in line
    stats, _ = read_stats(tmp_path / "out")
    assert_stats_equal(stats, stack)


@pytest.mark.slow
def test_a_lost_scheduler_ends_the_scan_in_one_line_and_a_new_one_resumes(tmp_path):
    stack = slow_set(tmp_path / "in", n=240)
    (tmp_path / "c.yaml").write_text("scan:\n  batch_size: 2\n  checkpoint_files: 4\n")
    address, procs = start_cluster()
    try:
        cmd = [HOTPIXELS, "scan", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--config",
               str(tmp_path / "c.yaml"), "--no-progress"]
        scan_proc = subprocess.Popen([*cmd, "--scheduler", address], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        assert wait_for(lambda: len(saved_checkpoints(tmp_path / "out")) >= 3, timeout=120, interval=0.02)
        os.killpg(procs[0].pid, signal.SIGKILL)  # the scheduler goes away
        out, err = scan_proc.communicate(timeout=120)
        assert scan_proc.returncode == 3, (out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"hotpixels: error: lost the Dask scheduler at {address}")
        assert "run the same command again" in lines[0]
    finally:
        stop(procs)
    done_before = len(saved_checkpoints(tmp_path / "out"))
    address, procs = start_cluster()
    try:
        again = subprocess.run([*cmd, "--scheduler", address], capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
    finally:
        stop(procs)
    line = next(x for x in again.stdout.splitlines() if x.startswith("resuming:"))
    assert int(line.split()[1]) >= done_before
    stats, _ = read_stats(tmp_path / "out")
    assert_stats_equal(stats, stack)
