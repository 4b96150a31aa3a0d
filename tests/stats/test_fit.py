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
    spec = ModelSpec(True, True, white, counts=True)
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
    fit = fit_exposure(stats.n, stats.mean[1], stats.m2[1], stats.extra, FrameTable.of(factors))
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
    fit = fit_exposure(stats.n, stats.mean[1], stats.m2[1], stats.extra, FrameTable.of(factors))
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


def test_a_sensel_clipped_by_the_scene_in_short_frames_is_fitted_on_the_others():
    """A bright sky clips sensels in short frames, not in the longest: the fit leaves out exactly
    those frames (their x and x^2 are summed per sensel), whatever their place in the table."""
    rng = np.random.default_rng(5)
    exposures = np.array([1 / 500, 1 / 250, 1 / 60, 0.1, 0.5, 1, 2, 4, 8, 15])
    stack, _ = dark_stack(rng, exposures, np.full(10, 100.0), rates=rng.uniform(0, 20, (12, 14)))
    stack[[0, 2], 5:8, 6:9] = WHITE  # the sky, in two short frames
    factors = np.array([exposure_factor(t, 100, True) for t in exposures])
    stats = sums_of(stack, factors, np.zeros(10, int), WHITE)
    assert (stats.extra["excluded"][5:8, 6:9] == 2).all()
    fit = fit_exposure(stats.n, stats.mean[1], stats.m2[1], stats.extra, FrameTable.of(factors))
    # x^2 of a clipped frame is summed to 2^-7 s: short ones round away, at no cost to the fit
    np.testing.assert_allclose(fit.rate, reference(stack, factors, WHITE), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("dtype,white", [(np.uint8, 255), (np.uint16, 16383)])
def test_spikes_count_the_sensels_that_stand_out_like_lit_hot_ones(dtype, white):
    """Per frame, the sensels above their neighbours' maximum by 1/16 of white (at least 16) and 3x their
    range are marked in its sketch: the fused kernel and the numpy reference agree, a tile of rows
    marks its own, and a dark-subtracted frame has none."""
    from pipeline.stats.accumulate import accumulate_numpy, row_neighbours
    from pipeline.stats.model import SKETCH_WORDS, sketch_bit, sketch_bits

    rng = np.random.default_rng(3)
    base = 100 if dtype is np.uint8 else 2000
    frames = np.clip(rng.normal(base, 2, (6, 20, 24)), 0, white).astype(dtype)
    hot = [(3, 4), (10, 11), (17, 20)]
    for k in range(5):  # frame 5: dark-subtracted in camera, no hot sensel shows
        for y, x in hot:
            frames[k, y, x] = min(white, base + 10 * (k + 2) * max(white >> 4, 16) // 8)
    spec = ModelSpec(True, False, white)
    terms = FrameTerms(np.full(6, 100), np.zeros(6, int), white)
    fused, numpy, tiles = (np.zeros((6, SKETCH_WORDS), np.uint64) for _ in range(3))
    accumulate(IntegerSums.zeros((20, 24), dtype, True, spec), frames, 2, terms=terms, sketch=fused)
    accumulate_numpy(IntegerSums.zeros((20, 24), dtype, True, spec), frames, 2, row_neighbours(20, 2), terms, numpy)
    for y0, y1 in ((0, 7), (7, 20)):
        accumulate(IntegerSums.zeros((y1 - y0, 24), dtype, True, spec), frames, 2, rows=(y0, y1), terms=terms,
                   sketch=tiles)
    np.testing.assert_array_equal(fused, numpy)
    np.testing.assert_array_equal(fused, tiles)
    hot_bits = sorted(sketch_bit([y * 24 + x for y, x in hot]).tolist())
    assert sketch_bits(fused) == [hot_bits] * 5 + [[]]


def test_a_dark_subtracted_frame_counts_at_zero_exposure_and_its_black_holes_stay_out():
    """A camera's noise reduction subtracts a dark frame: the hot sensels' excess is gone, and one
    that saturated in both reads black among its lit neighbours. Taken at factor 0
    (``FrameTable.subtracted``), with the black reading left out as clipped at the floor (a
    "hole"), the fit finds the rate of the other frames."""
    from pipeline.stats.accumulate import accumulate_numpy, row_neighbours

    rng = np.random.default_rng(7)
    exposures = np.array([0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 4, 30, 30])
    rates = rng.uniform(0, 1, (12, 14))
    rates[3, 4], rates[8, 9] = 400.0, 50.0  # (3, 4) saturates at 30 s, (8, 9) does not
    stack, _ = dark_stack(rng, exposures, np.full(10, 100.0), rates=rates)
    # frame 9: a lit frame (1500 DN of scene) with the dark frame subtracted in camera
    stack[9] = np.clip(np.rint(1700 + rng.normal(0, 2, (12, 14))), 0, WHITE).astype(np.uint16)
    stack[9, 3, 4] = 200  # saturated in the exposure and in the dark frame: reads black
    factors = np.array([exposure_factor(t, 100, True) for t in exposures])
    spec = ModelSpec(True, False, WHITE, black=200)
    terms = FrameTerms(factors, np.zeros(10, int), WHITE, 200)
    sums = accumulate(IntegerSums.zeros(stack.shape[1:], stack.dtype, True, spec), stack, 1, terms=terms)
    reference_sums = accumulate_numpy(IntegerSums.zeros(stack.shape[1:], stack.dtype, True, spec), stack, 1,
                                      row_neighbours(12, 1), terms)
    for k in sums.extra:
        np.testing.assert_array_equal(sums.extra[k], reference_sums.extra[k], err_msg=k)
    stats = sums.to_stats()
    assert stats.extra["holes"][3, 4] == 1 and stats.extra["holes"].sum() == 1
    fit = fit_exposure(stats.n, stats.mean[1], stats.m2[1], stats.extra, FrameTable(factors, True, np.arange(10) == 9))
    assert abs(fit.rate[3, 4] - 400) < 0.05 * 400 and abs(fit.rate[8, 9] - 50) < 0.05 * 50
    # taken at its recorded 30 s, the subtracted frame drags the rate down
    plain = fit_exposure(stats.n, stats.mean[1], stats.m2[1], stats.extra, FrameTable(factors, True))
    assert plain.rate[8, 9] < 0.8 * 50


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([np.uint8, np.uint16]), st.booleans())
def test_every_model_sum_of_the_kernel_is_the_reference(seed, dtype, dates):
    """Clipped sensels, black holes, frames without exposure, range counts, dates: the fused
    kernel's model sums (and sketches) are the numpy reference's, bit for bit."""
    from pipeline.stats.accumulate import accumulate_numpy, row_neighbours
    from pipeline.stats.model import SKETCH_WORDS

    rng = np.random.default_rng(seed)
    white = 255 if dtype is np.uint8 else 4095
    black = 16 if dtype is np.uint8 else 200
    k, h, w = 7, 11, 13
    frames = rng.integers(black, white + 1, (k, h, w)).astype(dtype)
    frames[rng.random((k, h, w)) < 0.05] = white
    frames[rng.random((k, h, w)) < 0.05] = black
    factors = rng.integers(1, 2**20, k)
    factors[rng.integers(0, k)] = NO_FACTOR
    spec = ModelSpec(True, dates, white, black, counts=True)
    terms = FrameTerms(
        factors, rng.integers(19000, 20000, k), white, black, None, rng.integers(0, 100, k).astype(np.int32))
    fused_sketch, numpy_sketch = (np.zeros((k, SKETCH_WORDS), np.uint64) for _ in range(2))
    fused = accumulate(IntegerSums.zeros((h, w), dtype, True, spec), frames, 2, terms=terms, sketch=fused_sketch)
    ref = accumulate_numpy(IntegerSums.zeros((h, w), dtype, True, spec), frames, 2, row_neighbours(h, 2), terms,
                           numpy_sketch)
    assert set(fused.extra) == set(ref.extra) and "beyond_logg" in fused.extra
    for name in fused.extra:
        np.testing.assert_array_equal(fused.extra[name], ref.extra[name], err_msg=name)
    np.testing.assert_array_equal(fused_sketch, numpy_sketch)


def test_a_defect_that_appeared_is_fitted_over_the_frames_since():
    """A hot sensel that appeared halfway through a collection whose longest exposures came
    before it: over every frame its rate reads near zero; over the frames since it is recovered,
    though the sums of x * r hold the long frames' noise, and it clips in its longest frames."""
    rng = np.random.default_rng(7)
    exposures = np.tile([30.0, 15, 8, 1 / 500, 1 / 60, 0.1, 0.5, 1, 2], 2)
    isos = np.full(len(exposures), 100.0)
    days = np.arange(len(exposures))
    rates = rng.uniform(0, 2, (12, 14))
    stack, _ = dark_stack(rng, exposures, isos, rates=rates)
    since = days >= 9
    signal = 200 + 300.0 * exposures[since]  # 300 DN/s from day 9: clips at 15 and 30 s
    stack[since, 6, 7] = np.clip(np.rint(signal + rng.normal(0, 2, since.sum())), 0, WHITE).astype(np.uint16)
    stack[~since, 6, 7] = 200
    factors = np.array([exposure_factor(t, i, True) for t, i in zip(exposures, isos)])
    stats = sums_of(stack, factors, days, WHITE)
    table = FrameTable.of(factors)
    sums = {k: v[6:7, 7:8] for k, v in stats.extra.items()}
    whole = fit_exposure(stats.n, stats.mean[1][6:7, 7:8], stats.m2[1][6:7, 7:8], sums, table)
    after = fit_exposure(stats.n, stats.mean[1][6:7, 7:8], stats.m2[1][6:7, 7:8], sums, table, within=since)
    assert abs(whole.rate[0, 0] - 300) > 100  # the long frames before it weigh on the whole fit
    assert abs(after.rate[0, 0] - 300) < 15
    assert after.rate_se[0, 0] > 0 and after.t[0, 0] > 5
    assert after.frames[0, 0] == since.sum() - stats.extra["excluded"][6, 7]
    # a healthy sensel (0-2 DN/s, as its neighbours) fitted over the same frames reads a rate
    # of that order, not the defect's
    calm = fit_exposure(stats.n, stats.mean[1][2:3, 2:3], stats.m2[1][2:3, 2:3],
                        {k: v[2:3, 2:3] for k, v in stats.extra.items()}, table, within=since)
    assert abs(calm.rate[0, 0]) < 5


def test_frames_carrying_a_line_since_a_day():
    """(sum x)^2 / sum x^2 of the frames since: n equal exposures carry it alike; one exposure six
    times the others' carries nearly all of it; unknown and dark-subtracted frames carry nothing."""
    from pipeline.stats.fit import frames_carrying

    table = FrameTable(np.array([1000] * 8))
    assert frames_carrying(table, np.ones(8, bool)) == pytest.approx(8.0)
    assert frames_carrying(table, np.arange(8) >= 5) == pytest.approx(3.0)
    lopsided = FrameTable(np.array([100, 100, 6000, 100, NO_FACTOR]))
    assert frames_carrying(lopsided, np.ones(5, bool)) == pytest.approx(6300**2 / (6000**2 + 3 * 100**2))
    assert frames_carrying(lopsided, np.ones(5, bool)) < 1.2
    subtracted = FrameTable(np.array([1000, 1000, 1000]), subtracted=np.array([False, True, False]))
    assert frames_carrying(subtracted, np.ones(3, bool)) == pytest.approx(2.0)
    assert frames_carrying(table, np.zeros(8, bool)) == 0.0
