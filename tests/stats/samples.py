"""Random frames and their sums, and the checks against numpy references, shared by the stats tests."""

import numpy as np

from pipeline.stats import IntegerSums, PixelStats, accumulate, accumulate_numpy, row_neighbours
from pipeline.stats.sums import to_stats_numpy

from ..conftest import pad_rows_reflect

RTOL = 1e-12


def assert_exact(stats: PixelStats, stack: np.ndarray) -> None:
    ref = stack.astype(np.float64)
    np.testing.assert_allclose(stats.mean[0], ref.mean(0), rtol=RTOL, atol=0)
    np.testing.assert_allclose(stats.var[0], ref.var(0), rtol=RTOL, atol=1e-300)


def random_frames(rng, shape, dtype):
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True, dtype=dtype)


def padded(frames, pad):
    """Halo rows as the scan makes them (reflect; edge where a single row cannot reflect)."""
    return pad_rows_reflect(frames, pad, pad) if frames.shape[1] > pad else np.pad(
        frames, [(0, 0), (pad, pad)] + [(0, 0)] * (frames.ndim - 2), mode="edge")


def both(block, stride, pad, start=None, rows=None, narrow=False):
    """(fused, reference) sums of ``block``, both starting from ``start`` (zeros by default).

    ``narrow``: in the frame dtype's narrow accumulator types (``sum_types``), as a scan keeps them.
    """
    y0, y1 = rows if rows is not None else (0, block.shape[1] - 2 * pad)
    core = (y1 - y0, *block.shape[2:])
    fused, ref = (IntegerSums.zeros(core, block.dtype if narrow else None) for _ in range(2))
    if start is not None:
        for s in (fused, ref):
            s.s1[...] = start[0]
            s.s2[...] = start[1]
    accumulate(fused, block, stride, pad, rows)
    accumulate_numpy(ref, block, stride, row_neighbours(block.shape[1], stride, pad, rows), row0=-pad)
    ref.n += len(block)
    return fused, ref


def assert_identical(fused, ref, narrow=False):
    assert fused.n == ref.n
    if not narrow:
        assert fused.s1.dtype == ref.s1.dtype == np.int64 and fused.s2.dtype == np.int64
    np.testing.assert_array_equal(fused.s1, ref.s1)
    np.testing.assert_array_equal(fused.s2, ref.s2)
    np.testing.assert_array_equal(fused.counts, ref.counts)


def assert_same_bits(fused: PixelStats, ref: PixelStats):
    """Bit-identical float64 arrays (so also equal signed zeros), and no NaN anywhere."""
    assert fused.n == ref.n
    for x, y in ((fused.mean, ref.mean), (fused.m2, ref.m2)):
        assert x.dtype == y.dtype == np.float64 and x.shape == y.shape
        assert not np.isnan(x).any()
        assert np.array_equal(x, y)
        assert np.array_equal(x.view(np.int64), y.view(np.int64))


def sums_of(rng, n, pixel_shape, dtype=np.uint16, extreme=False):
    """Exact sums of n random frames through the real accumulation (optionally full-scale 0/max swings)."""
    frames = random_frames(rng, (n, *pixel_shape), dtype)
    if extreme:
        top = np.iinfo(dtype).max
        frames[::2] = top
        frames[1::2] = 0
        frames[:, ::2, 1::2] = top - frames[:, ::2, 1::2]  # checkerboard: residuals reach -/+ 4*top
    return accumulate(IntegerSums.zeros(pixel_shape), padded(frames, 1), 1, 1)


def random_stats(rng, n, pixel_shape, extreme=False):
    return to_stats_numpy(sums_of(rng, n, pixel_shape, np.uint16, extreme))
