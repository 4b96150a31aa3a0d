"""RawTherapee's ``<Make> <Model>.badpixels``, read back as RawTherapee reads it, whatever the camera's names."""

import pytest

from pipeline.outputs.rawtherapee import rawtherapee_name, write_rawtherapee, write_rawtherapee_files

from .conftest import defect, distinct
from .parsers import rawtherapee_lookup, rawtherapee_scan, sscanf_ints


def test_rawtherapee_round_trip(tmp_path, defects):
    p = write_rawtherapee(defects, tmp_path, "Canon", "Canon EOS 5D Mark III")
    assert p == tmp_path / "Canon EOS 5D Mark III.badpixels"
    makmodel, bp = rawtherapee_scan(p)
    assert makmodel == "Canon EOS 5D Mark III"  # RawTherapee looks up make + " " + model
    assert sorted(bp) == sorted(distinct(defects))
    assert len(bp) == len(set(bp))
    assert sscanf_ints(p.read_text().splitlines()[0], 2) == []  # first line is never an offset


def test_rawtherapee_make_normalised_like_dcraw(tmp_path):
    p = write_rawtherapee([defect(1, 2)], tmp_path, "NIKON CORPORATION", "NIKON D850")
    assert p.name == "Nikon D850.badpixels"


@pytest.mark.parametrize(
    "make,model", [(None, "X"), ("Canon", None), ("", "X"), ("  ", "X"), ("unknown", "Y"), ("\x00", "Z"), ("..", "..")]
)
def test_rawtherapee_unknown_camera_writes_nothing(tmp_path, make, model):
    assert write_rawtherapee([defect(1, 2)], tmp_path, make, model) is None
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
    p = write_rawtherapee([defect(3, 4)], out, make, model)
    assert p is not None
    assert p.resolve().parent == out.resolve()
    assert sorted(tmp_path.iterdir()) == [out]  # nothing created next to out_dir
    assert list(out.iterdir()) == [p]
    name = p.name
    assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
    assert all(ch.isprintable() for ch in name)
    assert len(name.encode()) < 255
    assert rawtherapee_scan(p)[1] == [(3, 4)]


# --------------------------------------------------------------------------- the serial's own file


def test_serial_file_is_found_first_by_rawtherapee(tmp_path, defects):
    paths = write_rawtherapee_files(defects, tmp_path, "Canon", "Canon EOS 6D", "012345678901")
    assert paths == [tmp_path / "Canon EOS 6D.badpixels", tmp_path / "Canon EOS 6D 012345678901.badpixels"]
    assert paths[0].read_bytes() == paths[1].read_bytes()  # the same list under both names
    key, bp = rawtherapee_scan(paths[1])
    assert key == "Canon EOS 6D 012345678901"  # getBadPixels' first key: mak + " " + mod + " " + serial
    assert sorted(bp) == sorted(distinct(defects))
    # RawTherapee's own lookup in its dark-frame folder: the serial's file for that body ...
    assert rawtherapee_lookup(tmp_path, "Canon", "EOS 6D", "012345678901")[0] == "Canon EOS 6D 012345678901"
    # ... and the model's for another body, or where RawTherapee finds no serial
    assert rawtherapee_lookup(tmp_path, "Canon", "EOS 6D", "999")[0] == "Canon EOS 6D"
    assert rawtherapee_lookup(tmp_path, "Canon", "EOS 6D", "")[0] == "Canon EOS 6D"


def test_plain_function_keeps_its_contract_with_a_serial(tmp_path):
    p = write_rawtherapee([defect(1, 2)], tmp_path, "NIKON CORPORATION", "NIKON D850", "3012345")
    assert p == tmp_path / "Nikon D850.badpixels"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["Nikon D850 3012345.badpixels", "Nikon D850.badpixels"]
    assert rawtherapee_name("NIKON CORPORATION", "NIKON D850", "3012345") == "Nikon D850 3012345.badpixels"


@pytest.mark.parametrize("serial", ["../x", "a/b", "12..", "12.", " 123", "123 ", "a  b", "x" * 100, "\x00", "é1",
                                    "C:", "1\n2"])
def test_a_serial_no_safe_name_can_hold_writes_the_models_file_only(tmp_path, serial):
    paths = write_rawtherapee_files([defect(3, 4)], tmp_path, "Canon", "EOS 6D", serial)
    assert paths == [tmp_path / "Canon EOS 6D.badpixels"] and list(tmp_path.iterdir()) == paths


@pytest.mark.parametrize("serial", ["0", "AB-12_3", "SN 1234", "1.2", "A+B"])
def test_ordinary_serials_are_kept_verbatim(tmp_path, serial):
    own = write_rawtherapee_files([defect(3, 4)], tmp_path, "Sony", "ILCE-7M3", serial)[1]
    assert rawtherapee_scan(own)[0] == f"Sony ILCE-7M3 {serial}"


def test_rawtherapee_exporter_writes_both_names(tmp_path):
    from pipeline.outputs.registry import ExportContext, write_exports
    from pipeline.records import StackMeta

    meta = StackMeta(dtype="uint16", raw=True, make="FUJIFILM", model="X-T3", serial="51A12345")
    ctx = ExportContext(tmp_path, [defect(3, 4)], (40, 60), 5, meta)
    assert write_exports(["rawtherapee"], ctx) == [tmp_path / "Fujifilm X-T3.badpixels",
                                                   tmp_path / "Fujifilm X-T3 51A12345.badpixels"]
    ctx = ExportContext(tmp_path, [defect(3, 4)], (40, 60), 5, StackMeta(dtype="uint16", make="Canon", model="R5"))
    assert write_exports(["rawtherapee"], ctx) == [tmp_path / "Canon R5.badpixels"]
