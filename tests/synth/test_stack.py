"""synthesize: the files and truth.json it writes, determinism, reruns and argument checks."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from pipeline.synth import synthesize
from pipeline.synth.sensor import BLACK_LEVEL, WHITE_LEVEL

from .conftest import SIZE


def test_files_and_truth_written(tmp_path):
    truth = synthesize(tmp_path, frames=5, size=SIZE, fmt="jpeg", seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"frame_{i:04d}.jpg" for i in range(5)] + ["truth.json"]
    assert json.loads((tmp_path / "truth.json").read_text()) == truth
    assert truth["format"] == "jpeg" and truth["size"] == list(SIZE) and truth["frames"] == 5
    assert truth["dark"] is False and truth["seed"] == 1 and truth["cfa"] == "RGGB"
    assert truth["black_level"] == BLACK_LEVEL and truth["white_level"] == WHITE_LEVEL
    img = iio.imread(tmp_path / "frame_0000.jpg")
    assert img.shape == (SIZE[1], SIZE[0], 3) and img.dtype == np.uint8
    for d in truth["defects"]:
        assert {"x", "y", "kind", "channel", "color", "amplitude"} <= d.keys()


def test_deterministic_for_a_seed(tmp_path):
    a = synthesize(tmp_path / "a", frames=4, size=SIZE, fmt="png16", seed=11)
    b = synthesize(tmp_path / "b", frames=4, size=SIZE, fmt="png16", seed=11)
    c = synthesize(tmp_path / "c", frames=4, size=SIZE, fmt="png16", seed=12)
    assert a == b
    for name in a["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a["defects"] != c["defects"]
    assert not np.array_equal(iio.imread(tmp_path / "a" / a["files"][0]), iio.imread(tmp_path / "c" / c["files"][0]))


def test_frames_do_not_depend_on_frame_count_or_format(tmp_path):
    """Frame i is the same sensor readout whatever the stack length and the encoding."""
    short = synthesize(tmp_path / "short", frames=2, size=SIZE, fmt="tiff16", seed=3)
    long = synthesize(tmp_path / "long", frames=4, size=SIZE, fmt="png16", seed=3)
    # dead amplitudes are measured over the stack (mean signal lost), everything else is fixed
    strip = lambda defects: [{k: v for k, v in d.items() if d["kind"] != "dead" or k != "amplitude"} for d in defects]
    assert strip(short["defects"]) == strip(long["defects"])
    assert short["exposures"] == long["exposures"][:2]
    for i in range(2):
        a = iio.imread(tmp_path / "short" / short["files"][i])
        b = iio.imread(tmp_path / "long" / long["files"][i])
        np.testing.assert_array_equal(a, b)


def test_rerun_replaces_previous_frames(tmp_path):
    synthesize(tmp_path, frames=6, size=SIZE, fmt="png", seed=0)
    (tmp_path / "notes.txt").write_text("mine")
    synthesize(tmp_path, frames=3, size=SIZE, fmt="jpeg", seed=0)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["frame_0000.jpg", "frame_0001.jpg", "frame_0002.jpg", "notes.txt", "truth.json"]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="unknown format"):
        synthesize("/nonexistent/never-written", fmt="bmp")
    with pytest.raises(ValueError, match="too small"):
        synthesize("/nonexistent/never-written", size=(20, 20))
    with pytest.raises(ValueError, match="frames"):
        synthesize("/nonexistent/never-written", frames=0)
