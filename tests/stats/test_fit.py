"""The exposure fit from exact sums equals a direct least-squares fit of the residual on the
exposure, over the frames a sensel did not clip in; and its sums merge exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stats import IntegerSums, accumulate, stats_of_stack
from pipeline.stats.fit import FrameTable, fit_exposure
from pipeline.stats.model import EXPOSURE_UNIT, NO_FACTOR, FrameTerms, ModelSpec, exposure_factor

WHITE = 4095


def dark_stack(rng, exposures, isos, shape=(12, 14), rates=None):
    """Darks with dark current: sensel (y, x) gains rates[y, x] DN/s at ISO 100, clipping at WHITE."""
    rates = rng.uniform(0, 2, shape) if rates is None else rates
    frames = []
    for t, iso in zip(exposures, isos):
        signal = 200 + rates * t * iso / 100 + rng.normal(0, 2, shape)
        frames.append(np.clip(np.rint(signal), 0, WHITE).astype(np.uint16))
    return np.stack(frames), rates


def reference(stack, factors, white):
    """Per sensel, np.polyfit of the residual on the factor over its frames in the fit."""
    from pipeline.stats.accumulate import _reflected

    f = stack.astype(np.float64)
    h, w = stack.shape[1:]
    up, down = _reflected(np.arange(h), h, 1)
    left, right = _reflected(np.arange(w), w, 1)
    res = f - (f[:, up] + f[:, down] + f[:, :, left] + f[:, :, right]) / 4
    rate = np.full((h, w), np.nan)
    for y in range(h):
        for x in range(w):
            keep = (factors != NO_FACTOR) & (stack[:, y, x] < white)
            if keep.sum() >= 3 and np.ptp(factors[keep]) > 0:
                rate[y, x] = np.polyfit(factors[keep].astype(np.float64), res[keep, y, x], 1)[0] / EXPOSURE_UNIT
    return rate


def sums_of(stack, factors, days, white, parts=1):
    spec = ModelSpec(True, True, white)
    out = None
    for idx in np.array_split(np.arange(len(stack)), parts):
        sums = IntegerSums.zeros(stack.shape[1:], stack.dtype, True, spec)
        accumulate(sums, stack[idx], 1, terms=FrameTerms(factors[idx], days[idx], white))
        stats = sums.to_stats()
        out = stats if out is None else out.merge(stats)
    return out


def test_the_fit_is_a_direct_least_squares_fit_over_the_unclipped_frames():
    rng = np.random.default_rng(1)
    exposures = np.array([0.001, 0.01, 0.1, 0.5, 1, 2, 4, 8, 15, 30])
    isos = np.array([100, 100, 200, 400, 100, 800, 100, 100, 400, 100])
    rates = rng.uniform(0, 3, (12, 14))
    rates[3, 4] = 100  # clips in the longest, highest-gain frames
    stack, _ = dark_stack(rng, exposures, isos, rates=rates)
    factors = np.array([exposure_factor(t, i, True) for t, i in zip(exposures, isos)])
    stats = sums_of(stack, factors, np.arange(len(stack)), WHITE)
    assert stats.extra["excluded"][3, 4] > 0  # it clipped
    fit = fit_exposure(stats.n, stats.mean[1], stats.m2[1], stats.extra["xr"], stats.extra["excluded"],
                       stats.extra["excluded_sum"], FrameTable.of(factors))
    ref = reference(stack, factors, WHITE)
    np.testing.assert_allclose(fit.rate, ref, rtol=1e-9, atol=1e-9)
    # the dark current itself: the residual's slope is the sensel's minus its neighbours' mean
    assert abs(fit.rate[3, 4] - (100 - rates[[2, 4, 3, 3], [4, 4, 3, 5]].mean())) < 1.0


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(0, 2**16), st.booleans())
def test_model_sums_merge_exactly_in_any_split(parts, seed, unknown):
    """The model's sums are integers: any split into partitions, in any order, gives the same bits."""
    rng = np.random.default_rng(seed)
    exposures = rng.uniform(0.001, 10, 9)
    stack, _ = dark_stack(rng, exposures, np.full(9, 100.0), shape=(6, 7))
    factors = np.array([exposure_factor(t, None, False) for t in exposures])
    if unknown:
        factors[rng.integers(0, 9)] = NO_FACTOR
    days = rng.integers(19000, 20000, 9)
    whole = sums_of(stack, factors, days, 3000)
    order = rng.permutation(9)
    split = sums_of(stack[order], factors[order], days[order], 3000, parts)
    for k in whole.extra:
        assert split.extra[k].dtype == whole.extra[k].dtype
        np.testing.assert_array_equal(split.extra[k], whole.extra[k], err_msg=k)


def test_frames_without_exposure_stay_out_of_the_fit():
    rng = np.random.default_rng(2)
    exposures = np.array([0.1, 1, 2, 4, 8, 16])
    stack, rates = dark_stack(rng, exposures, np.full(6, 100.0))
    factors = np.array([exposure_factor(t, None, False) for t in exposures])
    factors[2] = NO_FACTOR
    stats = sums_of(stack, factors, np.zeros(6, int), WHITE)
    assert (stats.extra["excluded"] == 1).all()
    fit = fit_exposure(stats.n, stats.mean[1], stats.m2[1], stats.extra["xr"], stats.extra["excluded"],
                       stats.extra["excluded_sum"], FrameTable.of(factors))
    np.testing.assert_allclose(fit.rate, reference(stack, factors, WHITE), rtol=1e-9, atol=1e-9)
    assert (fit.frames == 5).all()


@pytest.mark.parametrize("exposure,iso,any_iso,expected", [
    (1.0, 100, True, round(1 / EXPOSURE_UNIT)), (0.5, 400, True, round(2 / EXPOSURE_UNIT)),
    (1 / 8000, None, False, 2), (None, 100, True, NO_FACTOR), (0.0, 100, True, NO_FACTOR),
    (-1.0, 100, True, NO_FACTOR), (float("nan"), 100, True, NO_FACTOR), (1.0, None, True, NO_FACTOR),
    (1.0, 0, False, round(1 / EXPOSURE_UNIT)), (1e6, 100, True, NO_FACTOR)])
def test_exposure_factors(exposure, iso, any_iso, expected):
    assert exposure_factor(exposure, iso, any_iso) == expected


def test_stats_without_model_sums_are_as_before():
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 255, (5, 8, 9)).astype(np.uint8)
    assert stats_of_stack(stack).extra == {}
