"""``pixinsight_defects.txt``, loaded and applied as PixInsight's CosmeticCorrection does: exactly our sensels."""

import dataclasses
import re

import pytest

from pipeline.layout import SensorLayout
from pipeline.outputs.pixinsight import NAME, write_pixinsight
from pipeline.outputs.registry import ExportContext, write_exports
from pipeline.outputs.text import sensels
from pipeline.records import StackMeta

from .conftest import H, W, defect, distinct
from .parsers import pixinsight_load

LINE = re.compile(r"(Col|Row) \d+( \d+ \d+)?")  # what PixInsight's own Save writes


def line(x, y, kind, length):
    return dataclasses.replace(defect(x, y, kind), length=length)


def body(path):
    return path.read_text().splitlines()


def test_pixinsight_fixes_exactly_our_pixels(tmp_path, defects):
    p = write_pixinsight(defects, (H, W, 3), tmp_path / NAME)
    assert pixinsight_load(p, W, H) == distinct(defects)
    assert all(LINE.fullmatch(ln) for ln in body(p))  # no comment: PixInsight takes every line as a defect
    assert "Col 5 7 7" in body(p)  # a single sensel is a range of one


def test_whole_and_partial_lines(tmp_path):
    defects = sensels([line(30, 0, "column", H), line(8, 5, "column", 4), line(0, 25, "row", W),
                       line(3, 2, "row", 5)], 1)
    p = write_pixinsight(defects, (H, W), tmp_path / NAME)
    assert body(p) == ["Col 8 5 8", "Col 30", "Row 2 3 7", "Row 25"]
    expected = {(30, y) for y in range(H)} | {(8, y) for y in range(5, 9)} | {(x, 25) for x in range(W)} | \
        {(x, 2) for x in range(3, 8)}
    assert pixinsight_load(p, W, H) == expected


def test_adjacent_sensels_of_a_column_merge_into_one_range(tmp_path):
    p = write_pixinsight([defect(3, 4), defect(3, 5, "dead"), defect(3, 6, "stuck"), defect(3, 9)], (H, W), tmp_path / NAME)
    assert body(p) == ["Col 3 4 6", "Col 3 9 9"]


def test_mosaic_lines_fix_their_colour_only(tmp_path):
    """A column of a Bayer mosaic is every other sensel: a range would repaint the other colour's
    sensels between them, so each is its own one-sensel range."""
    meta = StackMeta(dtype="uint16", layout=SensorLayout.of_file([[0, 1], [1, 2]], "RGBG"), raw=True)
    ctx = ExportContext(tmp_path, [line(7, 1, "column", H // 2), line(2, 30, "row", 4)], (H, W), 10, meta)
    assert write_exports(["pixinsight"], ctx) == [tmp_path / NAME]
    fixed = pixinsight_load(tmp_path / NAME, W, H)
    assert fixed == {(7, y) for y in range(1, H, 2)} | {(x, 30) for x in (2, 4, 6, 8)}
    assert "Col 7 1 1" in body(tmp_path / NAME) and "Row 30 2 2" in body(tmp_path / NAME)


def test_no_defect_is_an_empty_list(tmp_path):
    p = write_pixinsight([], (H, W), tmp_path / NAME)
    assert p.read_bytes() == b"" and pixinsight_load(p, W, H) == set()


def test_the_loader_model_refuses_what_pixinsight_refuses(tmp_path):
    """A comment line is a column whose address is no number: PixInsight's load throws."""
    bad = tmp_path / "bad.txt"
    bad.write_text("# hotpixels\nCol 3\n")
    with pytest.raises(ValueError):
        pixinsight_load(bad, W, H)


def test_pixinsight_rejects_out_of_range(tmp_path):
    with pytest.raises(ValueError):
        write_pixinsight([defect(W, 0)], (H, W), tmp_path / NAME)
