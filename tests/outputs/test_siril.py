"""Siril's ``siril.lst``, read back as Siril's ``cosme`` reads it: rows, hot and cold types, line lengths."""

import pytest

from pipeline.outputs.siril import write_siril

from .conftest import H, W, defect, distinct
from .parsers import siril_cosme


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
