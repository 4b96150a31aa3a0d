"""The encoders: every format reads back as the expected arrays; DNG is a real CFA raw."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from pipeline.synth import synthesize
from pipeline.synth.sensor import BLACK_LEVEL, MAKE, MODEL, WHITE_LEVEL
from pipeline.synth.writers import MOSAIC_FORMATS

from .conftest import SIZE, load_stack


@pytest.mark.parametrize("fmt", ["jpeg", "png", "tiff", "tiff16", "png16", "dng"])
def test_every_format_writes_expected_arrays(tmp_path, fmt):
    if fmt == "dng":
        pytest.importorskip("pidng")
    truth = synthesize(tmp_path, frames=2, size=(64, 48), fmt=fmt, seed=2, defects_per_kind=3)
    stack = load_stack(tmp_path, truth)
    if fmt in MOSAIC_FORMATS:
        assert stack.shape == (2, 48, 64)
        assert stack.max() <= WHITE_LEVEL
        assert all(d["channel"] == 0 for d in truth["defects"])
    else:
        assert stack.shape == (2, 48, 64, 3)
        assert all(d["channel"] == "RGB".index(d["color"]) for d in truth["defects"])


# --------------------------------------------------------------------------- DNG


def test_dng_reads_back_exact_mosaic_and_pattern(tmp_path):
    pytest.importorskip("pidng")
    rawpy = pytest.importorskip("rawpy")
    tifffile = pytest.importorskip("tifffile")
    truth = synthesize(tmp_path / "dng", frames=2, size=SIZE, fmt="dng", seed=4)
    ref = synthesize(tmp_path / "tif", frames=2, size=SIZE, fmt="tiff16", seed=4)
    assert [d | {"channel": 0} for d in truth["defects"]] == ref["defects"]
    for name, ref_name in zip(truth["files"], ref["files"]):
        with rawpy.imread(str(tmp_path / "dng" / name)) as raw:
            mosaic = raw.raw_image_visible.copy()
            np.testing.assert_array_equal(raw.raw_pattern, [[0, 1], [3, 2]])
            assert raw.color_desc == b"RGBG"
            assert list(raw.black_level_per_channel) == [BLACK_LEVEL] * 4
            assert raw.white_level == WHITE_LEVEL
            assert raw.postprocess().shape == (SIZE[1], SIZE[0], 3)
        assert mosaic.dtype == np.uint16
        np.testing.assert_array_equal(mosaic, tifffile.imread(tmp_path / "tif" / ref_name))
    with tifffile.TiffFile(tmp_path / "dng" / truth["files"][0]) as tif:
        tags = tif.pages[0].tags
        assert (tags["Make"].value, tags["Model"].value) == (MAKE, MODEL)


def test_dng_without_pidng_names_the_extra(tmp_path, monkeypatch):
    for name in ("pidng", "pidng.core", "pidng.defs", "pidng.dng"):
        monkeypatch.setitem(sys.modules, name, None)  # as if pidng were not installed
    with pytest.raises(RuntimeError, match=r"pip install 'hotpixels\[synth\]'"):
        synthesize(tmp_path, frames=1, size=(64, 48), fmt="dng", defects_per_kind=3)
