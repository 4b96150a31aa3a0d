"""A partition's exact integer sums: their narrow types, their limits, and how partitions add."""

import numpy as np
import pytest

from pipeline.stats import IntegerSums, PixelStats, accumulate, max_batch_frames, merge_partials, sum_types
from pipeline.stats.moments import RESIDUAL_SCALE

from ..conftest import pad_rows_reflect
from .samples import assert_exact


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


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_narrow_sums_hold_a_full_partition_of_full_scale_swings(dtype):
    """The most frames ``sum_types`` allows, at the worst values, still add up exactly."""
    limit = sum_types(dtype)[2]
    top = np.iinfo(dtype).max
    worst = np.zeros((2, 6, 6), dtype)
    worst[0, 2, 2] = top  # residual +4*top
    worst[1] = top
    worst[1, 3, 3] = 0  # residual -4*top
    narrow, wide = IntegerSums.zeros((6, 6), dtype), IntegerSums.zeros((6, 6))
    for _ in range(limit // 2):
        for sums in (narrow, wide):
            accumulate(sums, worst, 1)
    np.testing.assert_array_equal(narrow.s1, wide.s1)
    np.testing.assert_array_equal(narrow.s2, wide.s2)
    assert wide.s2.max() > np.iinfo(np.int32).max or dtype == np.uint8
    a, b = narrow.to_stats(), wide.to_stats()
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.m2, b.m2)


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


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_partitions_residual_sums_hold_its_most_extreme_frames(dtype):
    """The model's sums of 4r over some frames (clipped, holes) are as narrow as the residual's s1:
    every frame of a full partition at the largest |4r| still fits their type."""
    from pipeline.stats.model import ModelSpec

    sums = IntegerSums.zeros((2, 3), dtype, True, ModelSpec(exposure=True, white=int(np.iinfo(dtype).max)))
    peak = RESIDUAL_SCALE * int(np.iinfo(dtype).max)
    for name in ("excluded_sum", "holes_sum"):
        info = np.iinfo(sums.extra[name].dtype)
        assert sums.max_frames * peak <= info.max and -sums.max_frames * peak >= info.min, name
        assert info.max <= np.iinfo(sums.s1.dtype).max  # no wider than the moments' own sum
