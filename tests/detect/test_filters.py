"""The robust filters: pseudo-medians in stripes, at points and in bands are the whole map's; gathers reflect."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pipeline.detect import filters, stripes
from pipeline.detect.filters import pseudo_median, pseudo_median_rows
from pipeline.detect.rings import CROSS

from .stacks import views_of


def test_pseudo_median_ignores_a_blob_smaller_than_half_the_window():
    a = np.zeros((20, 20), np.float32)
    a[9:12, 9:12] = 100  # a 3x3 blob: one sensel after bilinear demosaicing
    assert pseudo_median(a, 5, 2).max() == 0
    assert pseudo_median(a, 5, 1)[10, 10] == 100  # dense 5x5: the blob is most of the middle rows


# --------------------------------------------------------------------------- memory: stripes and points
def _pseudo_median_whole(a, window, spacing):
    """The reference: the whole array padded at once, then the median of row medians."""
    p = (window // 2) * spacing
    h, w = a.shape
    ap = np.pad(a, p, mode=filters.pad_mode(a.shape, p)) if p else a
    offs = [k * spacing for k in range(window)]
    rows = np.median(np.stack([ap[:, o : o + w] for o in offs]), axis=0)
    return np.median(np.stack([rows[o : o + h] for o in offs]), axis=0).astype(a.dtype)


@pytest.mark.parametrize("shape", [(1, 9), (3, 5), (4, 9), (9, 4), (37, 53)])
@pytest.mark.parametrize("window,spacing", [(3, 1), (5, 1), (5, 2), (7, 2)])
def test_pseudo_median_in_stripes_and_at_points_equals_the_whole_map(monkeypatch, shape, window, spacing):
    """The detector drops its maps and rebuilds values at the candidates: they must be the same numbers."""
    monkeypatch.setattr(stripes, "STRIPE_VALUES", 16)  # stripes of 8 rows: every edge case of the padding
    a = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    ref = _pseudo_median_whole(a, window, spacing)
    with ThreadPoolExecutor(2) as pool:
        np.testing.assert_array_equal(pseudo_median(a, window, spacing, pool), ref)
    ys, xs = np.divmod(np.arange(a.size), shape[1])
    vy, vx = filters.grid_points(ys, xs, shape, window, spacing)
    np.testing.assert_array_equal(filters.pseudo_median_points(a[vy, vx]), ref[ys, xs])


def test_block_median_is_numpys():
    x = np.random.default_rng(1).standard_normal((6, 5, 16)).astype(np.float32)
    x[1, 2, 3] = np.nan
    for k in (16, 15):
        np.testing.assert_array_equal(filters.median_last(x[..., :k]), np.median(x[..., :k], axis=-1))
        np.testing.assert_array_equal(filters.median_last(x[..., :k], keepdims=True), np.median(x[..., :k], axis=-1, keepdims=True))


@pytest.mark.parametrize("shape", [(1, 9), (2, 2), (3, 5), (9, 4), (37, 53)])
def test_gather_is_the_reflected_values(shape):
    """``gather`` reads by flat indices and reflects only near the border: the same values as
    indexing with reflected rows and columns everywhere."""
    a = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    ys, xs = np.divmod(np.arange(a.size), shape[1])
    for offsets in (filters.window_offsets(5, 2), filters.window_offsets(7, 2), filters.window_offsets(3, 1), CROSS, ((0, 0),)):
        ref = np.stack([a[filters.reflect(ys + dy, shape[0]), filters.reflect(xs + dx, shape[1])] for dy, dx in offsets], axis=1)
        for view in views_of(a):
            np.testing.assert_array_equal(filters.gather(view, ys, xs, offsets), ref)




@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spacing", [1, 2])
def test_the_compiled_pseudo_median_is_numpy_s_bit_for_bit(dtype, spacing):
    """NaNs, infinities and zeros of both signs included: min/max keep numpy's rules."""
    rng = np.random.default_rng(11)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    for width in (3, 7, 64, 301):
        a = rng.normal(size=(40, width)).astype(dtype)
        for value, share in ((np.nan, 0.02), (0.0, 0.2), (-0.0, 0.2), (np.inf, 0.01), (-np.inf, 0.01)):
            a[rng.random(a.shape) < share] = value
        # the whole plane, and bands of a taller one: inside it, and at its bottom edge
        for r0, r1, top, height in ((0, 40, 0, None), (10, 30, 0, None), (35, 40, 0, None), (10, 30, 3, 60),
                                    (50, 60, 20, 60)):
            got = pseudo_median_rows(a, r0, r1, 5, spacing, top=top, height=height)
            want = pseudo_median_rows(a, r0, r1, 5, spacing, top=top, height=height, compiled=False)
            assert got.dtype == want.dtype
            same = (got.view(bits) == want.view(bits)) | (np.isnan(got) & np.isnan(want))
            assert same.all(), (width, r0, r1)
