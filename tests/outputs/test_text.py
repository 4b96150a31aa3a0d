"""What every exporter shares: camera-based file names, valid empty files, atomic writes, ordinary permissions."""

from __future__ import annotations

import os

import imageio.v3 as iio
import pytest

from pipeline.outputs.dcraw import write_dcraw
from pipeline.outputs.mask_png import write_mask_png
from pipeline.outputs.rawtherapee import write_rawtherapee
from pipeline.outputs.siril import write_siril
from pipeline.outputs.text import camera_filename
from pipeline.state import atomic

from .conftest import H, W
from .parsers import dcraw_bad_pixels, rawtherapee_scan, siril_cosme


def test_camera_filename_is_stable_and_public():
    assert camera_filename("SONY", "ILCE-7M3") == "Sony ILCE-7M3.badpixels"
    assert camera_filename("Canon", "EOS R5", suffix=".txt") == "Canon EOS R5.txt"
    assert camera_filename("  Fuji  Photo ", "X  T4 ") == "Fuji Photo X T4.badpixels"
    assert camera_filename(b"Canon", b"EOS 6D") == "Canon EOS 6D.badpixels"
    assert camera_filename("Unknown", "X") is None


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
