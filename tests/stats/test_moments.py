"""Per-pixel moments against numpy float64, and the algebra of Chan's merge."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stats import PixelStats, stats_of_stack

from .samples import RTOL, assert_exact, random_stats


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


def test_merge_with_an_empty_side_returns_the_other_unchanged():
    a = random_stats(np.random.default_rng(8), 3, (4, 5))
    empty = PixelStats.empty((4, 5))
    assert a.merge(empty) is a and empty.merge(a) is a
    assert empty.merge(empty) is empty
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(PixelStats.empty((5, 4)))


def test_small_stats_merge_without_loading_numba():
    """A client merging thumbnails' segments must not pay numba's load (about a second)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from pipeline.stats import PixelStats; "
            "a = PixelStats(3, np.ones((2, 48, 64, 3)), np.ones((2, 48, 64, 3))); "
            "assert a.merge(a).n == 6; print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
