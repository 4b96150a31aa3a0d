"""The local scale: its rows and points are the same numbers, and measuring it band by band changes none."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.detect.scale import BlockScale


@pytest.mark.parametrize("shape,block", [((100, 130), 32), ((37, 53), 8), ((5, 7), 32)])
def test_block_scale_rows_and_points_are_the_same_numbers(shape, block):
    rng = np.random.default_rng(0)
    dev = (rng.standard_normal(shape) * rng.uniform(0.5, 3, shape)).astype(np.float32)
    dev[0, :3] = np.nan if shape[0] > 50 else dev[0, :3]
    scale = BlockScale.of_plane(dev, block, 0.1, 0.0)
    # the reference: the whole map by gathering the interpolated grid rows
    y0, y1, fy = scale.axis(np.arange(shape[0]), scale.bh, scale.grid.shape[0])
    x0, x1, fx = scale.axis(np.arange(shape[1]), scale.bw, scale.grid.shape[1])
    rows = scale.grid[y0] * (1 - fy)[:, None] + scale.grid[y1] * fy[:, None]
    ref = rows[:, x0] * (1 - fx) + rows[:, x1] * fx
    np.testing.assert_array_equal(np.concatenate([scale.rows(r, min(r + 9, shape[0])) for r in range(0, shape[0], 9)]), ref)
    ys, xs = np.divmod(np.arange(dev.size), shape[1])
    np.testing.assert_array_equal(scale.points(ys, xs), ref[ys, xs])


