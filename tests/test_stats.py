"""The stats math against numpy float64, and the merge's algebra."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stats import IntegerSums, PixelStats, accumulate, max_batch_frames, merge_partials, stats_of_stack, sum_types

from .conftest import pad_rows_reflect

RTOL = 1e-12


def assert_exact(stats: PixelStats, stack: np.ndarray) -> None:
    ref = stack.astype(np.float64)
    np.testing.assert_allclose(stats.mean[0], ref.mean(0), rtol=RTOL, atol=0)
    np.testing.assert_allclose(stats.var[0], ref.var(0), rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("shape,dtype", [((9, 7, 5, 3), np.uint8), ((4, 11, 13), np.uint16), ((1, 5, 7, 3), np.uint8),
                                         ((1, 3, 3), np.uint16), ((17, 1, 1), np.uint8)])
def test_value_stream_equals_numpy(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    stack = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True, dtype=dtype)
    assert_exact(stats_of_stack(stack), stack)


def test_extreme_values_stay_exact():
    """Full-scale uint16 values with a tiny spread: where naive sum-of-squares loses digits."""
    stack = np.full((300, 4, 4), 65535, np.uint16)
    stack[::7] = 65534
    assert_exact(stats_of_stack(stack), stack)
    constant = np.full((5, 3, 3), 65535, np.uint16)
    assert np.all(stats_of_stack(constant).var[0] == 0)


def test_residual_stream_is_value_minus_neighbour_mean():
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 255, (6, 8, 10), dtype=np.uint8)
    stats = stats_of_stack(stack)
    padded = np.pad(stack.astype(np.float64), [(0, 0), (1, 1), (1, 1)], mode="reflect")
    neighbours = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]) / 4
    residual = stack - neighbours
    np.testing.assert_allclose(stats.mean[1], residual.mean(0), rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(stats.var[1], residual.var(0), rtol=RTOL, atol=1e-12)


def test_cfa_residual_uses_same_colour_neighbours():
    """A flat mosaic of alternating colours has zero residual at stride 2, not at stride 1."""
    mosaic = np.tile(np.array([[100, 200], [200, 50]], np.uint16), (4, 5))[None]
    assert np.all(stats_of_stack(mosaic, stride=2).mean[1] == 0)
    assert np.any(stats_of_stack(mosaic, stride=2 if False else 1).mean[1] != 0)


def test_summing_m2_is_wrong_and_chan_is_right():
    """The seed article merged partitions by adding their M2s: that drops the between-group term."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 100, (10, 4, 4), dtype=np.uint8)
    b = rng.integers(150, 255, (10, 4, 4), dtype=np.uint8)
    sa, sb = stats_of_stack(a), stats_of_stack(b)
    truth = np.concatenate([a, b]).astype(np.float64).var(0)
    seed_var = (sa.m2[0] + sb.m2[0]) / (sa.n + sb.n)
    assert np.all(seed_var < 0.5 * truth)  # the shortcut misses the spread between the two means
    np.testing.assert_allclose(sa.merge(sb).var[0], truth, rtol=RTOL)


frames = st.integers(1, 12).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, 2**32 - 1), st.sampled_from([np.uint8, np.uint16])))


@settings(max_examples=40, deadline=None)
@given(frames, st.data())
def test_any_split_in_any_order_gives_the_same_result(spec, data):
    n, seed, dtype = spec
    stack = np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, (n, 3, 4, 2), endpoint=True, dtype=dtype)
    cuts = sorted(data.draw(st.lists(st.integers(1, n - 1), max_size=4, unique=True)) if n > 1 else [])
    parts = [stats_of_stack(p) for p in np.split(stack, cuts)]
    order = data.draw(st.permutations(range(len(parts))))
    merged = parts[order[0]]
    for i in order[1:]:
        merged = merged.merge(parts[i])
    assert merged.n == n
    assert_exact(merged, stack)
    np.testing.assert_allclose(merged.mean, stats_of_stack(stack).mean, rtol=RTOL, atol=1e-12)


def test_merge_identity_and_shape_mismatch():
    stack = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    s = stats_of_stack(stack)
    empty = PixelStats.empty((3, 4))
    assert s.merge(empty) is s and empty.merge(s) is s
    with pytest.raises(ValueError, match="cannot merge"):
        s.merge(PixelStats.empty((4, 3)))


def _sums(stack: np.ndarray) -> IntegerSums:
    return accumulate(IntegerSums.zeros(stack.shape[1:], stack.dtype), stack, 1)


def test_partitions_add_as_integers_while_their_types_hold_them():
    """Within the types' limit, partials add exactly, so the merge equals the whole stack's sums
    bit for bit; past it (or with a float partial), the rest merges with Chan's formula."""
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 256, (9, 5, 4, 3), dtype=np.uint8)
    a, b, c = _sums(stack[:4]), _sums(stack[4:7]), _sums(stack[7:])
    whole = _sums(stack)
    added = merge_partials([a, b, c])
    assert isinstance(added, IntegerSums) and added.n == 9
    for x, y in zip((added.s1, added.s2, added.counts), (whole.s1, whole.s2, whole.counts)):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == y.dtype
    assert a.n == 4 and np.array_equal(a.s1, _sums(stack[:4]).s1)  # the inputs are left as they were

    limited = [IntegerSums(p.n, p.s1, p.s2, p.counts, max_frames=7) for p in (a, b, c)]
    assert not limited[0].can_add(limited[1] + limited[2]) and limited[0].can_add(limited[1])
    mixed = merge_partials(limited)  # a+b fill 7 frames, c joins by Chan
    assert isinstance(mixed, PixelStats) and mixed.n == 9
    assert_exact(mixed, stack)
    np.testing.assert_array_equal(mixed.counts, whole.counts)
    with pytest.raises(ValueError, match="exactly"):
        limited[0] + limited[1] + limited[2]

    resumed = merge_partials([whole.to_stats(), _sums(stack[:2])])  # a float partial: Chan
    assert isinstance(resumed, PixelStats) and resumed.n == 11
    assert_exact(resumed, np.concatenate([stack, stack[:2]]))
    assert sum_types(np.uint8)[2] == a.max_frames > 1000


def test_small_stats_merge_without_loading_numba():
    """A client merging thumbnails' segments must not pay numba's load (about a second)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from pipeline.stats import PixelStats; "
            "a = PixelStats(3, np.ones((2, 48, 64, 3)), np.ones((2, 48, 64, 3))); "
            "assert a.merge(a).n == 6; print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_integer_partitions_fit_int64():
    """The largest batch allowed keeps n*s2 of full-scale residuals exact."""
    k = max_batch_frames(np.uint16)
    peak = 4 * 65535
    assert k * (k * peak * peak) < 2**63
    worst = np.zeros((min(k, 64), 6, 6), np.uint16)
    worst[:, ::2, ::2] = 65535
    sums = accumulate(IntegerSums.zeros((6, 6)), pad_rows_reflect(worst, 1, 1), 1, 1)
    assert sums.s2.dtype == np.int64 and sums.s2.min() >= 0


def test_signed_input_has_the_same_exact_partition_limit_as_unsigned():
    """The residual of int16 frames spans 4 * (max - min), as uint16's does."""
    assert max_batch_frames(np.int16) == max_batch_frames(np.uint16) == 11585
