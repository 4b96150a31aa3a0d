"""The model's mostly-empty sums travel as their set entries, and come back equal to the bit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pipeline.stats import IntegerSums
from pipeline.stats.model import FIRST_DAYS, NO_DAY, ModelSpec
from pipeline.stats.packing import Sparse, pack, packed, unpacked

SPEC = ModelSpec(exposure=True, dates=True, white=16383, counts=True)


def _sums(rng: np.random.Generator, shape=(60, 80)) -> IntegerSums:
    """Sums as a lit raw stack leaves them: the cross term dense, clipping and holes rare, a
    fifth of the sensels with a beyond day."""
    sums = IntegerSums.zeros(shape, np.uint16, True, SPEC)
    sums.n = 7
    sums.s1[...] = rng.integers(-1000, 1000, sums.s1.shape)
    x = sums.extra
    x["xr"][...] = rng.integers(-(2**40), 2**40, shape)
    rare = rng.random(shape) < 0.01
    x["excluded"][rare] = rng.integers(1, 7, rare.sum())
    x["excluded_sum"][rare] = rng.integers(-(2**30), 2**30, rare.sum())
    x["excluded_xx"][rare] = rng.integers(1, 2**50, rare.sum())
    beyond = rng.random(shape) < 0.2
    x["first_day_1"][beyond] = rng.integers(19000, 20000, beyond.sum())
    x["beyond_logx"][beyond] = rng.integers(-200, 200, beyond.sum())
    return sums


def test_integer_sums_round_trip_bit_for_bit_and_smaller():
    sums = _sums(np.random.default_rng(1))
    data = pickle.dumps(sums, protocol=5)
    back = pickle.loads(data)
    assert (back.n, back.max_frames) == (sums.n, sums.max_frames)
    np.testing.assert_array_equal(back.s1, sums.s1)
    np.testing.assert_array_equal(back.counts, sums.counts)
    assert set(back.extra) == set(sums.extra)
    for k, v in sums.extra.items():
        assert back.extra[k].dtype == v.dtype and back.extra[k].shape == v.shape, k
        np.testing.assert_array_equal(back.extra[k], v, err_msg=k)
        assert back.extra[k].flags.writeable, k  # the kernels add into a partition's sums
    dense = sum(v.nbytes for v in sums.extra.values())
    # the cross term stays dense (8 bytes a sensel); the rest travel as their entries
    assert len(data) < sums.s1.nbytes + sums.s2.nbytes + sums.counts.nbytes + 0.35 * dense


def test_stats_round_trip_bit_for_bit():
    stats = _sums(np.random.default_rng(2)).to_stats()
    back = pickle.loads(pickle.dumps(stats, protocol=5))
    assert back.n == stats.n
    np.testing.assert_array_equal(back.mean, stats.mean)
    for k, v in stats.extra.items():
        assert back.extra[k].dtype == v.dtype, k
        np.testing.assert_array_equal(back.extra[k], v, err_msg=k)


@pytest.mark.parametrize("share", [0.0, 0.05, 0.3, 1.0])
def test_pack_keeps_an_array_dense_where_its_entries_would_not_save(share):
    rng = np.random.default_rng(3)
    a = np.where(rng.random((40, 50)) < share, rng.integers(1, 100, (40, 50)), 0).astype(np.int64)
    item = pack(a, 0)
    # a set entry costs a position (4 bytes) and its value (8): sparse up to a third of them set
    assert isinstance(item, Sparse) == (share <= 0.3)
    np.testing.assert_array_equal(unpacked({"xr": item})["xr"], a)


def test_the_earliest_days_are_packed_around_no_day():
    days = np.full((30, 30), NO_DAY, np.uint16)
    days[3, 4] = 19500
    out = packed({FIRST_DAYS[0]: days, "holes": np.zeros((30, 30), np.uint16)})
    assert isinstance(out[FIRST_DAYS[0]], Sparse) and len(out[FIRST_DAYS[0]].values) == 1
    assert isinstance(out["holes"], Sparse) and len(out["holes"].values) == 0
    back = unpacked(out)
    np.testing.assert_array_equal(back[FIRST_DAYS[0]], days)
    assert back["holes"].dtype == np.uint16 and not back["holes"].any()
