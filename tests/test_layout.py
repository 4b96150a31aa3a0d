"""The sensor layout has one source of truth: a Bayer mosaic saved as gray 16-bit PNG is scanned as
a mosaic, the one the user declares (--cfa) or the one its levels show, and everything downstream
reads that one layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline import Config, scan
from pipeline.cli import main as cli_main
from pipeline.defect import read_csv
from pipeline.layout import LayoutError, SensorLayout
from pipeline.scan import MergeRefused
from pipeline.state.files import read_files_csv
from pipeline.synth import synthesize

from .conftest import saved_attrs, write_stack

QUIET = {"progress": False, "log": lambda m: None}


def test_bayer_names_and_their_colours():
    for name in ("RGGB", "bggr", "GRBG", "GBRG"):
        layout = SensorLayout.bayer(name)
        assert layout.mosaic and layout.stride == 2 and layout.name == name.upper()
    assert SensorLayout.bayer("GBRG").cfa == ((1, 2), (0, 1))
    with pytest.raises(LayoutError, match="expected one of RGGB, BGGR, GRBG, GBRG"):
        SensorLayout.bayer("RGBG")
    assert SensorLayout().stride == 1 and not SensorLayout().mosaic and SensorLayout().name == ""
    round_trip = SensorLayout.from_attrs(SensorLayout.bayer("GRBG").to_attrs())
    assert round_trip == SensorLayout.bayer("GRBG")


@pytest.fixture(scope="module")
def mosaic_png(tmp_path_factory):
    root = tmp_path_factory.mktemp("png16")
    truth = synthesize(root / "frames", frames=24, size=(320, 240), fmt="png16", seed=3)
    return root, truth


def cfa_config(cfa):
    config = Config()
    config.scan.batch_size = 6
    config.scan.cfa = cfa
    return config


def test_a_gray_png_mosaic_declared_with_cfa_is_scanned_per_sensel(mosaic_png, tmp_path, local_client):
    """synth writes an RGGB mosaic into 16-bit gray PNGs: with --cfa RGGB its strong defects are found
    at their exact sensel, with their CFA colour; the stats' stride and attrs say mosaic."""
    root, truth = mosaic_png
    result = scan([str(root / "frames")], tmp_path / "out", cfa_config("RGGB"), client=local_client, **QUIET)
    attrs = saved_attrs(tmp_path / "out")
    assert attrs["cfa_pattern"] == [[0, 1], [1, 2]] and attrs["color_desc"] == "RGB"
    assert attrs["neighbour_stride"] == 2 and "RGGB" in attrs["group"]
    found = {(d.x, d.y): d for d in read_csv(tmp_path / "out" / "defects.csv")}
    strong = [t for t in truth["defects"] if t["kind"] in ("hot", "stuck") and not t.get("warm")]
    assert strong
    for t in strong:
        d = found.get((t["x"], t["y"]))
        assert d is not None, t
        assert d.color == t["color"], (t, d)  # the sensel's own CFA colour
    assert result.meta.layout == SensorLayout.bayer("RGGB")


def test_without_cfa_the_same_files_are_read_as_the_mosaic_they_show_and_the_merge_refuses_another(
        mosaic_png, tmp_path, local_client):
    """Undeclared, the lit mosaic is read as the first pattern its levels fit (RGGB of RGGB or
    BGGR: the same planes); the other pattern, declared, is another layout for --merge."""
    root, truth = mosaic_png
    scan([str(root / "frames")], tmp_path / "out", cfa_config(None), client=local_client, **QUIET)
    attrs = saved_attrs(tmp_path / "out")
    assert truth["cfa"] == "RGGB" and attrs["cfa_pattern"] == [[0, 1], [1, 2]] and attrs["neighbour_stride"] == 2
    assert {d.color for d in read_csv(tmp_path / "out" / "defects.csv")} <= {"R", "G", "B"}
    with pytest.raises(MergeRefused, match="cfa 'RGGB' vs 'BGGR'"):
        scan([str(root / "frames")], tmp_path / "out", cfa_config("BGGR"), client=local_client, merge=True, **QUIET)


def test_files_that_cannot_be_the_declared_mosaic_are_skipped_with_the_reason(tmp_path, local_client):
    rng = np.random.default_rng(0)
    write_stack(tmp_path / "in", rng.integers(0, 4000, (6, 32, 40)).astype(np.uint16))
    write_stack(tmp_path / "in", rng.integers(0, 255, (2, 32, 40, 3)).astype(np.uint8), prefix="rgb")
    scan([str(tmp_path / "in")], tmp_path / "out", cfa_config("BGGR"), client=local_client, **QUIET)
    skipped = {s.path.rsplit("/", 1)[-1]: s.reason for s in read_files_csv(tmp_path / "out") if not s.used}
    assert set(skipped) == {"rgb_0000.png", "rgb_0001.png"}
    assert all("--cfa BGGR names a mosaic" in why and "3 channels" in why for why in skipped.values())


def test_cli_takes_cfa_and_refuses_an_unknown_pattern(mosaic_png, tmp_path, capsys):
    root, _ = mosaic_png
    assert cli_main(["scan", str(root / "frames"), "--out", str(tmp_path / "o"), "--cfa", "XYZW", "--no-progress"]) == 2
    assert "unknown CFA pattern 'XYZW'" in capsys.readouterr().err
    json.dumps(SensorLayout.bayer("RGGB").to_attrs())  # what stats.zarr stores is plain JSON
