"""The across sums (``stats.model.ACROSS_SUMS``): per sensel, over the frames, its residual against
its two same-colour neighbours across a column (``across_x``) or a row (``across_y``) in steps of
1/16 of its frame's noise sigma, clipped at 1 sigma. Counted here from the frames themselves;
exact in any split and order; the compiled kernel equal to numpy on rows long enough for its
vector loops and its edge columns."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stats import IntegerSums
from pipeline.stats.model import ACROSS_CLIP, ACROSS_LIMIT, ACROSS_STEPS, ACROSS_SUMS, ModelSpec
from pipeline.stats.noise_bars import BAR_SIGMAS, bar_map, bars_numpy

from .test_strong_counts import around, noisy_frames, three_ways
from .test_strong_counts import summed as counted

SPEC = ModelSpec(counts=True, lines=True)


def reference(frames: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(across_x, across_y) straight from the frames: 2v - the two neighbours, over the sigma of
    that difference (sqrt(6/20) of the residual 4r's, which the bar holds 3 times)."""
    f = frames.astype(np.int64)
    h, w = f.shape[1:]
    up, down = around(h, stride)
    left, right = around(w, stride)
    bar = bar_map(bars_numpy(frames, stride), np.arange(h), w, stride, 1)[..., 0]
    inverse = np.float32(ACROSS_STEPS * BAR_SIGMAS * np.sqrt(20 / 6)) / bar.astype(np.float32)
    out = []
    for a in (2 * f - f[:, :, left] - f[:, :, right], 2 * f - f[:, up] - f[:, down]):
        out.append(np.clip(np.rint(a.astype(np.float32) * inverse), -ACROSS_LIMIT, ACROSS_LIMIT).astype(np.int64).sum(0))
    return out[0], out[1]


def summed(frames: np.ndarray, stride: int, fused: bool = True) -> IntegerSums:
    return counted(frames, stride, fused, SPEC)


@pytest.mark.parametrize("dtype,sigma", [(np.uint8, 3.0), (np.uint16, 40.0)])
@pytest.mark.parametrize("stride", [1, 2])
def test_an_offset_column_stands_out_across_it_and_not_along_it(dtype, sigma, stride):
    """A column raised by 2 sigmas in every frame: across it (left and right) each sensel reads
    2 / sqrt(1.5) sigmas a frame, the sensels beside it half that, negative, each frame clipped at
    ``ACROSS_CLIP``; along it (above and below share the offset) nothing. Healthy sensels sum to
    about 0."""
    rng = np.random.default_rng(3)
    n = 20
    frames = noisy_frames(rng, n, (48, 40), dtype, sigma)
    col = 10 * stride
    frames[:, 4:44, col] = np.clip(frames[:, 4:44, col].astype(np.int64) + round(2 * sigma), 0,
                                   np.iinfo(dtype).max).astype(dtype)
    sums = summed(frames, stride)
    across_x, across_y = reference(frames, stride)
    np.testing.assert_array_equal(sums.extra["across_x"], across_x)
    np.testing.assert_array_equal(sums.extra["across_y"], across_y)
    z = np.linspace(-8, 8, 16001)
    density = np.exp(-z * z / 2) / np.sqrt(2 * np.pi) * (z[1] - z[0])

    def expected(mu: float) -> float:  # a frame's mean term, in steps: E clip(mu + Z) for Z ~ N(0, 1)
        return float((np.clip(mu + z, -ACROSS_CLIP, ACROSS_CLIP) * density).sum()) * ACROSS_STEPS

    mu = 2 / np.sqrt(1.5)  # sigmas of the across residual
    inside = slice(8, 40)
    assert abs(np.median(across_x[inside, col]) / n - expected(mu)) < 0.25 * expected(mu)
    assert abs(np.median(across_x[inside, col + stride]) / n - expected(-mu / 2)) < 0.25 * expected(mu)
    assert abs(np.median(across_y[inside, col]) / n) < 0.2 * expected(mu)
    healthy = np.ones(across_x.shape, bool)
    healthy[:, col - stride : col + stride + 1] = False
    assert abs(np.median(across_x[healthy])) / n < 0.05 * ACROSS_STEPS
    assert np.abs(sums.extra["across_x"]).max() <= ACROSS_LIMIT * n


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.integers(2, 4), st.sampled_from([np.uint8, np.uint16]), st.sampled_from([1, 2]))
def test_across_sums_are_exact_in_any_split_and_order_and_fused_equals_numpy(seed, parts, dtype, stride):
    rng = np.random.default_rng(seed)
    frames = noisy_frames(rng, 9, (13, 17), dtype, 3.0 if dtype is np.uint8 else 40.0)
    jumps = rng.random(frames.shape) < 0.03
    frames = np.where(jumps, rng.choice([0, np.iinfo(dtype).max], frames.shape), frames).astype(dtype)
    whole, numpy_sums, split = three_ways(rng, frames, stride, parts, SPEC)
    for name, ref in zip(ACROSS_SUMS, reference(frames, stride)):
        np.testing.assert_array_equal(whole.extra[name], ref, err_msg=name)
        np.testing.assert_array_equal(numpy_sums.extra[name], whole.extra[name], err_msg=name)
        np.testing.assert_array_equal(split.extra[name], whole.extra[name], err_msg=name)
        assert split.extra[name].dtype == whole.extra[name].dtype == np.int32


def test_across_sums_only_with_range_counts_and_one_value_per_sensel():
    assert not set(ACROSS_SUMS) & set(ModelSpec(counts=True).names)
    assert not set(ACROSS_SUMS) & set(ModelSpec(exposure=True, lines=True).names)
    assert set(ACROSS_SUMS) <= set(SPEC.names)


@pytest.mark.parametrize("dtype,stride", [(np.uint16, 2), (np.uint8, 1)])
def test_the_compiled_kernel_gives_numpys_across_sums_on_long_rows(dtype, stride):
    """Rows longer than the kernel's chunk (its vector loop, its edge columns, several blocks of
    bars), clipped terms among them: the compiled kernel, loaded, gives numpy's sums."""
    from pipeline.stats.fused import kernels

    assert kernels() is not None
    rng = np.random.default_rng(12)
    frames = noisy_frames(rng, 6, (37, 1203), dtype, 3.0 if dtype is np.uint8 else 40.0)
    jumps = rng.random(frames.shape) < 0.01
    frames = np.where(jumps, rng.choice([0, np.iinfo(dtype).max], frames.shape), frames).astype(dtype)
    fused, numpy_sums = summed(frames, stride), summed(frames, stride, fused=False)
    for name in ACROSS_SUMS:
        assert (np.abs(fused.extra[name]) >= ACROSS_LIMIT).sum() > 50  # clipped frames among them
        np.testing.assert_array_equal(fused.extra[name], numpy_sums.extra[name], err_msg=name)
