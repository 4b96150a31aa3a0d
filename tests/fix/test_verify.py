"""`hotpixels fix` on DNGs and `hotpixels verify`: the opcode lands on the planted sensels in
stage-1 coordinates, and a map moved by a margin is caught."""

from __future__ import annotations

import csv
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rawpy
import tifffile

from pipeline.defect import Defect, write_csv
from pipeline.fix.defect_map import DefectMap
from pipeline.fix.opcodes import FixBadPixelsList, apply_fix_bad_pixels, parse_opcode_list
from pipeline.fix.run import fix
from pipeline.fix.verify import verify
from pipeline.io import read_header
from pipeline.records import StackMeta
from pipeline.state.store import write_stats
from pipeline.stats.accumulate import stats_of_stack
from tests.fix.test_dng_copy import pidng_dng

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def dark_dngs(tmp_path_factory):
    """A real scan of synthetic DNG darks (hot sensels planted), and its result folder."""
    root = tmp_path_factory.mktemp("dng")
    assert run("synth", str(root / "dng"), "--frames", "12", "--size", "160x120", "--format", "dng",
               "--dark").returncode == 0
    done = run("scan", str(root / "dng"), "--out", str(root / "res"), "--workers", "1", "--no-progress")
    assert done.returncode == 0, done.stderr
    return root


def opcode_points(path: Path) -> list[tuple[int, int]]:
    """The FixBadPixelsList points of a DNG's raw IFD, read with tifffile and struct (not our parser)."""
    with tifffile.TiffFile(path) as tif:
        page = next(p for p in tif.pages if 51008 in p.tags)
        data = bytes(page.tags[51008].value)
    count, = struct.unpack(">I", data[:4])
    pos, points = 4, []
    for _ in range(count):
        op_id, _, _, _, _, _, size = struct.unpack(">I4BII", data[pos:pos + 16])
        body = data[pos + 16:pos + 16 + size]
        if op_id == 5:
            _, n_points, n_rects = struct.unpack(">III", body[:12])
            assert size == 12 + 8 * n_points + 16 * n_rects  # the DNG SDK's length rule
            points += [struct.unpack(">II", body[12 + 8 * i:20 + 8 * i]) for i in range(n_points)]
        pos += 16 + size
    return points


def test_fix_writes_the_map_as_an_opcode_and_verify_passes(dark_dngs, tmp_path):
    res, src = dark_dngs / "res", sorted((dark_dngs / "dng").glob("*.dng"))
    defects = DefectMap.load(res).defects
    assert defects
    done = run("fix", str(dark_dngs / "dng"), "--map", str(res), "--out", str(tmp_path / "fixed"))
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "fixed" / src[0].name
    assert sorted(opcode_points(copy)) == sorted({(d.y, d.x) for d in defects})  # no margins in these DNGs
    with rawpy.imread(str(src[0])) as a, rawpy.imread(str(copy)) as b:
        assert np.array_equal(a.raw_image, b.raw_image)
    checked = run("verify", str(res), str(copy), *map(str, src[1:4]))
    assert checked.returncode == 0, checked.stdout
    assert "verified: no problem" in checked.stdout


def test_verify_catches_a_map_moved_by_a_margin_and_lines_outside(dark_dngs, tmp_path):
    """A map read with another LibRaw's margins (2 columns) lands beside every defect."""
    moved = tmp_path / "moved"
    shutil.copytree(dark_dngs / "res", moved)
    rows = list(csv.DictReader(open(moved / "defects.csv", newline="")))
    for r in rows:
        r["x"] = str(int(r["x"]) + 2)
    with open(moved / "defects.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"{int(f[0]) + 2} {f[1]} {f[2]}" if not line.startswith("#") else line
             for line in (moved / "dcraw.badpixels").read_text().splitlines() for f in [line.split()]]
    (moved / "dcraw.badpixels").write_text("\n".join([*lines, "5000 3 0"]) + "\n")
    frames = [str(p) for p in sorted((dark_dngs / "dng").glob("*.dng"))[:3]]
    problems = verify(moved, frames, log=lambda m: None)
    assert any("5000 3 lies outside the 160x120 image" in p for p in problems)
    moved_entries = [p for p in problems if "is the map moved?" in p]
    assert len(moved_entries) >= 0.8 * len({(r["x"], r["y"]) for r in rows if r["kind"] in ("hot", "stuck", "dead")})
    done = run("verify", str(moved), *frames)
    assert done.returncode == 1 and "problem: entry x=" in done.stdout
    assert not verify(dark_dngs / "res", frames, log=lambda m: None)


def test_a_dng_with_margins_gets_its_points_in_stage_one(tmp_path):
    """LibRaw's visible area starts at the margins: the opcode adds them, and applying it to the
    whole stored raw repairs exactly the planted sensels."""
    rng = np.random.default_rng(0)
    raw = (np.tile([[600, 900], [900, 400]], (24, 32)) + rng.integers(0, 20, (48, 64))).astype(np.uint16)
    planted = [(10, 14), (21, 31), (5, 6)]  # visible (y, x)
    for y, x in planted:
        raw[y + 4, x + 6] = 4000
    (tmp_path / "in").mkdir()
    src = pidng_dng(tmp_path / "in" / "m.dng", raw, active_area=(4, 6, 44, 62))
    header = read_header(str(src))
    assert header.raw_margins[:2] == (4, 6)
    res = tmp_path / "res"
    res.mkdir()
    write_stats(res, stats_of_stack(np.zeros((2, *header.shape), np.uint16), 2),
                StackMeta(dtype="uint16", layout=header.layout, raw=True, raw_margins=header.raw_margins))
    write_csv([Defect(x=x, y=y, channel=0, kind="hot", mean=4000.0, std=1.0, score=99.0) for y, x in planted],
              res / "defects.csv")
    (row,) = fix([str(src)], res, tmp_path / "out", log=lambda m: None)
    assert row.status == "fixed", row.reason
    copy = tmp_path / "out" / "m.dng"
    assert sorted(opcode_points(copy)) == sorted((y + 4, x + 6) for y, x in planted)
    with tifffile.TiffFile(copy) as tif:
        (op,) = parse_opcode_list(bytes(tif.pages[0].tags[51008].value))
    with rawpy.imread(str(copy)) as r:
        stage1 = r.raw_image.copy()
    repaired = apply_fix_bad_pixels(stage1, FixBadPixelsList.from_params(op.params))
    for y, x in planted:
        assert repaired[y + 4, x + 6] < 1000
    changed = np.argwhere(repaired != stage1)
    assert sorted(map(tuple, changed)) == sorted((y + 4, x + 6) for y, x in planted)
    other = res / "other"
    shutil.copytree(res, other)
    import zarr

    zarr.open_group(str(other / "stats.zarr"), mode="r+").attrs["raw_margins"] = [0, 0, 48, 64]
    (again,) = fix([str(src)], other, tmp_path / "out2", log=lambda m: None)
    assert again.status == "skipped" and "raw margins top 0, left 0" in again.reason
