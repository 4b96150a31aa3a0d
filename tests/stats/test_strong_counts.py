"""The strong counts (``stats.model.STRONG_COUNTS``): per sensel, the frames in which it stood
above (below) all 4 same-colour neighbours by ``STRONG_BARS`` times its frame's noise bar over
the middle two of them, kept with the range counts whatever the frames' metadata. Exact in any
split and order of the frames, the fused kernel equal to numpy, and counted from the frames
themselves here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stats import IntegerSums, accumulate
from pipeline.stats.accumulate import accumulate_numpy, row_neighbours
from pipeline.stats.model import STRONG_APART, STRONG_BARS, STRONG_COUNTS, FrameTerms, ModelSpec
from pipeline.stats.noise_bars import bar_map, bars_numpy

SPEC = ModelSpec(counts=True)


def around(size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The same-colour neighbours before and after each index of an axis, reflected at its ends."""
    i = np.arange(size)
    before = np.where(i - stride >= 0, i - stride, np.where(i + stride < size, i + stride, i))
    after = np.where(i + stride < size, i + stride, np.where(i - stride >= 0, i - stride, i))
    return before, after


def reference(frames: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(above, below, strong above, strong below) counts straight from the frames."""
    f = frames.astype(np.int64)
    h, w = f.shape[1:]
    up, down = around(h, stride)
    left, right = around(w, stride)
    ring = np.stack([f[:, up], f[:, down], f[:, :, left], f[:, :, right]])
    mid = 4 * f - 2 * np.sort(ring, axis=0)[1:3].sum(0)
    bar = bar_map(bars_numpy(frames, stride), np.arange(h), w, stride, 1)[..., 0]
    hi, lo = f > ring.max(0), f < ring.min(0)
    return ((hi & (mid > bar)).sum(0), (lo & (mid < -bar)).sum(0),
            (hi & (mid > STRONG_BARS * bar) & (f - ring.max(0) > STRONG_APART * (ring.max(0) - ring.min(0)))).sum(0),
            (lo & (mid < -STRONG_BARS * bar) & (ring.min(0) - f > STRONG_APART * (ring.max(0) - ring.min(0)))).sum(0))


def noisy_frames(rng, n: int, shape, dtype, sigma: float) -> np.ndarray:
    top = np.iinfo(dtype).max
    frames = np.rint(top / 3 + rng.normal(0, sigma, (n, *shape)))
    return np.clip(frames, 0, top).astype(dtype)


def summed(frames: np.ndarray, stride: int, fused: bool = True, spec: ModelSpec = SPEC) -> IntegerSums:
    sums = IntegerSums.zeros(frames.shape[1:], frames.dtype, True, spec)
    terms = FrameTerms(np.ones(len(frames), np.int64), np.zeros(len(frames), np.int64), 0)
    if fused:
        return accumulate(sums, frames, stride, terms=terms)
    accumulate_numpy(sums, frames, stride, row_neighbours(frames.shape[1], stride), terms)
    return sums


def three_ways(rng, frames: np.ndarray, stride: int, parts: int, spec: ModelSpec = SPEC):
    """The frames' statistics whole (the fused kernel), their sums by numpy's reference, and the
    statistics of ``parts`` random parts of them merged in a random order."""
    whole = summed(frames, stride, spec=spec).to_stats()
    numpy_sums = summed(frames, stride, fused=False, spec=spec)
    split = None
    for idx in np.array_split(rng.permutation(len(frames)), parts):
        part = summed(frames[idx], stride, spec=spec).to_stats()
        split = part if split is None else split.merge(part)
    assert split is not None
    return whole, numpy_sums, split


@pytest.mark.parametrize("dtype,sigma", [(np.uint8, 3.0), (np.uint16, 40.0)])
@pytest.mark.parametrize("stride", [1, 2])
def test_a_jump_of_many_sigmas_counts_strong_and_a_few_sigmas_only_in_the_range_counts(dtype, sigma, stride):
    rng = np.random.default_rng(5)
    frames = noisy_frames(rng, 12, (40, 44), dtype, sigma)
    # the residual's sigma is ~sqrt(1.25) sigma: at (20, 20) 6 sigmas in frames 0-3 (beyond the
    # bar, under the strong one), at (20, 30) 30 sigmas in frames 0-4, at (10, 30) -25 in 2 frames
    top = np.iinfo(dtype).max
    for (y, x), picked, step in (((20, 20), slice(0, 4), 6), ((20, 30), slice(0, 5), 30), ((10, 30), slice(3, 5), -25)):
        frames[picked, y, x] = np.clip(frames[picked, y, x] + step * sigma, 0, top).astype(dtype)
    sums = summed(frames, stride)
    above, below, strong_above, strong_below = reference(frames, stride)
    np.testing.assert_array_equal(sums.extra["strong_above"], strong_above)
    np.testing.assert_array_equal(sums.extra["strong_below"], strong_below)
    np.testing.assert_array_equal(sums.counts[0], above)
    np.testing.assert_array_equal(sums.counts[1], below)
    assert sums.extra["strong_above"][20, 30] == 5 and sums.extra["strong_below"][10, 30] == 2
    assert sums.extra["strong_above"][20, 20] == 0 and sums.counts[0][20, 20] >= 3
    # a healthy sensel's noise almost never reaches 9 sigmas
    assert sums.extra["strong_above"].sum() + sums.extra["strong_below"].sum() == 7


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.integers(2, 4), st.sampled_from([np.uint8, np.uint16]), st.sampled_from([1, 2]))
def test_strong_counts_are_exact_in_any_split_and_order_and_fused_equals_numpy(seed, parts, dtype, stride):
    rng = np.random.default_rng(seed)
    sigma = 3.0 if dtype is np.uint8 else 40.0
    frames = noisy_frames(rng, 9, (13, 17), dtype, sigma)
    jumps = rng.random(frames.shape) < 0.03
    frames = np.where(jumps, rng.choice([0, np.iinfo(dtype).max], frames.shape), frames).astype(dtype)
    whole, numpy_sums, split = three_ways(rng, frames, stride, parts)
    for name in STRONG_COUNTS:
        np.testing.assert_array_equal(numpy_sums.extra[name], whole.extra[name], err_msg=name)
        np.testing.assert_array_equal(split.extra[name], whole.extra[name], err_msg=name)
        assert split.extra[name].dtype == whole.extra[name].dtype
    assert (whole.extra["strong_above"] <= whole.counts[0]).all() and (whole.extra["strong_below"] <= whole.counts[1]).all()


def test_no_strong_counts_without_range_counts():
    assert not set(STRONG_COUNTS) & set(ModelSpec(exposure=True, dates=False).names)
    assert set(STRONG_COUNTS) <= set(ModelSpec(counts=True).names)


@pytest.mark.parametrize("dtype,channels,stride", [(np.uint8, 3, 1), (np.uint16, 0, 2), (np.uint8, 0, 1)])
def test_the_compiled_kernel_finds_the_strong_frames_8_flags_at_a_time_as_numpy_does(dtype, channels, stride):
    """Rows long enough for the kernel's packed search of the events (8 flags a word, and a
    remainder), with many strong jumps: the compiled kernel, loaded, gives numpy's counts."""
    from pipeline.stats.fused import kernels

    assert kernels() is not None  # numba is loaded: ``accumulate`` takes the compiled kernel
    rng = np.random.default_rng(11)
    shape = (37, 203, channels) if channels else (37, 203)
    frames = noisy_frames(rng, 7, shape, dtype, 3.0 if dtype is np.uint8 else 40.0)
    jumps = rng.random(frames.shape) < 0.01
    frames = np.where(jumps, rng.choice([0, np.iinfo(dtype).max], frames.shape), frames).astype(dtype)
    fused, reference_sums = summed(frames, stride), summed(frames, stride, fused=False)
    for name in STRONG_COUNTS:
        assert fused.extra[name].sum() > 50
        np.testing.assert_array_equal(fused.extra[name], reference_sums.extra[name], err_msg=name)
    np.testing.assert_array_equal(fused.counts, reference_sums.counts)
