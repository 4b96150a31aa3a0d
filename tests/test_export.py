"""Exports are read back the way each tool reads them (Python re-implementations of their parsers)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from pipeline.state import atomic
from pipeline.defect import Defect
from pipeline.outputs.dcraw import write_dcraw
from pipeline.outputs.mask_png import write_mask_png
from pipeline.outputs.rawtherapee import write_rawtherapee
from pipeline.outputs.siril import write_siril
from pipeline.outputs.text import camera_filename

H, W = 40, 60

# ------------------------------------------------------------------ parsers, as the tools do it

_INT = r"\s*([+-]?\d+)(?!\d)"  # sscanf %d: skip blanks, then all the digits (no backtracking)
_FLOAT = r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![\d.])"


def _sscanf_ints(line: str, count: int) -> list[int]:
    """The ints sscanf("%d %d ...") assigns before the first mismatch."""
    out, pos = [], 0
    for _ in range(count):
        m = re.compile(_INT).match(line, pos)
        if not m:
            break
        out.append(int(m.group(1)))
        pos = m.end()
    return out


def _fgets_lines(data: bytes, size: int) -> list[str]:
    """Successive fgets(buf, size, fp) results: at most size-1 bytes, up to and with '\\n'."""
    lines, pos = [], 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        end = min(end, pos + size - 1)
        lines.append(data[pos:end].decode("utf-8", "replace"))
        pos = end
    return lines


def dcraw_bad_pixels(path: Path, width: int, height: int, timestamp: int = 1) -> list[tuple[int, int]]:
    """dcraw.c bad_pixels(): fgets 128, cut at '#', sscanf %d %d %d, bounds and time checks."""
    fixed = []
    for line in _fgets_lines(path.read_bytes(), 128):
        line = line.split("#", 1)[0]
        vals = _sscanf_ints(line, 3)
        if len(vals) != 3:
            continue
        col, row, time = vals
        if not (0 <= col < width and 0 <= row < height) or time > timestamp:
            continue
        fixed.append((col, row))
    return fixed


def rawtherapee_scan(path: Path) -> tuple[str, list[tuple[int, int]]]:
    """RawTherapee DFManager::scanBadPixelsFile(): key from the name, offset on line 1."""
    name = str(path)
    makmodel = name[max(name.rfind("/"), name.rfind("\\")) + 1 : name.rfind(".")]
    lines = _fgets_lines(path.read_bytes(), 256)
    bp: list[tuple[int, int]] = []
    offset = 0
    for i, line in enumerate(lines):
        vals = _sscanf_ints(line, 2)
        if i == 0 and len(vals) == 1:
            offset = vals[0]
        elif len(vals) == 2:
            bp.append((vals[0] + offset, vals[1] + offset))
    return makmodel, bp


def siril_cosme(path: Path, ry: int) -> tuple[list[tuple[int, int, str]], list[str]]:
    """Siril apply_cosme_to_image(): '#' comment, 'P x y [H|C]', anything else is an error.

    Returns the points in Siril's *memory* rows (after its ``ry - y - 1``) and the errors.
    """
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()  # g_data_input_stream_read_line returns NULL at EOF, no empty last line
    points, errors = [], []
    for line in lines:
        if line[:1] == "#":
            continue
        if line[:1] == "P":
            m = re.compile(_FLOAT + _FLOAT + r"(?:\s*(\S))?").match(line, 2)
            if not m:
                errors.append(line)
                continue
            x, y = float(m.group(1)), float(m.group(2))
            kind = m.group(3) or "H"
            points.append((int(x), int(ry - y - 1), "H" if kind == "H" else "C"))
        else:
            errors.append(line)
    return points, errors


# ------------------------------------------------------------------ fixtures


def _d(x, y, kind="hot", channel=0, score=10.0, mean=100.0, neighbour_mean=float("nan"), residual_mean=float("nan")):
    return Defect(x=x, y=y, channel=channel, kind=kind, mean=mean, std=1.0, score=score,
                  neighbour_mean=neighbour_mean, residual_mean=residual_mean)


@pytest.fixture
def defects():
    return [
        _d(0, 0, "hot"),
        _d(W - 1, H - 1, "dead", mean=0.0, neighbour_mean=50.0),
        _d(5, 7, "hot", channel=0, score=30.0),
        _d(5, 7, "hot", channel=1, score=20.0),  # same site, other channel
        _d(5, 7, "noisy", channel=2, score=5.0),
        _d(12, 3, "stuck", mean=4000.0, neighbour_mean=100.0),  # stuck bright
        _d(13, 30, "stuck", mean=2.0, neighbour_mean=100.0),  # stuck dark
        _d(20, 10, "stuck", residual_mean=-40.0),  # no neighbour mean: residual decides
        _d(21, 11, "noisy"),
    ]


def _distinct(defects):
    return {(d.x, d.y) for d in defects}


# ------------------------------------------------------------------ dcraw


def test_dcraw_round_trip(tmp_path, defects):
    p = write_dcraw(defects, tmp_path / "dcraw.badpixels", ["run 42"], shape=(H, W, 3))
    fixed = dcraw_bad_pixels(p, W, H)
    assert sorted(fixed) == sorted(_distinct(defects))
    assert len(fixed) == len(set(fixed))  # duplicates across channels collapsed
    body = [ln for ln in p.read_text().splitlines() if not ln.startswith("#")]
    assert all(re.fullmatch(r"\d+ \d+ 0", ln) for ln in body)
    text = p.read_text()
    assert f"{W} columns x {H} rows" in text and f"{len(fixed)} pixels" in text and "run 42" in text


def test_dcraw_time_zero_applies_to_any_image(tmp_path, defects):
    p = write_dcraw(defects, tmp_path / "dcraw.badpixels")
    assert sorted(dcraw_bad_pixels(p, W, H, timestamp=0)) == sorted(_distinct(defects))


def test_dcraw_long_or_hostile_header_cannot_inject_pixels(tmp_path):
    evil = ["1 2 0 " * 100, "x\n7 8 0", "\r9 9 0"]
    p = write_dcraw([], tmp_path / "dcraw.badpixels", evil)
    assert dcraw_bad_pixels(p, W, H) == []
    assert all(len(ln) < 127 for ln in p.read_text().split("\n"))


def test_dcraw_rejects_out_of_range(tmp_path):
    with pytest.raises(ValueError):
        write_dcraw([_d(W, 0)], tmp_path / "dcraw.badpixels", shape=(H, W))


# ------------------------------------------------------------------ RawTherapee


def test_rawtherapee_round_trip(tmp_path, defects):
    p = write_rawtherapee(defects, tmp_path, "Canon", "Canon EOS 5D Mark III")
    assert p == tmp_path / "Canon EOS 5D Mark III.badpixels"
    makmodel, bp = rawtherapee_scan(p)
    assert makmodel == "Canon EOS 5D Mark III"  # RawTherapee looks up make + " " + model
    assert sorted(bp) == sorted(_distinct(defects))
    assert len(bp) == len(set(bp))
    assert _sscanf_ints(p.read_text().splitlines()[0], 2) == []  # first line is never an offset


def test_rawtherapee_make_normalised_like_dcraw(tmp_path):
    p = write_rawtherapee([_d(1, 2)], tmp_path, "NIKON CORPORATION", "NIKON D850")
    assert p.name == "Nikon D850.badpixels"


@pytest.mark.parametrize(
    "make,model", [(None, "X"), ("Canon", None), ("", "X"), ("  ", "X"), ("unknown", "Y"), ("\x00", "Z"), ("..", "..")]
)
def test_rawtherapee_unknown_camera_writes_nothing(tmp_path, make, model):
    assert write_rawtherapee([_d(1, 2)], tmp_path, make, model) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "make,model",
    [
        ("../../etc", "passwd"),
        ("A/B", "C"),
        ("Canon", "../../../x"),
        ("..\\..\\win", "m"),
        ("\x00evil", "mo\x00del"),
        ("/abs", "/olute"),
        ("Can\non", "EOS\r\n5D"),
        (".hidden", "cam"),
        ("x" * 500, "y" * 500),
        ("C:", "aux"),
        ("Canon", "\u202eEOS"),
    ],
)
def test_rawtherapee_hostile_names_stay_inside(tmp_path, make, model):
    out = tmp_path / "out"
    out.mkdir()
    p = write_rawtherapee([_d(3, 4)], out, make, model)
    assert p is not None
    assert p.resolve().parent == out.resolve()
    assert sorted(tmp_path.iterdir()) == [out]  # nothing created next to out_dir
    assert list(out.iterdir()) == [p]
    name = p.name
    assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
    assert all(ch.isprintable() for ch in name)
    assert len(name.encode()) < 255
    assert rawtherapee_scan(p)[1] == [(3, 4)]


def test_camera_filename_is_stable_and_public():
    assert camera_filename("SONY", "ILCE-7M3") == "Sony ILCE-7M3.badpixels"
    assert camera_filename("Canon", "EOS R5", suffix=".txt") == "Canon EOS R5.txt"
    assert camera_filename("  Fuji  Photo ", "X  T4 ") == "Fuji Photo X T4.badpixels"
    assert camera_filename(b"Canon", b"EOS 6D") == "Canon EOS 6D.badpixels"
    assert camera_filename("Unknown", "X") is None


# ------------------------------------------------------------------ Siril


def _siril_memory_row_for_upright_input(y_stored: int, height: int) -> int:
    """Siril's raw/TIFF/PNG/JPEG loaders store rows bottom-up (row 0 = bottom of the picture)."""
    return height - 1 - y_stored


def test_siril_round_trip_upright_inputs(tmp_path, defects):
    p = write_siril(defects, tmp_path / "siril.lst", H)
    points, errors = siril_cosme(p, H)
    assert errors == []
    hit = {(x, ymem) for x, ymem, _ in points}
    expected = {(x, _siril_memory_row_for_upright_input(y, H)) for x, y in _distinct(defects)}
    assert hit == expected  # Siril corrects exactly our pixels, not their mirror images
    assert len(points) == len(hit)


def test_siril_flip_y_for_top_down_fits(tmp_path, defects):
    """A top-down FITS is loaded unflipped (memory row = stored row): then y must be flipped."""
    p = write_siril(defects, tmp_path / "siril.lst", H, flip_y=True)
    points, errors = siril_cosme(p, H)
    assert errors == []
    assert {(x, ymem) for x, ymem, _ in points} == _distinct(defects)
    rows = (ln.split() for ln in p.read_text().splitlines() if ln[0] == "P")
    written = {(int(a), int(b)) for _, a, b, _ in rows}
    assert written == {(x, H - 1 - y) for x, y in _distinct(defects)}


def test_siril_hot_and_cold_types(tmp_path, defects):
    p = write_siril(defects, tmp_path / "siril.lst", H)
    types = {(x, H - 1 - ymem): t for x, ymem, t in siril_cosme(p, H)[0]}
    assert types[(0, 0)] == "H"  # hot
    assert types[(W - 1, H - 1)] == "C"  # dead
    assert types[(5, 7)] == "H"  # hot in two channels, noisy in one
    assert types[(12, 3)] == "H"  # stuck above its neighbours
    assert types[(13, 30)] == "C"  # stuck below its neighbours
    assert types[(20, 10)] == "C"  # stuck, negative residual
    assert types[(21, 11)] == "H"  # noisy


def test_siril_lines_fit_old_readers(tmp_path, defects):
    p = write_siril(defects, tmp_path / "siril.lst", H)
    lines = p.read_text().split("\n")
    assert lines[-1] == ""  # ends with a newline ...
    assert all(ln and len(ln) < 62 for ln in lines[:-1])  # ... no blank line, fgets(63)-safe
    assert p.read_text().startswith("#")


def test_siril_rejects_rows_outside_height(tmp_path):
    with pytest.raises(ValueError):
        write_siril([_d(0, H)], tmp_path / "siril.lst", H)


# ------------------------------------------------------------------ PNG mask


def test_mask_png(tmp_path, defects):
    p = write_mask_png(defects, (H, W, 3), tmp_path / "mask.png")
    mask = iio.imread(p)
    assert mask.shape == (H, W) and mask.dtype == np.uint8
    ys, xs = np.nonzero(mask)
    assert set(zip(xs.tolist(), ys.tolist())) == _distinct(defects)
    assert set(np.unique(mask).tolist()) == {0, 255}


# ------------------------------------------------------------------ empty input and atomicity


def test_empty_defect_list_gives_valid_files(tmp_path):
    d = write_dcraw([], tmp_path / "dcraw.badpixels", shape=(H, W))
    assert dcraw_bad_pixels(d, W, H) == [] and d.read_text().startswith("#")
    r = write_rawtherapee([], tmp_path, "Canon", "EOS 6D")
    assert rawtherapee_scan(r)[1] == []
    s = write_siril([], tmp_path / "siril.lst", H)
    assert siril_cosme(s, H) == ([], [])
    m = write_mask_png([], (H, W), tmp_path / "mask.png")
    assert not iio.imread(m).any()


def test_no_temp_files_left(tmp_path, defects):
    write_dcraw(defects, tmp_path / "dcraw.badpixels")
    write_rawtherapee(defects, tmp_path, "Canon", "EOS 6D")
    write_siril(defects, tmp_path / "siril.lst", H)
    write_mask_png(defects, (H, W), tmp_path / "mask.png")
    write_dcraw(defects, tmp_path / "dcraw.badpixels")  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["dcraw.badpixels", "Canon EOS 6D.badpixels", "siril.lst", "mask.png"]
    )


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, defects, monkeypatch):
    target = tmp_path / "siril.lst"
    target.write_text("# old\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        write_siril(defects, target, H)
    assert target.read_text() == "# old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["siril.lst"]


def test_files_are_not_private(tmp_path):
    p = write_dcraw([], tmp_path / "dcraw.badpixels")
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask
