"""The fused numba accumulation kernel against the numpy reference: bit-identical integer sums."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import stats
from pipeline.reduce import ReadBatch, tile_with_halo
from pipeline.stats import IntegerSums, _accumulate_numpy, _as_lines, accumulate, pad_rows_reflect

pytest.importorskip("numba")


def random_frames(rng, shape, dtype):
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True, dtype=dtype)


def padded(frames, pad):
    """Halo rows as the scan makes them (reflect; edge where a single row cannot reflect)."""
    return pad_rows_reflect(frames, pad, pad) if frames.shape[1] > pad else np.pad(
        frames, [(0, 0), (pad, pad)] + [(0, 0)] * (frames.ndim - 2), mode="edge")


def both(block, stride, pad, start=None):
    """(fused, reference) sums of ``block``, both starting from ``start`` (zeros by default)."""
    core = (block.shape[1] - 2 * pad, *block.shape[2:])
    fused, ref = IntegerSums.zeros(core), IntegerSums.zeros(core)
    if start is not None:
        for s in (fused, ref):
            s.s1[...] = start[0]
            s.s2[...] = start[1]
    accumulate(fused, block, stride, pad)
    _accumulate_numpy(ref, block, stride, pad)
    ref.n += len(block)
    return fused, ref


def assert_identical(fused, ref):
    assert fused.n == ref.n
    assert fused.s1.dtype == ref.s1.dtype == np.int64 and fused.s2.dtype == np.int64
    np.testing.assert_array_equal(fused.s1, ref.s1)
    np.testing.assert_array_equal(fused.s2, ref.s2)


def test_the_kernel_is_what_runs():
    """Guard against a silent fallback: the fused path must accept the scan's blocks."""
    block = padded(random_frames(np.random.default_rng(0), (3, 5, 6, 3), np.uint8), 1)
    assert stats._accumulate_fused(IntegerSums.zeros((5, 6, 3)), block, 1, 1)
    assert stats._kernels() is not None


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("shape,dtype", [
    ((7, 9, 11, 3), np.uint8),  # RGB
    ((5, 8, 13), np.uint16),  # gray / CFA
    ((1, 6, 7, 3), np.uint8),  # k = 1
    ((1, 4, 5), np.uint16),
    ((4, 1, 9, 3), np.uint8),  # a single row
    ((3, 40, 2500, 3), np.uint8),  # rows longer than the kernel's chunk (edge columns in the last chunk)
    ((3, 6, 1030), np.uint16),  # a chunk boundary next to the right edge
])
def test_fused_equals_numpy(shape, dtype, stride):
    rng = np.random.default_rng(sum(shape) + stride)
    assert_identical(*both(padded(random_frames(rng, shape, dtype), stride), stride, stride))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("width", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_narrow_images_reflect_like_numpy(width, stride, channels, dtype):
    """Widths 1..3 have no interior columns (or neighbours that reflect onto the pixel itself)."""
    shape = (3, 5, width) + ((channels,) if channels else ())
    rng = np.random.default_rng(width * 10 + stride)
    assert_identical(*both(padded(random_frames(rng, shape, dtype), stride), stride, stride))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_extreme_values(dtype):
    top = np.iinfo(dtype).max
    frames = np.zeros((6, 5, 7, 3), dtype)
    frames[::2] = top  # residuals swing between -4*top and 4*top
    frames[1, 2, 3] = top  # isolated bright pixel
    frames[4, :, ::2] = top
    for stride in (1, 2):
        assert_identical(*both(padded(frames, stride), stride, stride))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_more_frames_than_one_kernel_call_holds(dtype):
    """Full-scale frames beyond the int32 row buffers' limit are split into several calls."""
    limit = stats._BUFFER_TYPES[np.dtype(dtype)][1]
    frames = np.full((limit + 5, 3, 2), np.iinfo(dtype).max, dtype)
    frames[1::3, 1, 0] = 0
    assert_identical(*both(padded(frames, 1), 1, 1))


def test_adds_to_existing_sums_and_wider_halo():
    rng = np.random.default_rng(5)
    frames = random_frames(rng, (4, 10, 6, 3), np.uint8)
    start = (rng.integers(-2**40, 2**40, (2, 6, 6, 3)), rng.integers(0, 2**50, (2, 6, 6, 3)))
    # pad_rows (2) larger than stride (1): the two outer halo rows are never neighbours
    assert_identical(*both(frames, 1, 2, start))


@pytest.mark.parametrize("stride", [1, 2])
def test_tiles_of_a_batch_are_read_in_place(stride):
    """The scan's blocks are row slices of a batch: fused sums equal numpy's, without a copy."""
    rng = np.random.default_rng(stride)
    batch = ReadBatch(random_frames(rng, (5, 23, 17, 3), np.uint8), [])
    for y0, y1 in [(0, 8), (8, 16), (16, 23)]:
        block = tile_with_halo(batch, y0, y1, stride)
        assert_identical(*both(block, stride, stride))
    middle = tile_with_halo(batch, 8, 16, stride).reshape(5, 8 + 2 * stride, -1)
    assert not middle.flags.c_contiguous
    lines, step = _as_lines(middle)
    assert np.shares_memory(lines, batch.frames) and step == 23 and lines.flags.c_contiguous
    for f in range(5):
        np.testing.assert_array_equal(lines[f * step : f * step + middle.shape[1]], middle[f])


def test_read_only_and_odd_layouts():
    rng = np.random.default_rng(9)
    frames = padded(random_frames(rng, (4, 6, 8, 3), np.uint16), 1)
    frames.flags.writeable = False
    assert_identical(*both(frames, 1, 1))
    fortran = np.asfortranarray(padded(random_frames(rng, (3, 6, 8), np.uint8), 1))
    assert_identical(*both(fortran, 1, 1))
    every_other = padded(random_frames(rng, (3, 6, 16, 3), np.uint8), 1)[:, :, ::2]
    assert_identical(*both(every_other, 2, 1 + 1))


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint32, np.bool_])
def test_other_dtypes_take_the_numpy_path(dtype):
    frames = (np.random.default_rng(1).random((3, 6, 5)) * 100).astype(dtype)
    assert not stats._accumulate_fused(IntegerSums.zeros((4, 5)), frames, 1, 1)
    assert_identical(*both(frames, 1, 1))


def test_without_numba_the_numpy_path_serves(monkeypatch):
    monkeypatch.setattr(stats, "_KERNELS", False)
    frames = padded(random_frames(np.random.default_rng(2), (3, 4, 5, 3), np.uint8), 1)
    assert not stats._accumulate_fused(IntegerSums.zeros((4, 5, 3)), frames, 1, 1)
    assert_identical(*both(frames, 1, 1))


def test_rejects_too_few_halo_rows():
    with pytest.raises(ValueError, match="halo rows"):
        accumulate(IntegerSums.zeros((2, 3)), np.zeros((1, 4, 3), np.uint8), 2, 1)


shapes = st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 12), st.sampled_from([0, 1, 3, 4]),
                   st.sampled_from([1, 2]), st.sampled_from([np.uint8, np.uint16]), st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_any_shape(spec):
    k, rows, width, channels, stride, dtype, seed = spec
    shape = (k, rows, width) + ((channels,) if channels else ())
    frames = random_frames(np.random.default_rng(seed), shape, dtype)
    assert_identical(*both(padded(frames, stride), stride, stride))
