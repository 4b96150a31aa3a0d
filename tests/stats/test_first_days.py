"""The 4 earliest beyond days (``stats.model.FIRST_DAYS``): per sensel, the capture days of the
first frames in which it lay beyond its 4 same-colour neighbours and its frame's noise bar
(above all of them by more than the bar over the middle two, or below all by as much:
``stats.noise_bars``),
``NO_DAY`` for none. Like every sum they are exact in any split and order of the frames
(partitions, row tiles, merged totals), and equal to numpy over the frames."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stats import IntegerSums, PixelStats, accumulate
from pipeline.stats.model import FIRST_DAYS, NO_DAY, FrameTerms, ModelSpec, add
from pipeline.stats.noise_bars import bar_map, bars_numpy
from pipeline.stats.sums import merge_partials

SPEC = ModelSpec(dates=True, counts=True)


def neighbours(size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The same-colour neighbours before and after each index, reflected at the ends (row -1 is
    row +1 of its colour; an axis too short for any uses the index itself)."""
    i = np.arange(size)
    before = np.where(i - stride >= 0, i - stride, np.where(i + stride < size, i + stride, i))
    after = np.where(i + stride < size, i + stride, np.where(i - stride >= 0, i - stride, i))
    return before, after


def reference(frames: np.ndarray, days: np.ndarray, stride: int) -> np.ndarray:
    """(4, H, W) earliest days, straight from the frames."""
    f = frames.astype(np.int64)
    up, down = neighbours(f.shape[1], stride)
    left, right = neighbours(f.shape[2], stride)
    around = np.stack([f[:, up], f[:, down], f[:, :, left], f[:, :, right]])
    top, bottom = around.max(0), around.min(0)
    mid = 4 * f - 2 * np.sort(around, axis=0)[1:3].sum(0)  # the middle two of the 4
    bar = bar_map(bars_numpy(frames, stride), np.arange(f.shape[1]), f.shape[2], stride, 1)[..., 0]
    beyond = ((f > top) & (mid > bar)) | ((f < bottom) & (mid < -bar))
    when = np.where(beyond, np.asarray(days)[:, None, None], NO_DAY)
    when = np.concatenate([when, np.full((4, *f.shape[1:]), NO_DAY)])  # fewer than 4 frames
    return np.sort(when, axis=0)[:4]


def part_sums(frames: np.ndarray, days: np.ndarray, stride: int, rows=None) -> IntegerSums:
    """One partition's exact sums, in the frame dtype's narrow types, as a scan task keeps them."""
    h = frames.shape[1] if rows is None else rows[1] - rows[0]
    sums = IntegerSums.zeros((h, *frames.shape[2:]), frames.dtype, True, SPEC)
    return accumulate(sums, frames, stride, rows=rows, terms=FrameTerms(np.ones(len(frames), np.int64), days, 0))


def first_days(extra: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([extra[k] for k in FIRST_DAYS])


def frames_with_defects(rng, n: int, shape, dtype) -> np.ndarray:
    """Noisy flat frames in which a tenth of the sensels jump far up or down in some frames."""
    top = np.iinfo(dtype).max
    frames = top // 3 + rng.integers(0, max(2, top // 64), (n, *shape))
    jumps = rng.random((n, *shape)) < 0.1 * (rng.random(shape) < 0.3)
    jumps[:, :4, :4] = False  # (1, 1) and its neighbours at either stride keep their level ...
    # ... and so do the sites the noise bars sample (at either stride): a frame this small has
    # a handful, and the bar is then the noise's, not a jump's (noise_bars.SAMPLE_PIXELS)
    sites = np.array([2, 4, 5, 6, 10, 12, 13])
    jumps[:, sites[sites < shape[0]]] = False
    jumps[:, :, sites[sites < shape[1]]] = False
    frames = np.where(jumps, rng.choice([0, top], (n, *shape)), frames)
    frames[:, 1, 1] = top  # ... and it is a hot sensel: beyond in every frame
    return frames.astype(dtype)


# --------------------------------------------------------------------------- the rule


def test_the_earliest_days_of_the_frames_beyond_the_range_in_order():
    rng = np.random.default_rng(3)
    frames = (1000 + rng.integers(0, 8, (6, 16, 16))).astype(np.uint16)  # 4r's sigma ~10: a bar of ~30
    days = np.array([50, 10, 30, 70, 20, 10])
    frames[[0, 1, 2, 3, 4], 5, 5] = 1060  # above in 5 frames (4r ~ 230)
    frames[[3, 5], 9, 9] = 940  # below in 2
    around = np.stack([frames[:, 11, 12], frames[:, 13, 12], frames[:, 12, 11], frames[:, 12, 13]]).astype(int)
    frames[:, 12, 12] = around.max(0) + 1  # above all 4 in every frame, but within the noise: never beyond
    sums = part_sums(frames, days, 1)
    got = first_days(sums.extra)
    assert got[:, 5, 5].tolist() == [10, 20, 30, 50]  # the 70 is the fifth
    assert got[:, 9, 9].tolist() == [10, 70, NO_DAY, NO_DAY]
    assert (got[:, 12, 12] == NO_DAY).all()
    assert np.mean(got[0] != NO_DAY) < 0.1  # healthy sensels: now and then, by chance
    np.testing.assert_array_equal(got, reference(frames, days, 1))
    assert all(sums.extra[k].dtype == np.uint16 for k in FIRST_DAYS)


def test_a_clipped_area_where_all_five_agree_is_never_beyond():
    frames = np.full((5, 8, 8), 255, np.uint8)
    frames[:, :, :2] = np.arange(5)[:, None, None] * 40  # varies, but evenly across its neighbours
    got = first_days(part_sums(frames, np.arange(5) + 19000, 2).extra)
    assert (got == NO_DAY).all()


# --------------------------------------------------------------------------- exact in any split


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([np.uint8, np.uint16]), st.sampled_from([1, 2]), st.integers(1, 5))
def test_any_split_and_order_of_the_frames_gives_the_numpy_reference(seed, dtype, stride, parts):
    rng = np.random.default_rng(seed)
    n, shape = int(rng.integers(1, 24)), (int(rng.integers(4, 12)), int(rng.integers(4, 12)))
    frames = frames_with_defects(rng, n, shape, dtype)
    days = rng.integers(19000, 19000 + 3 * n, n)  # unsorted, with repeats: frames of one day
    want = reference(frames, days, stride)
    assert (want[:, 1, 1] == np.sort(days)[:4].tolist() + [NO_DAY] * (4 - n)).all()  # the hot sensel's
    order = rng.permutation(n)
    split = [idx for idx in np.array_split(order, parts) if len(idx)]
    sums = [part_sums(frames[idx], days[idx], stride) for idx in split]
    for s, idx in zip(sums, split):
        np.testing.assert_array_equal(first_days(s.extra), reference(frames[idx], days[idx], stride))
    added = merge_partials(sums)  # integer partitions add while their types hold them
    assert isinstance(added, IntegerSums)
    np.testing.assert_array_equal(first_days(added.extra), want)
    merged = PixelStats.merge_all([s.to_stats() for s in sums[::-1]])  # as float totals, in another order
    np.testing.assert_array_equal(first_days(merged.extra), want)
    assert merged.n == n and all(merged.extra[k].dtype == np.uint16 for k in FIRST_DAYS)


@pytest.mark.parametrize("stride", [1, 2])
def test_row_tiles_keep_their_own_earliest_days(stride):
    """A scan reduces row tiles apart: their days, stacked, are the whole frame's."""
    rng = np.random.default_rng(5)
    frames = frames_with_defects(rng, 30, (17, 13), np.uint16)
    days = rng.integers(19000, 19400, 30)
    tiles = [first_days(part_sums(frames, days, stride, rows=(y0, y1)).extra) for y0, y1 in ((0, 6), (6, 11), (11, 17))]
    np.testing.assert_array_equal(np.concatenate(tiles, axis=1), reference(frames, days, stride))


def test_adding_two_parts_keeps_the_earliest_four_of_their_eight_ties_included():
    a = {k: np.array([d], np.uint16) for k, d in zip(FIRST_DAYS, [5, 9, 12, NO_DAY])}
    b = {k: np.array([d], np.uint16) for k, d in zip(FIRST_DAYS, [9, 10, 11, 30])}
    both = add(a, b, 100)
    assert [int(both[k][0]) for k in FIRST_DAYS] == [5, 9, 9, 10]
    assert all((add(b, a, 100)[k] == both[k]).all() for k in FIRST_DAYS)  # either way round
    none = {k: np.array([NO_DAY], np.uint16) for k in FIRST_DAYS}
    assert all((add(none, none, 100)[k] == NO_DAY).all() for k in FIRST_DAYS)


@pytest.mark.parametrize("numba_loaded", [True, False])
def test_the_merge_network_and_numpys_sort_agree(monkeypatch, numba_loaded):
    """``add`` merges two sides' earliest days with numba's min/max network where numba is loaded
    (a sort of 8 took seconds on a 12 MP sensor) and with numpy's sort where it is not."""
    from pipeline.stats import fused as fused_module

    if numba_loaded:
        assert fused_module.kernels() is not None
    else:
        monkeypatch.setattr(fused_module, "KERNELS", False)
    rng = np.random.default_rng(7)
    pool = np.array([19000, 19001, 19005, 19100, 19500, NO_DAY], np.uint16)  # ties are common
    sides = [np.sort(rng.choice(pool, (4, 37, 23)), axis=0).astype(np.uint16) for _ in range(2)]
    a, b = ({k: side[i] for i, k in enumerate(FIRST_DAYS)} for side in sides)
    expected = np.sort(np.concatenate(sides), axis=0)[:4]
    both = add(a, b, 100)
    np.testing.assert_array_equal(np.stack([both[k] for k in FIRST_DAYS]), expected)
    assert all(a[k] is not both[k] for k in FIRST_DAYS)  # the sides stay as they were
    np.testing.assert_array_equal(np.stack([a[k] for k in FIRST_DAYS]), sides[0])
