"""The range counts' null: the beta-binomial tail, computed far into the tail without underflow."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.detect.criteria.counts import SinceTables, count_tail
from pipeline.stats.model import FIRST_DAYS, NO_DAY


def test_count_tail_is_the_beta_binomial_tail():
    """-log10 P(K >= k) from the probability ratios equals the direct lgamma sum, far into the tail."""
    import math

    def direct(n, p, phi):
        if phi <= 1:
            lp = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p)
                  + (n - k) * math.log1p(-p) for k in range(n + 1)]
        else:
            s = 1 / ((phi - 1) / (n - 1)) - 1
            a, b = p * s, (1 - p) * s
            lb = lambda x, y: math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)
            lp = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + lb(k + a, n - k + b) - lb(a, b)
                  for k in range(n + 1)]
        lp = np.array(lp)
        return -np.logaddexp.accumulate(lp[::-1])[::-1] / math.log(10)

    for n, p, phi in [(40, 0.02, 1.0), (40, 0.02, 1.8), (400, 0.005, 3.0), (12, 0.3, 1.2)]:
        np.testing.assert_allclose(count_tail(n, p, phi), np.maximum(direct(n, p, phi), 0), rtol=1e-9, atol=1e-9)
    assert count_tail(3000, 0.01, 2.0)[-1] > 300  # no underflow at the far end




def since_case(rng, sensels: int, n: int, p: float, onset: int | None, k_after: int, before: tuple[int, ...] = ()):
    """Counts and earliest beyond days of ``sensels`` sensels over ``n`` frames taken one a day
    (day 20000 + f): healthy ones beyond by chance (rate ``p``), or, with an ``onset`` frame,
    beyond in the frames ``before`` it and in ``k_after`` random frames from it on."""
    beyond = rng.random((sensels, n)) < p
    if onset is not None:
        beyond[:] = False
        beyond[:, list(before)] = True
        for row in beyond:
            row[onset + rng.choice(n - onset, k_after, replace=False)] = True
    days = 20000 + np.arange(n)
    when = np.where(beyond, days, NO_DAY)
    first = [np.sort(when, axis=1)[:, j].astype(np.uint16) for j in range(len(FIRST_DAYS))]
    return beyond.sum(axis=1), first, days


def test_an_onset_makes_a_weak_count_strong_and_chance_stays_quiet():
    """9 beyond frames in 60 is weak; 9 in the 20 since an onset is not, and neither is it after
    a chance frame long before (the onset is then the second of the earliest days). Healthy sensels' chance frames, scored the same way with the decades of
    the choice of onset taken off, pass a threshold no more often than its p-value says."""
    rng = np.random.default_rng(5)
    n, p = 60, 0.02
    tables = SinceTables(20000 + np.arange(n), n, [((p, 1.0), (p, 1.0))] * 2)
    whole = count_tail(n, p, 1.0)
    for before in ((), (5,)):
        k, first, _ = since_case(rng, 50, n, p, onset=40, k_after=9, before=before)
        since = tables.scores(0, 0, k, first)
        assert (since >= whole[k] + 1).all()  # a decade or more above the whole stack's score
        assert since.min() >= 7 > whole[k].max()  # past a 6.96 threshold, where the whole stack is not
    # present from the start: the since score adds nothing (less its penalty, it is lower)
    k0, first0, _ = since_case(rng, 200, n, p, onset=0, k_after=9)
    assert (tables.scores(0, 0, k0, first0) <= whole[k0]).all()
    # no beyond frame at all: nothing
    assert (tables.scores(0, 0, np.zeros(3, np.intp), [np.full(3, NO_DAY, np.uint16)] * 4) == 0).all()
    # chance: 100,000 healthy sensels; at 3 and 4 decades, no more passes than the p-value allows
    kh, firsth, _ = since_case(rng, 100_000, n, p, onset=None, k_after=0)
    healthy = tables.scores(0, 0, kh, firsth)
    for decades in (3.0, 4.0):
        assert np.count_nonzero(healthy >= decades) <= 100_000 * 10.0**-decades


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_the_compiled_count_passes_equal_numpy_s(dtype):
    """The counts' histograms and their strongest table scores, on a strided plane of a mosaic
    as detection gives them, equal bincount's and take's."""
    from pipeline.detect.criteria.count_kernels import count_histograms, strongest_scores

    n = 37
    rng = np.random.default_rng(9)
    above = rng.integers(0, n + 1, (40, 62)).astype(dtype)
    below = np.minimum(rng.integers(0, n + 1, (40, 62)), n - above).astype(dtype)
    a, b = above[1::2, ::2], below[1::2, ::2]  # one colour of a mosaic: a strided view
    want = np.stack([np.bincount(c.ravel().astype(np.intp), minlength=n + 1) for c in (a, b, a.astype(int) + b)])
    np.testing.assert_array_equal(count_histograms(a, b, n), want)
    tables = rng.random((3, n + 1)).astype(np.float32)
    tables[:, 0] = -0.0  # -log10(1): P(K >= 0)
    tables[:, 1:4] = 0.0
    tables[1, 5] = np.nan
    ai, bi = a.astype(np.intp), b.astype(np.intp)
    want = np.maximum(np.maximum(tables[0][ai], tables[1][bi]), tables[2][ai + bi])
    got = strongest_scores(a, b, tables[0], tables[1], tables[2])
    assert got.dtype == np.float32
    assert ((got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))).all()


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
def test_the_set_entries_of_a_strided_plane_are_flatnonzero_s(dtype):
    """The strong counts are read where they are set, in place: positions and values equal numpy's
    over the plane's copy, in row-major order."""
    from pipeline.detect.criteria.count_kernels import set_entries

    rng = np.random.default_rng(4)
    counts = (rng.integers(0, 6, (30, 50)) * (rng.random((30, 50)) < 0.05)).astype(dtype)
    plane = counts[::2, 1::2]
    positions, values = set_entries(plane)
    want = np.flatnonzero(plane)
    assert 0 < len(want) < plane.size
    np.testing.assert_array_equal(positions, want)
    np.testing.assert_array_equal(values, plane.reshape(-1)[want])
    assert len(set_entries(np.zeros((3, 4), dtype))[0]) == 0
