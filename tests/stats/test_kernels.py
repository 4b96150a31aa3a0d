"""The fused numba kernels against their numpy references (and the range counts against their definition)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stats import IntegerSums, PixelStats, accumulate, accumulate_numpy, max_batch_frames, row_neighbours
from pipeline.stats import fused as fused_module
from pipeline.stats.accumulate import BUFFER_TYPES, accumulate_fused
from pipeline.stats.moments import merge_fused, merge_numpy
from pipeline.stats.noise_bars import BAR_FLOOR, geometry
from pipeline.stats.sums import to_stats_fused, to_stats_numpy

from ..conftest import pad_rows_reflect
from .samples import assert_identical, assert_same_bits, both, padded, random_frames, random_stats, sums_of

pytest.importorskip("numba")


def bar_by_loops(frames, f, y, x, c, stride):
    """A sensel's noise bar in frame f by its definition (``noise_bars``): 4.4478 x the median |4r|
    of the sampled sensels of its colour in its block that have all 4 neighbours, rounded up,
    at least BAR_FLOOR; the samples every ``step`` pixels from ``first`` in, in blocks of ``side``
    (64, 8, 4 for strides 1 and 2; 48, 6, 0 for X-Trans's 6)."""
    height, width = frames.shape[1:3]
    side, step, first = geometry(stride)
    v = frames[f].astype(np.int64).reshape(height, width, -1)
    samples = []
    for yy in range(y // side * side, min(height, (y // side + 1) * side)):
        for xx in range(x // side * side, min(width, (x // side + 1) * side)):
            if (yy - y) % stride or (xx - x) % stride or (yy % side - first - y % stride) % step \
                    or (xx % side - first - x % stride) % step or yy % side < first or xx % side < first:
                continue
            if stride <= yy < height - stride and stride <= xx < width - stride:
                samples.append(abs(4 * v[yy, xx, c] - v[yy - stride, xx, c] - v[yy + stride, xx, c]
                                   - v[yy, xx - stride, c] - v[yy, xx + stride, c]))
    if not samples:
        return BAR_FLOOR
    return max(math.ceil(float(np.median(samples)) * 4.4478 - 1e-9), BAR_FLOOR)


def beyond_by_loops(frames, stride):
    """The range counts by their definition, one sensel at a time: above (below) all 4 same-colour
    neighbours at +-stride, with 4 (v - the mean of the middle two) beyond the frame's noise bar
    there; beyond an edge the neighbour on the other side (a side too short uses the sensel)."""
    k, height, width = frames.shape[:3]

    def reflect(centre, step, size):
        for at in (centre + step * stride, centre - step * stride):
            if 0 <= at < size:
                return at
        return centre

    counts = np.zeros((2, *frames.shape[1:]), np.int64)
    for f in range(k):
        for y in range(height):
            for x in range(width):
                nb = [frames[f, reflect(y, dy, height), reflect(x, dx, width)].astype(np.int64)
                      for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
                top, bottom = np.max(nb, axis=0), np.min(nb, axis=0)
                v = frames[f, y, x].astype(np.int64)
                middle = np.sort(nb, axis=0)[1:3].sum(axis=0)  # the middle two of the 4
                mid = 4 * v - 2 * middle
                bar = np.array([bar_by_loops(frames, f, y, x, c, stride) for c in range(np.size(v))]).reshape(np.shape(v))
                counts[0, y, x] += (v > top) & (mid > bar)
                counts[1, y, x] += (v < bottom) & (mid < -bar)
    return counts


@pytest.mark.parametrize("shape,stride", [((6, 7, 9), 2), ((5, 12, 12, 3), 1), ((4, 2, 9), 2), ((3, 1, 4), 1),
                                         ((4, 26, 58), 6), ((3, 9, 4), 6)])
def test_range_counts_follow_their_definition(shape, stride):
    rng = np.random.default_rng(len(shape) + stride)
    frames = rng.integers(0, 60, shape, dtype=np.uint16)
    frames[:, shape[1] // 2, shape[2] // 2] += 200  # a hot sensel: above in every frame
    fused, ref = both(frames, stride, 0, narrow=True)
    expected = beyond_by_loops(frames, stride)
    np.testing.assert_array_equal(fused.counts, expected)
    np.testing.assert_array_equal(ref.counts, expected)
    if min(shape[1:3]) > stride:  # else the sensel is its own neighbour and cannot stand out
        assert fused.counts[0, shape[1] // 2, shape[2] // 2].max() == shape[0]


def test_the_kernel_is_what_runs():
    """Guard against a silent fallback: the fused path must accept the scan's blocks."""
    block = padded(random_frames(np.random.default_rng(0), (3, 5, 6, 3), np.uint8), 1)
    assert accumulate_fused(IntegerSums.zeros((5, 6, 3)), block, 1, row_neighbours(block.shape[1], 1, 1))
    assert fused_module.kernels() is not None


@pytest.mark.parametrize("stride", [1, 2, 6])
@pytest.mark.parametrize("shape,dtype", [
    ((7, 9, 11, 3), np.uint8),  # RGB
    ((5, 8, 13), np.uint16),  # gray / CFA
    ((1, 6, 7, 3), np.uint8),  # k = 1
    ((1, 4, 5), np.uint16),
    ((4, 1, 9, 3), np.uint8),  # a single row
    ((3, 40, 2500, 3), np.uint8),  # rows longer than the kernel's chunk (edge columns in the last chunk)
    ((3, 6, 1030), np.uint16),  # a chunk boundary next to the right edge
])
def test_fused_equals_numpy(shape, dtype, stride):
    rng = np.random.default_rng(sum(shape) + stride)
    assert_identical(*both(padded(random_frames(rng, shape, dtype), stride), stride, stride))


@pytest.mark.parametrize("stride", [1, 2, 6])
@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 7, 12, 13])
@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_narrow_images_reflect_like_numpy(width, stride, channels, dtype):
    """Widths 1..3 have no interior columns (or neighbours that reflect onto the pixel itself)."""
    shape = (3, 5, width) + ((channels,) if channels else ())
    rng = np.random.default_rng(width * 10 + stride)
    assert_identical(*both(padded(random_frames(rng, shape, dtype), stride), stride, stride))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_extreme_values(dtype):
    top = np.iinfo(dtype).max
    frames = np.zeros((6, 5, 7, 3), dtype)
    frames[::2] = top  # residuals swing between -4*top and 4*top
    frames[1, 2, 3] = top  # isolated bright pixel
    frames[4, :, ::2] = top
    for stride in (1, 2, 6):
        assert_identical(*both(padded(frames, stride), stride, stride))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_more_frames_than_one_kernel_call_holds(dtype):
    """Full-scale frames beyond the int32 row buffers' limit are split into several calls."""
    limit = BUFFER_TYPES[np.dtype(dtype)][1]
    frames = np.full((limit + 5, 3, 2), np.iinfo(dtype).max, dtype)
    frames[1::3, 1, 0] = 0
    assert_identical(*both(padded(frames, 1), 1, 1))


def test_adds_to_existing_sums_and_wider_halo():
    rng = np.random.default_rng(5)
    frames = random_frames(rng, (4, 10, 6, 3), np.uint8)
    start = (rng.integers(-2**40, 2**40, (2, 6, 6, 3)), rng.integers(0, 2**50, (2, 6, 6, 3)))
    # pad_rows (2) larger than stride (1): the two outer halo rows are never neighbours
    assert_identical(*both(frames, 1, 2, start))


@pytest.mark.parametrize("stride", [1, 2, 6])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_row_tiles_of_whole_frames_reflect_in_place(stride, dtype):
    """The scan's tiles: rows y0..y1 of whole frames, edges reflected by index, narrow sums.

    They equal the sums of a padded copy of the frames (the reflection np.pad makes), bit
    for bit, in the narrow types and in int64 alike.
    """
    rng = np.random.default_rng(stride)
    frames = random_frames(rng, (5, 23, 17, 3), dtype)
    whole = IntegerSums.zeros((23, 17, 3))
    accumulate(whole, padded(frames, stride), stride, stride)
    for y0, y1 in [(0, 8), (8, 16), (16, 23), (0, 23)]:
        for narrow in (False, True):
            fused, ref = both(frames, stride, 0, rows=(y0, y1), narrow=narrow)
            assert_identical(fused, ref, narrow)
            np.testing.assert_array_equal(fused.s1, whole.s1[:, y0:y1])
            np.testing.assert_array_equal(fused.s2, whole.s2[:, y0:y1])
    narrow = IntegerSums.zeros((8, 17, 3), dtype)
    assert (narrow.s1.dtype, narrow.s2.dtype) == (np.int32, np.uint32 if dtype == np.uint8 else np.int64)


def test_read_only_and_odd_layouts():
    rng = np.random.default_rng(9)
    frames = padded(random_frames(rng, (4, 6, 8, 3), np.uint16), 1)
    frames.flags.writeable = False
    assert_identical(*both(frames, 1, 1))
    fortran = np.asfortranarray(padded(random_frames(rng, (3, 6, 8), np.uint8), 1))
    assert_identical(*both(fortran, 1, 1))
    every_other = padded(random_frames(rng, (3, 6, 16, 3), np.uint8), 1)[:, :, ::2]
    assert_identical(*both(every_other, 2, 1 + 1))


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint32, np.bool_])
def test_other_dtypes_take_the_numpy_path(dtype):
    frames = (np.random.default_rng(1).random((3, 6, 5)) * 100).astype(dtype)
    assert not accumulate_fused(IntegerSums.zeros((4, 5)), frames, 1, row_neighbours(frames.shape[1], 1, 1))
    assert_identical(*both(frames, 1, 1))


def test_without_numba_the_numpy_path_serves(monkeypatch):
    monkeypatch.setattr(fused_module, "KERNELS", False)
    frames = padded(random_frames(np.random.default_rng(2), (3, 4, 5, 3), np.uint8), 1)
    assert not accumulate_fused(IntegerSums.zeros((4, 5, 3)), frames, 1, row_neighbours(frames.shape[1], 1, 1))
    assert_identical(*both(frames, 1, 1))


shapes = st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 12), st.sampled_from([0, 1, 3, 4]),
                   st.sampled_from([1, 2]), st.sampled_from([np.uint8, np.uint16]), st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_any_shape(spec):
    k, rows, width, channels, stride, dtype, seed = spec
    shape = (k, rows, width) + ((channels,) if channels else ())
    frames = random_frames(np.random.default_rng(seed), shape, dtype)
    assert_identical(*both(padded(frames, stride), stride, stride))
    fused, ref = both(frames, stride, 0, narrow=True)  # whole frames, reflected by index, narrow sums
    assert_identical(fused, ref, narrow=True)
    wide, _ = both(pad_rows_reflect(frames, stride, stride), stride, stride)  # as the scan padded tiles before
    np.testing.assert_array_equal(fused.s1, wide.s1)
    np.testing.assert_array_equal(fused.s2, wide.s2)


def test_without_counts_the_moments_are_the_same():
    """scan.range_counts off: the kernel compiled without the counts gives the same sums."""
    frames = random_frames(np.random.default_rng(11), (5, 9, 8, 3), np.uint8)
    with_counts, without = IntegerSums.zeros((9, 8, 3), np.uint8), IntegerSums.zeros((9, 8, 3), np.uint8, counts=False)
    accumulate(with_counts, frames, 1)
    accumulate(without, frames, 1)
    assert without.counts is None and without.to_stats().counts is None
    np.testing.assert_array_equal(with_counts.s1, without.s1)
    np.testing.assert_array_equal(with_counts.s2, without.s2)
    reference = IntegerSums.zeros((9, 8, 3), np.uint8, counts=False)
    accumulate_numpy(reference, frames, 1, row_neighbours(9, 1))
    np.testing.assert_array_equal(reference.s2, without.s2)


# --- float64 moments: IntegerSums.to_stats and PixelStats.merge -------------------------------------------------


def largest_sums(pixel_shape):
    """The most frames to_stats must handle for uint16 (max_batch_frames), at full-scale swings."""
    n = max_batch_frames(np.dtype(np.uint16))
    top = 4 * 65535
    s1 = np.zeros((2, *pixel_shape), np.int64)
    s2 = np.zeros_like(s1)
    s1[0], s2[0] = n * 65535, n * 65535**2
    s1[1], s2[1] = (n // 2) * top - (n - n // 2) * top, n * top * top  # alternating -/+ 4*max
    return IntegerSums(n, s1, s2)


@pytest.mark.parametrize("n,pixel_shape,dtype,extreme", [
    (1, (5, 7), np.uint16, False),  # n = 1: m2 is exactly 0
    (1, (4, 6, 3), np.uint16, True),
    (2, (6, 9), np.uint16, True),
    (13, (17, 11, 3), np.uint16, False),
    (13, (17, 11, 3), np.uint16, True),
    (40, (9, 8), np.uint8, False),
    (3, (1, 1), np.uint16, True),
    (5, (300, 41), np.uint16, False),  # > 1 row of kernel work per stream
])
def test_to_stats_fused_is_bit_identical(n, pixel_shape, dtype, extreme):
    sums = sums_of(np.random.default_rng(n + sum(pixel_shape)), n, pixel_shape, dtype, extreme)
    fused = to_stats_fused(sums)
    assert fused is not None  # guard against a silent fallback
    ref = to_stats_numpy(sums)
    assert_same_bits(fused, ref)
    assert_same_bits(sums.to_stats(), ref)


def test_to_stats_at_the_largest_batch():
    sums = largest_sums((3, 4))
    assert_same_bits(to_stats_fused(sums), to_stats_numpy(sums))


def test_to_stats_random_exact_sums():
    """Arbitrary sums (not only reachable ones) whose numerator n*s2 - s1^2 is exact in int64."""
    rng = np.random.default_rng(11)
    for n in (1, 2, 7, 1000, 2**20):
        s1 = rng.integers(-2**30, 2**30, (2, 64, 33))
        s2 = (s1 * s1) // n + rng.integers(0, 2**20, s1.shape)
        sums = IntegerSums(n, s1, s2)
        assert_same_bits(to_stats_fused(sums), to_stats_numpy(sums))


def test_to_stats_falls_back_to_numpy(monkeypatch):
    sums = sums_of(np.random.default_rng(3), 4, (6, 5), np.uint16, True)
    ref = to_stats_numpy(sums)
    fortran = IntegerSums(sums.n, np.asfortranarray(sums.s1), np.asfortranarray(sums.s2))
    assert to_stats_fused(fortran) is None
    assert_same_bits(fortran.to_stats(), ref)
    assert to_stats_fused(IntegerSums(sums.n, sums.s1.astype(np.int16), sums.s2)) is None
    narrow = IntegerSums(sums.n, sums.s1.astype(np.int32), sums.s2)  # the scan's types for uint16 frames
    assert_same_bits(to_stats_fused(narrow), ref)
    assert_same_bits(to_stats_numpy(narrow), ref)
    assert IntegerSums.zeros((2, 3)).to_stats().n == 0
    read_only = IntegerSums(sums.n, sums.s1.copy(), sums.s2.copy())
    read_only.s1.flags.writeable = read_only.s2.flags.writeable = False
    assert_same_bits(to_stats_fused(read_only), ref)
    monkeypatch.setattr(fused_module, "KERNELS", False)
    assert to_stats_fused(sums) is None
    assert_same_bits(sums.to_stats(), ref)


@pytest.mark.parametrize("na,nb", [(1, 1), (1, 9), (9, 1), (7, 5), (3, 1000), (2**20, 3)])
@pytest.mark.parametrize("extreme", [False, True])
def test_merge_fused_is_bit_identical(na, nb, extreme):
    rng = np.random.default_rng(na * 7 + nb)
    a = random_stats(rng, min(na, 20), (13, 11, 3), extreme)
    b = random_stats(rng, min(nb, 20), (13, 11, 3), extreme)
    a, b = PixelStats(na, a.mean, a.m2), PixelStats(nb, b.mean, b.m2)  # weights beyond the frames drawn
    fused = merge_fused(a, b)
    assert fused is not None
    ref = merge_numpy(a, b)
    assert_same_bits(fused, ref)
    assert_same_bits(a.merge(b), ref)


def test_merge_random_floats_and_identical_means():
    """Means far apart, equal (delta = 0) and tiny: still the same bits."""
    rng = np.random.default_rng(4)
    shape = (2, 50, 40)
    ma = rng.normal(0, 1e4, shape)
    mb = ma.copy()
    mb[:, ::2] = rng.normal(0, 1e-3, shape)[:, ::2]
    a = PixelStats(5, ma, rng.random(shape) * 1e9)
    b = PixelStats(3, mb, rng.random(shape) * 1e-9)
    assert_same_bits(merge_fused(a, b), merge_numpy(a, b))


def test_merge_falls_back_to_numpy(monkeypatch):
    rng = np.random.default_rng(6)
    a, b = random_stats(rng, 4, (8, 6)), random_stats(rng, 3, (8, 6))
    ref = merge_numpy(a, b)
    for odd in (PixelStats(b.n, b.mean.astype(np.float32), b.m2),  # float32 input: numpy's type promotion
                PixelStats(b.n, np.asfortranarray(b.mean), b.m2),
                PixelStats(b.n, b.mean[:, ::-1], b.m2[:, ::-1])):
        assert merge_fused(a, odd) is None
        expected = merge_numpy(a, odd)
        got = a.merge(odd)
        assert np.array_equal(got.mean, expected.mean) and np.array_equal(got.m2, expected.m2)
    frozen = PixelStats(b.n, b.mean.copy(), b.m2.copy())
    frozen.mean.flags.writeable = frozen.m2.flags.writeable = False  # e.g. deserialised by dask
    assert_same_bits(merge_fused(a, frozen), ref)
    monkeypatch.setattr(fused_module, "KERNELS", False)
    assert merge_fused(a, b) is None
    assert_same_bits(a.merge(b), ref)


def test_merge_all_matches_the_numpy_tree():
    rng = np.random.default_rng(10)
    parts = [random_stats(rng, k, (9, 7, 3), extreme=k % 2 == 0) for k in (1, 4, 2, 7, 1, 3, 5)]
    parts.insert(3, PixelStats.empty((9, 7, 3)))
    ref = [p for p in parts if p.n]
    while len(ref) > 1:
        ref = [merge_numpy(a, b) if b is not None else a for a, b in zip(ref[::2], ref[1::2] + [None])]
    assert_same_bits(PixelStats.merge_all(parts), ref[0])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 9), st.integers(1, 9), st.sampled_from([0, 3]),
       st.booleans(), st.integers(0, 2**32 - 1))
def test_any_moments(na, nb, rows, width, channels, extreme, seed):
    rng = np.random.default_rng(seed)
    shape = (rows, width) + ((channels,) if channels else ())
    sa, sb = sums_of(rng, na, shape, np.uint16, extreme), sums_of(rng, nb, shape, np.uint16, False)
    a, b = to_stats_numpy(sa), to_stats_numpy(sb)
    assert_same_bits(sa.to_stats(), a)
    assert_same_bits(a.merge(b), merge_numpy(a, b))
