"""Each frame's noise bar (``stats.noise_bars``): what a sensel's residual must pass to count as beyond
its neighbours. The numba kernel equals the numpy reference to the bit; the bar follows the
frame's own noise, block by block and colour by colour; and it makes healthy sensels of a
textured photo count far less often than the neighbours' range did, while a defect still counts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.io import read_pixels
from pipeline.stats import IntegerSums, accumulate
from pipeline.stats import fused as fused_module
from pipeline.stats.noise_bars import BAR_FLOOR, BLOCK_PIXELS, bar_map, bars, bars_numpy, geometry, table_shape
from pipeline.synth import synthesize_collection

pytest.importorskip("numba")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 80), st.integers(1, 90), st.sampled_from([0, 1, 3]), st.sampled_from([1, 2, 6]),
       st.sampled_from([np.uint8, np.uint16]), st.integers(0, 2**32 - 1))
def test_the_kernel_equals_the_reference(k, height, width, channels, stride, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (k, height, width) + ((channels,) if channels else ())
    frames = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True, dtype=dtype)
    frames[:, ::7] //= 3  # some structure
    want = bars_numpy(frames, stride)
    assert want.shape == table_shape(k, height, width, stride, max(channels, 1))
    fused_module.KERNELS = None
    fused_module.kernels()  # loaded: the kernel runs whatever the size
    np.testing.assert_array_equal(bars(frames, stride), want)
    assert want.min() >= BAR_FLOOR
    # a band of rows: the block rows that hold them, the reference's, and 0 elsewhere
    y0 = int(rng.integers(0, height))
    y1 = int(rng.integers(y0 + 1, height + 1))
    side = geometry(stride)[0]
    first, end = y0 // side, -(-y1 // side)
    band = bars(frames, stride, (y0, y1))
    np.testing.assert_array_equal(band[:, first:end], want[:, first:end])
    assert not band[:, :first].any() and not band[:, end:].any()
    np.testing.assert_array_equal(bars_numpy(frames, stride, rows=(y0, y1)), band)


@pytest.mark.parametrize("stride,channels", [(2, 1), (1, 3), (1, 1)])
def test_the_bar_is_three_sigmas_of_the_residual_in_each_block_and_colour(stride, channels):
    rng = np.random.default_rng(1)
    side = BLOCK_PIXELS
    h, w = 2 * side, 2 * side
    sigma = np.ones((h, w, channels)) * 20.0
    sigma[:side, side:] = 80.0  # a noisier block (a brighter, shot-noise-limited area)
    if stride == 2:
        sigma[1::2, 0::2] *= 2  # one colour of the mosaic noisier everywhere
    k = 8  # a median of 64 samples scatters by 15 %: over 8 frames, 5 %
    frames = np.clip(2000 + rng.normal(0, 1, (k, h, w, channels)) * sigma, 0, 65535).astype(np.uint16)
    frames = frames[..., 0] if channels == 1 else frames
    table = bars(frames, stride).mean(axis=0)
    # the residual 4v - 4 neighbours of white noise has sigma sqrt(20) x the sensel's
    expected = 3 * np.sqrt(20) * 20.0
    flat = table[1, 1]  # a block at sigma 20 (every colour, but the noisier one)
    noisy = table[0, 1]
    colours = np.arange(table.shape[-1])
    doubled = (colours == 2) if stride == 2 else np.zeros(len(colours), bool)  # row 1, column 0
    np.testing.assert_allclose(flat[~doubled], expected, rtol=0.15)
    np.testing.assert_allclose(noisy[~doubled], 4 * expected, rtol=0.15)
    if stride == 2:
        np.testing.assert_allclose(flat[doubled], 2 * expected, rtol=0.15)


def test_a_bar_belongs_to_the_whole_frame_whatever_the_row_tile():
    """The scan adds row tiles of whole frames with the bars of the whole frame: any cut gives the
    counts of one pass over the frame."""
    rng = np.random.default_rng(4)
    frames = rng.integers(100, 400, (5, 150, 70), dtype=np.uint16)
    frames[:, 40:90, 10:30] //= 4  # a dark area across tile cuts
    frames[:, 77, 17] = 4000  # a hot sensel
    whole = accumulate(IntegerSums.zeros((150, 70)), frames, 2)
    table = bars(frames, 2)
    cuts = [(0, 37), (37, 78), (78, 150)]
    tiles = [accumulate(IntegerSums.zeros((y1 - y0, 70)), frames, 2, rows=(y0, y1), bars=table) for y0, y1 in cuts]
    np.testing.assert_array_equal(np.concatenate([t.counts for t in tiles], axis=1), whole.counts)
    # a band's bars are those of the block rows that hold it (a band reads no other)
    own = [accumulate(IntegerSums.zeros((y1 - y0, 70)), frames, 2, rows=(y0, y1), bars=bars(frames, 2, (y0, y1)))
           for y0, y1 in cuts]
    np.testing.assert_array_equal(np.concatenate([t.counts for t in own], axis=1), whole.counts)
    assert whole.counts[0, 77, 17] == 5


def test_healthy_sensels_of_a_photo_collection_rarely_count_and_far_less_than_by_the_range(tmp_path):
    """A camera's photos (synth: scenes with edges, highlights and gradients, exposures from
    1/4000 to 30 s, ISO 100 to 6400): the range of 4 neighbours is a poor measure of the noise
    there, and healthy sensels passed it often; the block's noise is a good one. A stuck sensel
    still stands out in most frames."""
    truth = synthesize_collection(tmp_path, frames=24, size=(640, 480), fmt="dng", seed=3)
    frames = np.stack([read_pixels(str(tmp_path / f)) for f in truth["files"]])
    sums = accumulate(IntegerSums.zeros(frames.shape[1:]), frames, 2)
    v = frames.astype(np.int64)
    nb = np.stack([np.roll(v, 2, 1), np.roll(v, -2, 1), np.roll(v, 2, 2), np.roll(v, -2, 2)])
    by_range = (v > 2 * nb.max(0) - nb.min(0)).sum(0)
    healthy = np.ones(frames.shape[1:], bool)
    healthy[:4], healthy[-4:], healthy[:, :4], healthy[:, -4:] = False, False, False, False  # np.roll wraps
    for d in truth["defects"]:
        healthy[max(d["y"] - 2, 0) : d["y"] + 3, max(d["x"] - 2, 0) : d["x"] + 3] = False
    n = len(frames)
    rate, range_rate = sums.counts[0][healthy].mean() / n, by_range[healthy].mean() / n
    assert rate < 0.01 and rate < range_rate / 2, (rate, range_rate)
    stuck = [d for d in truth["defects"] if d["kind"] == "stuck" and not d["border"]]
    assert stuck and all(sums.counts[:, d["y"], d["x"]].max() >= n // 2 for d in stuck)


def test_an_x_trans_block_holds_64_samples_of_each_of_its_36_positions():
    side, step, first = geometry(6)
    assert (side, step, first) == (48, 6, 0) and geometry(2) == (BLOCK_PIXELS, 8, 4) == geometry(1)[:1] + (8, 4)
    table = np.arange(36, dtype=np.int32).reshape(1, 1, 1, 36)
    got = bar_map(table, np.arange(12), 12, 6, 1)[0, ..., 0]
    np.testing.assert_array_equal(got, (np.arange(12)[:, None] % 6) * 6 + np.arange(12)[None, :] % 6)


def test_the_map_of_bars_follows_the_colour_of_each_sensel():
    table = np.arange(2 * 2 * 4, dtype=np.int32).reshape(1, 2, 2, 4)
    side = BLOCK_PIXELS
    got = bar_map(table, np.array([0, 1, side + 1]), 2 * side, 2, 1)[0, ..., 0]
    assert got[0, 0] == table[0, 0, 0, 0] and got[0, 1] == table[0, 0, 0, 1]
    assert got[1, 0] == table[0, 0, 0, 2] and got[1, 3] == table[0, 0, 0, 3]
    assert got[2, side] == table[0, 1, 1, 2]


def test_a_defect_next_to_a_sensel_does_not_lift_it_past_the_bar():
    """A dead neighbour (black among lit ones) puts its whole missing signal into the sensel's
    residual 4v - (the 4): the test takes the middle two of the 4, so the sensel is beyond only
    when it stands out of its healthy neighbours itself."""
    rng = np.random.default_rng(2)
    frames = np.clip(3000 + rng.normal(0, 20, (30, 64, 64)), 0, 65535).astype(np.uint16)
    frames[:, 30, 30] = 0  # dead
    sums = accumulate(IntegerSums.zeros((64, 64)), frames, 2)
    for y, x in ((28, 30), (32, 30), (30, 28), (30, 32)):
        r4 = 4 * frames[:, y, x].astype(int) - frames[:, y - 2, x] - frames[:, y + 2, x] \
            - frames[:, y, x - 2].astype(int) - frames[:, y, x + 2]
        assert (r4 > 2000).all()  # the residual alone would pass in every frame (its bar is ~270)
        assert sums.counts[0, y, x] <= 2  # but it is above all 4 by its own noise only by chance
    assert sums.counts[1, 30, 30] == 30
