"""Siril's ``siril.lst``, read back as Siril's ``cosme`` reads it: rows, hot and cold types, line lengths."""

import pytest

from pipeline.outputs.siril import write_siril

from .conftest import H, W, defect, distinct
from .parsers import siril_bpm_sanity, siril_cosme, siril_fixed, siril_read


def _siril_memory_row_for_upright_input(y_stored: int, height: int) -> int:
    """Siril's raw/TIFF/PNG/JPEG loaders store rows bottom-up (row 0 = bottom of the picture)."""
    return height - 1 - y_stored


def test_siril_round_trip_upright_inputs(tmp_path, defects):
    p = write_siril(defects, tmp_path / "siril.lst", H)
    points, errors = siril_cosme(p, H)
    assert errors == []
    hit = {(x, ymem) for x, ymem, _ in points}
    expected = {(x, _siril_memory_row_for_upright_input(y, H)) for x, y in distinct(defects)}
    assert hit == expected  # Siril corrects exactly our pixels, not their mirror images
    assert len(points) == len(hit)


def test_siril_flip_y_for_fits(tmp_path, defects):
    """Siril loads a FITS unflipped, whatever its ROWORDER (memory row = stored row): then y must be flipped."""
    p = write_siril(defects, tmp_path / "siril.lst", H, flip_y=True)
    points, errors = siril_cosme(p, H)
    assert errors == []
    assert {(x, ymem) for x, ymem, _ in points} == distinct(defects)
    rows = (ln.split() for ln in p.read_text().splitlines() if ln[0] == "P")
    written = {(int(a), int(b)) for _, a, b, _ in rows}
    assert written == {(x, H - 1 - y) for x, y in distinct(defects)}


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
        write_siril([defect(0, H)], tmp_path / "siril.lst", H)


# --------------------------------------------------------------------------- lines, -cc=bpm


def line(x, y, kind, length, score=10.0):
    import dataclasses

    return dataclasses.replace(defect(x, y, kind, score=score), length=length)


def test_siril_lst_passes_calibrate_bpm_check(tmp_path, defects):
    """calibrate -cc=bpm refuses the whole map unless every line starts with "P ", "C " or "#"."""
    everything = defects + [line(30, 0, "column", H), line(0, 25, "row", W)]
    p = write_siril(everything, tmp_path / "siril.lst", H, width=W, rows_path=tmp_path / "siril_rows.lst")
    assert siril_bpm_sanity(p)
    assert siril_read(p, W, H)["errors"] == []
    text = p.read_text()
    assert "\n\n" not in text and text.endswith("\n") and not text.startswith("\n")
    assert all(ln[:2] in ("P ", "C ") or ln[0] == "#" for ln in text.splitlines())
    assert "siril_rows.lst" in text  # the main list says where the rows went


def test_siril_bpm_check_is_modelled_as_siril_has_it(tmp_path):
    """The parser's check is Siril's: it accepts P, C and # lines and refuses L and blank lines."""
    ok, with_l, blank = tmp_path / "a.lst", tmp_path / "b.lst", tmp_path / "c.lst"
    ok.write_text("# c\nP 1 2 H\nC 3 0 H\n")
    with_l.write_text("# c\nL 3 0 H\n")
    blank.write_text("# c\n\nP 1 2 H\n")
    assert siril_bpm_sanity(ok) and not siril_bpm_sanity(with_l) and not siril_bpm_sanity(blank)


def test_whole_column_is_one_c_line_partial_one_p_lines(tmp_path):
    whole, partial = line(30, 0, "column", H), line(8, 5, "column", 4)
    p = write_siril([whole, partial, defect(30, 12), defect(31, 12)], tmp_path / "siril.lst", H, width=W)
    body = [ln for ln in p.read_text().splitlines() if not ln.startswith("#")]
    assert body[0] == "C 30 0 H"  # columns first; no P line left in the fixed column
    assert "P 30 12 H" not in body and "P 31 12 H" in body
    assert [ln for ln in body if ln.startswith("P 8 ")] == [f"P 8 {y} H" for y in range(5, 9)]
    fixed = siril_fixed(p, W, H)  # Siril's memory rows: bottom-up
    assert {(30, y) for y in range(H)} <= fixed
    assert {(8, H - 1 - y) for y in range(5, 9)} <= fixed and (8, H - 1 - 9) not in fixed
    assert fixed == {(30, y) for y in range(H)} | {(8, H - 1 - y) for y in range(5, 9)} | {(31, H - 1 - 12)}


def test_mosaic_column_of_one_colour_is_whole_at_its_stride(tmp_path):
    """In a Bayer mosaic a column defect is one colour, every other sensel: from row 1 to the
    last of its colour it is the whole column, a C line (which Siril applies to the column)."""
    whole = line(9, 1, "column", H // 2)
    partial = line(11, 1, "column", H // 2 - 1)  # stops one sensel of its colour short
    p = write_siril([whole, partial], tmp_path / "siril.lst", H, width=W, stride=2)
    body = [ln for ln in p.read_text().splitlines() if not ln.startswith("#")]
    assert body[0] == "C 9 0 H"
    assert body[1:] == [f"P 11 {y} H" for y in range(1, H - 2, 2)]


def test_whole_rows_go_to_their_own_list_for_cosme(tmp_path):
    rows = tmp_path / "siril_rows.lst"
    row, partial = line(0, 25, "row", W), line(3, 2, "row", 5)
    for flip in (False, True):
        p = write_siril([row, partial, defect(4, 4)], tmp_path / "siril.lst", H, width=W, rows_path=rows, flip_y=flip)
        assert rows.exists() and not siril_bpm_sanity(rows)  # L lines: for cosme, not -cc=bpm
        assert siril_read(rows, W, H)["errors"] == []
        assert [ln for ln in rows.read_text().splitlines() if not ln.startswith("#")] == \
            [f"L {H - 1 - 25 if flip else 25} 0 H"]
        expected_row = 25 if flip else H - 1 - 25  # Siril's memory row, the same convention as P
        assert siril_fixed(rows, W, H) == {(x, expected_row) for x in range(W)}
        main = siril_read(p, W, H)
        assert main["rows"] == [] and main["errors"] == []
        assert all(ln.startswith(("#", "P ")) for ln in p.read_text().splitlines())
        row_2 = H - 1 - 2 if not flip else 2  # memory row of stored row 2
        assert sorted(x for x, y, _ in main["points"] if y == row_2) == [3, 4, 5, 6, 7]  # the partial row: P lines
        assert len(main["points"]) == 6  # and the hot pixel; nothing of the whole row
    write_siril([defect(4, 4)], tmp_path / "siril.lst", H, width=W, rows_path=rows)
    assert not rows.exists()  # no row now: no stale list
    assert "siril_rows" not in (tmp_path / "siril.lst").read_text()


def test_siril_exporter_writes_the_row_list_only_with_rows(tmp_path):
    from pipeline.layout import SensorLayout
    from pipeline.outputs.registry import ExportContext, write_exports
    from pipeline.records import StackMeta

    meta = StackMeta(dtype="uint16", layout=SensorLayout.of_file([[0, 1], [1, 2]], "RGBG"), raw=True)
    ctx = ExportContext(tmp_path, [defect(2, 2), line(1, 0, "row", W // 2)], (H, W), 5, meta)
    assert write_exports(["siril"], ctx) == [tmp_path / "siril.lst", tmp_path / "siril_rows.lst"]
    assert siril_bpm_sanity(tmp_path / "siril.lst")
    ctx = ExportContext(tmp_path, [defect(2, 2)], (H, W), 5, meta)
    assert write_exports(["siril"], ctx) == [tmp_path / "siril.lst"]
    assert not (tmp_path / "siril_rows.lst").exists()


def test_siril_line_lists_fit_old_readers(tmp_path):
    rows = tmp_path / "siril_rows.lst"
    p = write_siril([line(30, 0, "column", H), line(0, 25, "row", 200), defect(99, 3)], tmp_path / "siril.lst", H,
                    width=200, rows_path=rows, period=6)
    for f in (p, rows):
        lines = f.read_text().split("\n")
        assert lines[-1] == "" and all(ln and len(ln) < 62 for ln in lines[:-1])
