"""Fujifilm X-Trans (6x6 CFA) raws are scanned, not refused: every sensel is compared with the
sensels one period (6) away, which are its own colour, and defects are found at their sensel
with their colour. The files are real DNGs with a 6x6 CFAPattern (pidng), which LibRaw reads as
X-Trans, as it reads a RAF."""

from pathlib import Path

import numpy as np
import pytest

from pipeline import Config, scan
from pipeline.defect import read_csv
from pipeline.io import read_header, read_pixels
from pipeline.state.files import read_files_csv

pytest.importorskip("pidng")

QUIET = {"progress": False, "log": lambda m: None}
# the X-T3's pattern as LibRaw gives it for the visible area's first row and column
XTRANS = ("GGRGGB", "GGBGGR", "BRGRBG", "GGBGGR", "GGRGGB", "RBGBRG")


def write_xtrans(path: Path, mosaic: np.ndarray) -> Path:
    from pidng.dng import Tag

    from pipeline.synth.writers import dng_bytes, dng_tags

    tags = dng_tags(mosaic.shape, 256, 4095, (1.0, 1.0, 1.0), "FUJIFILM", "X-T3")
    tags.set(Tag.CFARepeatPatternDim, [6, 6])
    tags.set(Tag.CFAPattern, ["RGB".index(c) for row in XTRANS for c in row])
    path.write_bytes(dng_bytes(tags, mosaic))
    return path


def neighbour(i: np.ndarray, step: int, size: int) -> np.ndarray:
    """The index ``step`` away, else (beyond an end) the one on the other side, else itself."""
    ahead, back = i + step, i - step
    return np.where((ahead >= 0) & (ahead < size), ahead, np.where((back >= 0) & (back < size), back, i))


def residuals(frames: np.ndarray, stride: int) -> np.ndarray:
    """4 v minus its 4 neighbours ``stride`` away, by the definition (frames, H, W)."""
    _, h, w = frames.shape
    y, x = np.arange(h), np.arange(w)
    v = frames.astype(np.int64)
    return (4 * v - v[:, neighbour(y, -stride, h)] - v[:, neighbour(y, stride, h)]
            - v[:, :, neighbour(x, -stride, w)] - v[:, :, neighbour(x, stride, w)])


@pytest.fixture(scope="module")
def xtrans_darks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xtrans")
    rng = np.random.default_rng(8)
    n, h, w = 24, 60, 78
    frames = rng.normal(256, 6, (n, h, w))
    planted = {(13, 20): 300, (40, 33): 250, (71, 52): 280}  # (x, y): hot by DN, on R, G and B
    for (x, y), excess in planted.items():
        frames[:, y, x] += excess
    frames[:, 47, 21] = 4000  # stuck, on B
    frames[rng.random(n) < 0.35, 9, 59] += 120  # a one-sided telegraph sensel, on R
    frames = np.clip(np.rint(frames), 0, 4095).astype(np.uint16)
    for i, frame in enumerate(frames):
        write_xtrans(folder / f"DSCF{i:04d}.dng", frame)
    return folder, frames


def test_libraw_reads_the_6x6_pattern_and_the_scan_takes_it(xtrans_darks):
    folder, frames = xtrans_darks
    header = read_header(str(folder / "DSCF0000.dng"))
    assert header.error == "" and header.raw and header.layout.name == "mosaic 6x6"
    assert header.layout.stride == 6 and header.layout.refusal() == ""
    assert ["".join(header.layout.color(v) for v in row) for row in header.layout.cfa] == list(XTRANS)
    np.testing.assert_array_equal(read_pixels(str(folder / "DSCF0003.dng")), frames[3])


def test_x_trans_darks_are_scanned_exactly_and_each_defect_found_with_its_colour(xtrans_darks, tmp_path,
                                                                                    local_client):
    folder, frames = xtrans_darks
    result = scan([str(folder)], tmp_path / "out", Config(), client=local_client, **QUIET)
    n = len(frames)
    assert result.stats.n == n
    assert {s for _, s, _ in read_files_csv(tmp_path / "out")} == {"used"}
    np.testing.assert_array_equal(result.stats.mean[0], frames.mean(0))
    residual = residuals(frames, 6) / 4  # the residual stream: v minus the mean of its 4 neighbours
    np.testing.assert_allclose(result.stats.mean[1], residual.mean(0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.stats.m2[1], residual.var(0) * n, rtol=1e-9, atol=1e-9)
    found = {(d.x, d.y): d for d in read_csv(tmp_path / "out" / "defects.csv")}
    expected = {(13, 20): ("hot", "R"), (40, 33): ("hot", "G"), (71, 52): ("hot", "B"), (21, 47): ("stuck", "B"),
                (59, 9): ("noisy", "R")}
    for (x, y), (kind, colour) in expected.items():
        assert XTRANS[y % 6][x % 6] == colour
        assert (found[(x, y)].kind, found[(x, y)].color) == (kind, colour), (x, y)
    assert set(found) == set(expected)
    # dcraw and LibRaw apply their list to X-Trans too (dcraw's bad_pixels averages the sensels of
    # the same colour around, by fcol): the visible area's coordinates, one line per sensel
    lines = [line.split() for line in (tmp_path / "out" / "dcraw.badpixels").read_text().splitlines()
             if line and not line.startswith("#")]
    assert {(int(x), int(y)) for x, y, *_ in lines} == set(expected)
    assert (tmp_path / "out" / "Fujifilm X-T3.badpixels").exists()
    # Siril's cosme_cfa has only a 2x2 notion: the list says so, and still parses as Siril does
    siril = (tmp_path / "out" / "siril.lst").read_text().splitlines()
    assert "# CFA 6x6 (X-Trans): cosme_cfa takes sensels 2" in siril
    assert all(line.startswith(("#", "P ")) for line in siril) and max(map(len, siril)) < 62
    # Adobe's FixBadPixelsList is defined for 2x2 Bayer only: fix says so and writes no copy
    from pipeline.fix.run import fix

    rows = fix([str(folder / "DSCF0000.dng")], tmp_path / "out", tmp_path / "fixed", log=lambda m: None)
    assert rows[0].status == "skipped" and "X-Trans" in rows[0].reason and "dcraw.badpixels" in rows[0].reason
    assert not (tmp_path / "fixed" / "DSCF0000.dng").exists()
