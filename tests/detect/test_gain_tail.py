"""The gains of a sensel's frames beyond its neighbours (``criteria.gain_tail``): the exact tail
of their sum under a random draw, and its join with the count's tail."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from pipeline.detect.criteria import gain_tail
from pipeline.detect.criteria.gain_tail import GainTails, fisher_decades


@pytest.mark.parametrize("seed", range(3))
def test_the_tail_is_the_share_of_k_subsets_with_that_sum_or_more(seed):
    """Every k and every sum, against enumerating the k-subsets of 12 frames (gains as the scan
    logs them: 16 steps a doubling, some repeated, one below ISO 100)."""
    rng = np.random.default_rng(seed)
    gains = rng.choice([-10, 0, 0, 16, 32, 48, 64, 80, 96], 12)
    tails = GainTails(gains)
    for k in range(1, 12):
        sums = np.array([sum(c) for c in itertools.combinations(gains.tolist(), k)])
        for s in np.unique(sums):
            expected = -math.log10(np.mean(sums >= s))
            assert tails.scores(np.array([k]), np.array([float(s)]))[0] == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_no_frame_every_frame_or_one_gain_say_nothing():
    tails = GainTails(np.array([0, 16, 32, 96] * 5))
    assert tails.scores(np.array([0, 20]), np.array([0.0, 720.0])).tolist() == [0.0, 0.0]
    assert not GainTails(np.full(20, 32)).usable
    assert not GainTails(np.array([0, 96])).usable


@pytest.mark.parametrize("gains", [np.repeat([0, 16, 48, 96], 50), np.repeat([0, 96], [190, 10])],
                         ids=["even", "few high"])
def test_many_frames_beyond_take_a_bound_never_above_the_exact_tail(gains, monkeypatch):
    """Past the exact table's sizes the tail is Serfling's bound: for every count and every
    possible sum, never more significant than the exact tail (a Gaussian is not: 8 of 33 frames
    at ISO 6400 in a 1,000-frame stack with 5 % such frames is 3.9 decades, a Gaussian 6.9);
    where the gains are spread evenly, at least a third of its decades."""
    exact = GainTails(gains)
    monkeypatch.setattr(gain_tail, "EXACT_FRAMES", 8)
    wide = GainTails(gains)
    assert wide.sizes == 8 and exact.sizes == 32
    highest = np.sort(gains)[::-1]
    for k in range(9, 33):
        sums = np.arange(0, highest[:k].sum() + 1, 16).astype(float)
        e, b = exact.scores(np.full(len(sums), k), sums), wide.scores(np.full(len(sums), k), sums)
        assert (b <= e + 1e-6).all(), (k, sums[b > e + 1e-6])
        if len(np.unique(gains)) > 2:
            informative = (e > 2) & (e < 6)
            assert (b[informative] >= e[informative] / 3).all()


def test_fisher_is_the_chi_square_tail_of_four_degrees():
    for a, b in [(1.0, 1.0), (6.2, 2.1), (0.5, 9.0)]:
        x = 2 * math.log(10) * (a + b)  # -2 ln(pa pb)
        expected = -math.log10(math.exp(-x / 2) * (1 + x / 2))
        assert fisher_decades(np.array(a), np.array(b)) == pytest.approx(expected)


def test_the_join_never_lowers_a_count_and_needs_high_gains():
    gains = np.repeat([0, 32, 64, 96], 15)
    tails = GainTails(gains)
    count = np.array([6.2, 6.2, 6.2, 0.0])
    k = np.array([7, 7, 7, 7])
    summed = np.array([7 * 96.0, 7 * 48.0, 0.0, 7 * 96.0])  # all at the highest gain / average / lowest
    joined = tails.joined(count, k, summed)
    assert joined[0] > 7.5  # 7 frames, all the highest gain: 4.1 decades more
    assert joined[1] == joined[2] == 6.2
    assert joined[3] == 0  # a count that says nothing (a corner's) stays so


def test_chance_stays_quiet_and_a_step_the_high_gains_show_is_found():
    """100,000 healthy sensels beyond their neighbours by chance (2 % of frames, any gain): the
    joined score passes 3 and 4 decades no more often than its two tests together allow. 200
    one-sided telegraph sensels that show only in the high-gain third of the frames (in 40 % of
    them: 8 of 60 frames): a 6.5-decade threshold passes under half of their counts alone, and
    at least 15 % more of them joined with their gains (two thirds)."""
    from pipeline.detect.criteria.counts import count_tail

    rng = np.random.default_rng(3)
    n, p = 60, 0.02
    gains = np.repeat([0, 16, 32, 48, 80, 96], 10)  # ISO 100 to 6400, 10 frames each
    tails = GainTails(gains)
    whole = count_tail(n, p, 1.0)
    chance = rng.random((100_000, n)) < p
    k = chance.sum(axis=1)
    joined = tails.joined(whole[k], k, (chance * gains).sum(axis=1))
    for decades in (3.0, 4.0):
        assert np.count_nonzero(joined >= decades) <= 1.5 * 100_000 * 10.0**-decades
    high = gains >= 80
    shows = (rng.random((200, n)) < 0.4) & high
    flicker = shows | (rng.random((200, n)) < p)
    k = flicker.sum(axis=1)
    alone, joined = whole[k], tails.joined(whole[k], k, (flicker * gains).sum(axis=1))
    assert np.mean(alone >= 6.5) < 0.5, np.mean(alone >= 6.5)
    assert np.mean(joined >= 6.5) >= np.mean(alone >= 6.5) + 0.15, (np.mean(alone >= 6.5), np.mean(joined >= 6.5))


def test_a_frame_of_unknown_gain_leaves_the_gains_out():
    """A frame without an ISO was summed as ISO 100; whether it was a high gain is unknown, so the
    stack's gains join no count (``FrameTable.gains_known``)."""
    from pipeline.stats.fit import FrameTable

    isos = [100.0, 400.0, 6400.0, 1600.0]
    assert FrameTable.of([1000] * 4, physical=True, isos=isos).gains_known
    assert not FrameTable.of([1000] * 4, physical=True, isos=[*isos[:3], None]).gains_known
    assert not FrameTable.of([1000] * 4, physical=False, isos=isos).gains_known  # a stand-in factor
    assert not FrameTable.of([1000] * 4, physical=True).gains_known
