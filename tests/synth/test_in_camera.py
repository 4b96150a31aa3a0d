"""In-camera processing: the bilinear demosaic, and defects that survive it into 8-bit JPEGs."""

from __future__ import annotations

import numpy as np

from pipeline.synth.in_camera import demosaic_bilinear

from .conftest import neighbours

# --------------------------------------------------------------------------- demosaic


def test_demosaic_keeps_own_colour_and_flat_fields():
    rng = np.random.default_rng(0)
    m = rng.random((10, 14)).astype(np.float32)
    rgb = demosaic_bilinear(m)
    np.testing.assert_array_equal(rgb[0::2, 0::2, 0], m[0::2, 0::2])
    np.testing.assert_array_equal(rgb[0::2, 1::2, 1], m[0::2, 1::2])
    np.testing.assert_array_equal(rgb[1::2, 0::2, 1], m[1::2, 0::2])
    np.testing.assert_array_equal(rgb[1::2, 1::2, 2], m[1::2, 1::2])
    np.testing.assert_allclose(demosaic_bilinear(np.full((7, 9), 0.3, np.float32)), 0.3, rtol=1e-6)


def test_demosaic_spreads_a_single_sensel_only_to_its_neighbours():
    m = np.zeros((8, 8), np.float32)
    m[4, 4] = 1.0  # an R site
    rgb = demosaic_bilinear(m)
    assert rgb[4, 4, 0] == 1.0 and rgb[4, 4, 1] == 0 and rgb[4, 4, 2] == 0
    assert rgb[..., 1:].sum() == 0  # never leaks into other colours
    np.testing.assert_array_equal(rgb[3:6, 3:6, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    assert rgb[..., 0].sum() == 4.0


# --------------------------------------------------------------------------- JPEG frames


def test_dark_jpeg_is_nearly_black(stacks):
    _, _, stack = stacks("jpeg", dark=True)
    assert stack.mean() < 10
    assert np.median(stack) <= 5


def test_jpeg_defects_visible_in_their_channel(stacks):
    _, truth, stack = stacks("jpeg")
    mean = stack.mean(axis=0)
    for d in truth["defects"]:
        x, y, c = d["x"], d["y"], d["channel"]
        excess = mean[y, x, c] - neighbours(mean[..., c], x, y, 1).mean()
        if d["kind"] == "stuck" and d["saturated"]:
            assert excess > 10, d
        elif d["kind"] == "hot" and d["amplitude"] > 1000 and d["color"] == "G":
            assert excess > 5, d
        elif d["kind"] == "dead" and not d["cold"] and d["color"] == "G":
            assert excess < -5, d


def test_dark_jpeg_hot_pixels_stand_out(stacks):
    """Dark JPEG hot pixels peak at their own pixel in their channel, far above the black frame.

    Demosaicing spreads half of a sensel's value to its neighbours, and JPEG's 4:2:0 chroma
    subsampling smears red and blue over 2x2 blocks, so neighbours light up too.
    """
    _, truth, stack = stacks("jpeg", dark=True)
    mean = stack.mean(axis=0)
    for d in truth["defects"]:
        if d["kind"] == "hot" and not d["warm"]:
            x, y, c = d["x"], d["y"], d["channel"]
            assert mean[y, x, c] > np.median(mean[..., c]) + 20, d
            assert mean[y, x, c] >= mean[y - 1 : y + 2, x - 1 : x + 2, c].max() - 1, d
