"""After the reduction: the terminal summary, every output, and re-detection from saved stats."""

import shutil
import subprocess

import pytest

from pipeline.defect import KINDS, read_csv

from .conftest import BIN, run_or_dump

HOTPIXELS = str(BIN / "hotpixels")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    subprocess.run([HOTPIXELS, "synth", str(root / "frames"), "--frames", "30", "--size", "320x240", "--seed", "2"],
                   check=True, capture_output=True, timeout=120)
    proc = run_or_dump([HOTPIXELS, "scan", str(root / "frames"), "--out", str(root / "out"), "--workers", "2"],
                       timeout=300)
    assert proc.returncode == 0, proc.stderr
    return root, proc.stdout


def test_scan_prints_counts_strongest_defects_and_output_paths(scanned):
    root, out = scanned
    assert "defects: " in out and all(f" {k}" in out.split("defects: ", 1)[1].splitlines()[0] for k in KINDS)
    n = len(read_csv(root / "out" / "defects.csv"))
    lines = out.split("strongest", 1)[1].splitlines()
    assert lines[0].strip() == f"{min(10, n)}:" and lines[1].split()[:4] == ["x", "y", "ch", "kind"]
    table = lines[2 : 2 + min(10, n)]
    assert all(line.startswith("  ") and line.split()[3] in KINDS for line in table)
    assert "stack treated as photos" in out
    for name in ("stats.zarr", "files.csv", "defects.csv", "dcraw.badpixels", "siril.lst", "mask.png", "report.html",
                 "Hotpixels Synth 1.badpixels"):
        assert f"wrote {root / 'out' / name}" in out
        assert (root / "out" / name).exists()


def test_defects_csv_is_sorted_by_score_with_the_contract_columns(scanned):
    root, _ = scanned
    header = (root / "out" / "defects.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == ["x", "y", "channel", "kind", "mean", "std", "score"]
    defects = read_csv(root / "out" / "defects.csv")
    assert defects and [d.score for d in defects] == sorted((d.score for d in defects), reverse=True)


def test_detect_reclassifies_from_saved_stats_without_the_images(scanned, tmp_path):
    root, _ = scanned
    copy = tmp_path / "out"
    shutil.copytree(root / "out", copy)
    before = read_csv(copy / "defects.csv")
    (tmp_path / "strict.yaml").write_text("detect:\n  hot_threshold: 40.0\n  stuck_threshold: 40.0\n"
                                          "  dead_threshold: 40.0\n  noisy_threshold: 40.0\n")
    frames = root / "frames"
    hidden = root / "frames-hidden"
    frames.rename(hidden)  # prove that no image is read
    try:
        proc = subprocess.run([HOTPIXELS, "detect", str(copy), "--config", str(tmp_path / "strict.yaml")],
                              capture_output=True, text=True, timeout=120)
    finally:
        hidden.rename(frames)
    assert proc.returncode == 0, proc.stderr
    after = read_csv(copy / "defects.csv")
    assert 0 < len(after) < len(before)
    assert all(d.score >= 40.0 for d in after)
    assert f"wrote {copy / 'report.html'}" in proc.stdout


def test_detect_without_stats_is_a_clear_error(tmp_path):
    proc = subprocess.run([HOTPIXELS, "detect", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no stats.zarr" in proc.stderr and "Traceback" not in proc.stderr


def test_report_rewrites_only_the_report(scanned, tmp_path):
    root, _ = scanned
    copy = tmp_path / "out"
    shutil.copytree(root / "out", copy)
    (tmp_path / "strict.yaml").write_text("detect:\n  hot_threshold: 40.0\n")
    (copy / "report.html").unlink()
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    proc = subprocess.run([HOTPIXELS, "report", str(copy), "--config", str(tmp_path / "strict.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("wrote ")] == [f"wrote {copy / 'report.html'}"]
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file() and p.name != "report.html"} == before


def test_a_stack_of_few_frames_is_warned_of_in_the_log_and_the_report(scanned, tmp_path):
    """Under 15 frames a sensel's own variance is too uncertain for the criteria's tails: chance
    alone makes false reports (4-16 per 0.3 MP in 6 synthetic frames). 30 frames are not warned
    of, nor 6 raw darks."""
    subprocess.run([HOTPIXELS, "synth", str(tmp_path / "frames"), "--frames", "6", "--size", "160x120"],
                   check=True, capture_output=True, timeout=120)
    proc = run_or_dump([HOTPIXELS, "scan", str(tmp_path / "frames"), "--out", str(tmp_path / "out"), "--workers", "1",
                        "--no-progress"], timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = "only 6 frames: with fewer than 15, chance alone makes false reports"
    assert f"warning: {said}" in proc.stdout
    assert said in (tmp_path / "out" / "report.html").read_text()
    root, out = scanned
    assert "warning: only" not in out and "chance alone" not in (root / "out" / "report.html").read_text()
    # raw darks hold each sensel's variance to its neighbours': 6 of them made no false report
    subprocess.run([HOTPIXELS, "synth", str(tmp_path / "darks"), "--frames", "6", "--size", "160x120", "--dark",
                    "--format", "tiff16"], check=True, capture_output=True, timeout=120)
    darks = run_or_dump([HOTPIXELS, "scan", str(tmp_path / "darks"), "--out", str(tmp_path / "darks-out"),
                         "--workers", "1", "--no-progress"], timeout=300)
    assert darks.returncode == 0, darks.stderr
    assert "stack treated as darks" in darks.stdout and "warning: only" not in darks.stdout
