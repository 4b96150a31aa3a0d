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


def test_dcraw_time_is_the_onset_so_earlier_frames_are_left_alone(tmp_path):
    """A defect that appeared on a date is fixed by dcraw in frames taken from that day on only;
    one there from the start (no ``since``) in every frame; channels that disagree: the earliest."""
    import calendar
    import dataclasses

    day = "2025-03-16"
    onset = calendar.timegm((2025, 3, 16, 0, 0, 0))
    late = dataclasses.replace(defect(10, 4), since=day)
    defects = [defect(3, 3), late, dataclasses.replace(defect(30, 20, channel=1), since="2025-05-01"),
               dataclasses.replace(defect(30, 20, channel=2), since=day)]
    p = write_dcraw(defects, tmp_path / "dcraw.badpixels", shape=(H, W))
    assert sorted(dcraw_bad_pixels(p, W, H, timestamp=onset - 1)) == [(3, 3)]
    assert sorted(dcraw_bad_pixels(p, W, H, timestamp=onset)) == [(3, 3), (10, 4), (30, 20)]


def test_partial_lines_reach_every_tool_sensel_by_sensel(tmp_path):
    """A column of a mosaic (every other sensel, one colour) is one record in defects.csv but
    the tools that know pixels get each of its sensels."""
    import dataclasses

    from pipeline.layout import SensorLayout
    from pipeline.outputs.registry import ExportContext
    from pipeline.records import StackMeta

    column = dataclasses.replace(defect(7, 2, kind="column"), length=5)
    row = dataclasses.replace(defect(1, 30, kind="row"), length=3)
    meta = StackMeta(dtype="uint16", layout=SensorLayout.of_file([[0, 1], [1, 2]], "RGBG"))
    ctx = ExportContext(tmp_path, [column, row, defect(50, 10)], (H, W), 10, meta)
    p = write_dcraw(ctx.sensels(), tmp_path / "dcraw.badpixels", shape=(H, W))
    assert sorted(dcraw_bad_pixels(p, W, H)) == sorted(
        [(7, y) for y in (2, 4, 6, 8, 10)] + [(x, 30) for x in (1, 3, 5)] + [(50, 10)])
