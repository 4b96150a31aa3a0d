"""RawTherapee's ``<Make> <Model>.badpixels``, read back as RawTherapee reads it, whatever the camera's names."""

import pytest

from pipeline.outputs.rawtherapee import write_rawtherapee

from .conftest import defect, distinct
from .parsers import rawtherapee_scan, sscanf_ints


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
