"""Adding frames to exact sums: the value and residual streams against numpy, row slices, halo rows."""

import numpy as np
import pytest

from pipeline.stats import IntegerSums, accumulate, stats_of_stack
from pipeline.stats.accumulate import as_lines

from .samples import RTOL, assert_exact, random_frames


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


def test_as_lines_reads_a_row_slice_without_a_copy():
    frames = random_frames(np.random.default_rng(3), (5, 23, 17 * 3), np.uint8)
    middle = frames[:, 8:16]
    assert not middle.flags.c_contiguous
    lines, step = as_lines(middle)
    assert np.shares_memory(lines, frames) and step == 23 and lines.flags.c_contiguous
    for f in range(5):
        np.testing.assert_array_equal(lines[f * step : f * step + middle.shape[1]], middle[f])


def test_rejects_too_few_halo_rows():
    with pytest.raises(ValueError, match="halo rows"):
        accumulate(IntegerSums.zeros((2, 3)), np.zeros((1, 4, 3), np.uint8), 2, 1)
