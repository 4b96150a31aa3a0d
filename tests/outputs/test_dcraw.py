"""dcraw / LibRaw ``dcraw.badpixels``, read back as dcraw's ``bad_pixels()`` reads it."""

import re

import pytest

from pipeline.outputs.dcraw import write_dcraw

from .conftest import H, W, defect, distinct
from .parsers import dcraw_bad_pixels


def test_dcraw_round_trip(tmp_path, defects):
    p = write_dcraw(defects, tmp_path / "dcraw.badpixels", ["run 42"], shape=(H, W, 3))
    fixed = dcraw_bad_pixels(p, W, H)
    assert sorted(fixed) == sorted(distinct(defects))
    assert len(fixed) == len(set(fixed))  # duplicates across channels collapsed
    body = [ln for ln in p.read_text().splitlines() if not ln.startswith("#")]
    assert all(re.fullmatch(r"\d+ \d+ 0", ln) for ln in body)
    text = p.read_text()
    assert f"{W} columns x {H} rows" in text and f"{len(fixed)} pixels" in text and "run 42" in text


def test_dcraw_time_zero_applies_to_any_image(tmp_path, defects):
    p = write_dcraw(defects, tmp_path / "dcraw.badpixels")
    assert sorted(dcraw_bad_pixels(p, W, H, timestamp=0)) == sorted(distinct(defects))


def test_dcraw_long_or_hostile_header_cannot_inject_pixels(tmp_path):
    evil = ["1 2 0 " * 100, "x\n7 8 0", "\r9 9 0"]
    p = write_dcraw([], tmp_path / "dcraw.badpixels", evil)
    assert dcraw_bad_pixels(p, W, H) == []
    assert all(len(ln) < 127 for ln in p.read_text().split("\n"))


def test_dcraw_rejects_out_of_range(tmp_path):
    with pytest.raises(ValueError):
        write_dcraw([defect(W, 0)], tmp_path / "dcraw.badpixels", shape=(H, W))
