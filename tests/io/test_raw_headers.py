"""A raw file's header without decoding it (``pipeline.io.raw``): the first file of a camera is read
in full by LibRaw, the next take its layout and levels and their own EXIF shooting data, read as
LibRaw reads them; where the two readings could differ, every file is read in full."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.io import raw
from pipeline.io.read import read_file, read_headers
from pipeline.synth import synthesize_collection


@pytest.fixture(autouse=True)
def no_templates():
    raw._TEMPLATES.clear()
    yield
    raw._TEMPLATES.clear()


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("collection")
    truth = synthesize_collection(folder, frames=12, size=(96, 64), fmt="dng", seed=4)
    return [folder / f for f in truth["files"]]


def _fields(h) -> dict:
    return {k: v for k, v in dataclasses.asdict(h).items() if k not in ("size", "mtime", "format")}


def test_headers_from_the_template_equal_libraw_s_own_for_every_file(collection):
    """Exposures of 1/4000-30 s, ISO 100-6400 and two years of dates: every field as LibRaw reads it."""
    headers = [read_headers(str(p))[0] for p in collection]
    full = [raw.Raw().probe_full(str(p), str(p)) for p in collection]
    assert [_fields(h) for h in headers] == [_fields(h) for h in full]
    assert len({h.exposure for h in headers}) > 3 and len({h.iso for h in headers}) > 2 and len({h.time for h in headers}) == 12
    assert list(raw._TEMPLATES.values()) == [full[0]]  # one camera: one template, the first file's


def test_a_file_after_the_template_is_not_decoded_to_read_its_header(collection, tmp_path):
    """Its pixels cut short, LibRaw cannot unpack it: its header still reads (no unpack), and the
    scan's decode skips it with LibRaw's reason."""
    data = collection[1].read_bytes()
    cut = tmp_path / "cut.dng"
    cut.write_bytes(data[: len(data) // 2])
    assert "cannot decode" in read_headers(str(cut))[0].error  # no template yet: read in full, and refused
    read_headers(str(collection[0]))
    header = read_headers(str(cut))[0]
    assert header.error == "" and header.shape == (64, 96) and header.exposure == read_headers(str(collection[1]))[0].exposure
    with pytest.raises(Exception, match="end of file|Input/output"):
        read_file(str(cut))


def _rename_exif_tag(path: Path, old: int, new: int) -> None:
    """Give an entry of the file's EXIF sub-IFD another tag number (in place)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        order = tif.byteorder
        ifd = tif.pages.first.tags[raw.exif.EXIF_IFD].valueoffset  # tifffile: where the sub-IFD is
    data = bytearray(path.read_bytes())
    (count,) = struct.unpack_from(order + "H", data, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from(order + "H", data, entry)[0] == old:
            struct.pack_into(order + "H", data, entry, new)
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"no EXIF tag {old} in {path}")


def test_a_camera_whose_exif_libraw_reads_otherwise_is_read_in_full(collection, tmp_path):
    """Without DateTimeOriginal LibRaw dates a file by its DateTime (IFD0): the EXIF reading has no
    date, the template is refused, and every file of that camera is read by LibRaw."""
    copies = []
    for p in collection[:3]:
        copy = tmp_path / p.name
        copy.write_bytes(p.read_bytes())
        _rename_exif_tag(copy, 36867, 36868)  # DateTimeOriginal -> DateTimeDigitized
        copies.append(copy)
    headers = [read_headers(str(p))[0] for p in copies]
    assert all(h.time is not None for h in headers)
    assert [_fields(h) for h in headers] == [_fields(raw.Raw().probe_full(str(p), str(p))) for p in copies]
    assert list(raw._TEMPLATES.values()) == [None]


def test_exif_shooting_data_as_libraw_gives_them():
    shot = raw.exif_shot({"ExposureTime": (1, 30), "ISOSpeedRatings": 3200, "DateTimeOriginal": "2024:05:17 10:00:00",
                          "OffsetTimeOriginal": "+02:00"})
    assert shot is not None
    assert shot.exposure == float(np.float32(1 / 30)) and shot.iso == 3200.0
    assert shot.time == 1715940000.0  # the wall clock read as UTC: LibRaw ignores the zone
    assert raw.exif_shot({}) == raw.exif.ShootingData()  # none: none, as LibRaw's zeros
    assert raw.exif_shot({"ISOSpeedRatings": 65535}) is None  # at the cap: LibRaw may read the maker's notes


def test_a_file_whose_exif_lacks_a_value_its_template_has_is_read_in_full(collection, tmp_path):
    read_headers(str(collection[0]))  # the template, dated
    copy = tmp_path / "undated.dng"
    copy.write_bytes(collection[2].read_bytes())
    _rename_exif_tag(copy, 36867, 36868)
    header = read_headers(str(copy))[0]
    assert header.time is not None and _fields(header) == _fields(raw.Raw().probe_full(str(copy), str(copy)))
