"""The report's numbers (``pipeline.report.numbers``): block reduction and histograms, counted in
pieces with the very numbers numpy gives over the whole array."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pipeline.report import block_reduce, numbers

# ------------------------------------------------------------------ histograms


@pytest.mark.parametrize("seed", range(5))
def test_the_compiled_count_of_float32_values_is_numpy_s_own(seed):
    """Score maps are float32 and counted in one compiled pass: each value lands in the bin
    ``np.histogram`` puts it in, values on an edge and one step beside it included; outliers,
    their extremes and the finite values are counted as the numpy path counts them."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(1 << 17) * rng.uniform(0.1, 50)).astype(np.float32)
    x[::97], x[::1013], x[::1019] = np.nan, np.inf, -np.inf
    lo, hi = float(np.float32(rng.uniform(-20, 0))), float(rng.uniform(0.5, 30))
    edges = np.histogram_bin_edges(np.zeros(0, np.float32), bins=numbers.HIST_BINS, range=(lo, hi))
    x[:400] = rng.choice(edges, 400)
    x[400:500] = np.nextafter(rng.choice(edges, 100), np.float32(np.inf))
    x[500:600] = np.nextafter(rng.choice(edges, 100), np.float32(-np.inf))
    counts, (n_low, low_min), (n_high, high_max), finite = numbers._histogram_chunk(x, lo, hi)
    want, _ = np.histogram(x, bins=numbers.HIST_BINS, range=(lo, hi))
    np.testing.assert_array_equal(counts, want)
    ok = x[np.isfinite(x)]
    assert finite == ok.size and n_low == np.count_nonzero(ok < np.float32(lo))
    assert n_high == np.count_nonzero(ok > np.float32(hi))
    assert n_low and n_high  # the range cuts both tails here
    assert low_min == ok.min() and high_max == ok.max()


@pytest.mark.parametrize("chunk", [1000, 1 << 20])
def test_histogram_in_chunks_counts_as_numpy_does(monkeypatch, chunk):
    monkeypatch.setattr(numbers, "CHUNK", chunk)
    rng = np.random.default_rng(5)
    z = np.maximum(rng.standard_normal(123_457), 0).astype(np.float32)  # half zeros, like a score map
    z[[3, 999, 1000, 50_000]] = [np.nan, np.inf, -np.inf, 1e6]
    z[-5:] = -40.0
    got = numbers.histogram(z, [7.0], None)
    lo, hi = float(got["edges"][0]), float(got["edges"][-1])
    counts, edges = np.histogram(z, bins=len(got["counts"]), range=(lo, hi))
    assert edges.dtype == got["edges"].dtype
    finite = z[np.isfinite(z)]
    counts[0] += np.count_nonzero(finite < np.float32(lo))
    counts[-1] += np.count_nonzero(finite > np.float32(hi))
    np.testing.assert_array_equal(got["counts"], counts)
    assert got["n"] == finite.size
    assert "5 below" in got["note"] and "(min -40)" in got["note"] and "(max 1e+06)" in got["note"]

    with ThreadPoolExecutor(2) as pool:
        threaded = numbers.histogram(z, [7.0], pool)
    np.testing.assert_array_equal(threaded["counts"], got["counts"])
    assert threaded["note"] == got["note"]


def test_histogram_range_holds_the_thresholds_and_none_without_finite_values():
    z = np.random.default_rng(0).standard_normal(10_000)
    got = numbers.histogram(z, [-50.0, 30.0, math.nan], None)
    assert got["edges"][0] < -50 and got["edges"][-1] > 30 and len(got["counts"]) == numbers.HIST_BINS
    assert numbers.histogram(np.full(10, np.nan), [1.0], None) is None


def test_related_thresholds_match_by_name():
    thresholds = {"value_z": 6, "value_z_dead": "-6", "value_zz": 1, "value_z.low": 2, "flicker": 5,
                  "value_z:bad": "not a number"}
    assert numbers.related_thresholds("value_z", thresholds) == {"value_z": 6.0, "value_z_dead": -6.0,
                                                                  "value_z.low": 2.0}
    assert numbers.related_thresholds("other", thresholds) == {}


# ------------------------------------------------------------------ maps


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3), (40, 60), (5, 3)])
@pytest.mark.parametrize("factor", [1, 2, 3, 7, 10])
@pytest.mark.parametrize("how", ["max", "mean"])
def test_block_reduce_matches_brute_force(shape, factor, how):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    a[0, 0] = np.nan if how == "max" else a[0, 0]
    got = block_reduce(a, factor, how)
    h, w = shape[:2]
    exp = np.empty((-(-h // factor), -(-w // factor)) + shape[2:])
    for i in range(exp.shape[0]):
        for j in range(exp.shape[1]):
            blk = a[i * factor : (i + 1) * factor, j * factor : (j + 1) * factor]
            exp[i, j] = np.fmax.reduce(blk.reshape(-1, *shape[2:]), axis=0) if how == "max" else blk.mean(axis=(0, 1))
    np.testing.assert_allclose(got, exp)


@pytest.mark.parametrize("h, w, max_pixels", [(4000, 6000, 512 * 512), (300, 400, 2500), (8, 8, 1000), (37, 53, 1)])
def test_block_factor_is_the_smallest_that_fits(h, w, max_pixels):
    f = numbers.block_factor(h, w, max_pixels)
    assert math.ceil(h / f) * math.ceil(w / f) <= max_pixels
    assert f == 1 or math.ceil(h / (f - 1)) * math.ceil(w / (f - 1)) > max_pixels


def test_map_for_display_divides_after_the_maxima():
    rng = np.random.default_rng(4)
    m2 = rng.random((37, 53, 3)) * 1e3
    small = numbers.map_for_display(m2, 4, "max", 7)
    assert small.dtype == np.float32 and small.shape == (10, 14)
    np.testing.assert_array_equal(small, numbers.map_for_display(m2 / 7, 4, "max"))
    with pytest.raises(ValueError):
        numbers.map_for_display(m2, 4, "mean", 7)
    with pytest.raises(ValueError):
        numbers.map_for_display(m2[0, 0], 4, "max")  # 1-D
