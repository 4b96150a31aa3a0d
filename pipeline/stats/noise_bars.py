"""The bar a sensel must clear in a frame to count as beyond its neighbours: its frame's local noise.

The range counts (``COUNTS``) count, per sensel, the frames in which it stood above all 4 of its
same-colour neighbours, and by more than ``BAR_SIGMAS`` sigmas of the residual noise around it
in that frame (and the same below). The sigma is measured per frame, block by block
(``BLOCK_PIXELS`` a side: 32 sensels of a colour of a Bayer mosaic, 64 of RGB or gray) and
colour by colour, as 1.4826 x the median of |4r| over an even sample of the block's sensels of
that colour (every ``SAMPLE_PIXELS`` in each direction, 64 of them): robust to
the scene's edges and highlights and to the defects themselves, which are a minority of any
block.

Why not the neighbours' own range (a sensel beyond ``2 max - min``)? Four values measure a
spread poorly: on real photo collections a healthy sensel passed that test in 2.2 % of frames,
with a heavy tail across sensels (a binomial null put 22 healthy sensels of three 640x480
collections past a 1-in-10 false alarm bar), while the block sigma passes 0.4 % with a
binomial tail (none past it). Weak defects then stand out in fewer frames: on a sensor with a
2 % population of weak hot and telegraph sensels, 2,045 of 6,144 were significant by the range
test, 3,789 by this bar. A block's sigma is a frame's, whatever rows a task adds: the bars are
computed once per whole frame (``bars``), and every row tile of it reads the same ones.

All integers: 4r is exact, the median of integers is a half-integer, and the bar is rounded up
in integer arithmetic, so the numba kernel (``noise_kernels.noise_bars``) and the numpy reference
here give the same bars to the bit.
"""

from __future__ import annotations

import numpy as np

from .fused import fused_pays, kernels, read_only

# a block's side in pixels for gray, RGB and Bayer (``geometry`` gives every layout's)
BLOCK_PIXELS = 64
# a colour's samples: every this many pixels in each direction (a multiple of the stride), from
# half a step in (so that a small frame's one block has interior samples): 8 x 8 = 64 per colour.
# Their median is found by selection, not a sort: 64 values per block and colour cost 0.4 us
SAMPLE_PIXELS = 8
SAMPLES_PER_SIDE = BLOCK_PIXELS // SAMPLE_PIXELS
# the bar: BAR_SIGMAS x 1.4826 (a normal sigma per unit of median absolute value) x median |4r|
# = median x 4.4478, rounded up; in integers, the bar of twice the median (an integer) in 1/10^4
BAR_SIGMAS = 3
MAD_SIGMA = 1.4826
BAR_SCALE = 10_000
BAR_PER_TWICE_MEDIAN = round(BAR_SIGMAS * MAD_SIGMA / 2 * BAR_SCALE)  # 22239
# the least bar (in 4r, and the test is 4 (v - middle) > bar): one DN above equal neighbours
# counts, where the noise is below the quantisation (an 8-bit dark: 0 and 1 DN). A floor of 4 left
# the weak hot sensels of the Flea3 darks (1 DN in long frames over neighbours at 0) uncounted
BAR_FLOOR = 3


def geometry(stride: int) -> tuple[int, int, int]:
    """(block side, sample step, first sample's offset) in pixels for a layout's stride.

    All are multiples of the stride, so a sample's colour is its position modulo the stride:
    64, 8, 4 for gray, RGB and Bayer (stride 1 and 2); 48, 6, 0 for X-Trans (stride 6). Either
    way 8 x 8 = 64 samples per colour and block."""
    step = stride * max(1, SAMPLE_PIXELS // stride)
    return step * SAMPLES_PER_SIDE, step, step // 2 // stride * stride


def table_shape(frames: int, height: int, width: int, stride: int, channels: int) -> tuple[int, int, int, int]:
    """(frames, block rows, block columns, colours): colours are a mosaic's stride^2 positions
    times the interleaved channels."""
    side = geometry(stride)[0]
    return frames, -(-height // side), -(-width // side), stride * stride * channels


def bar_of(samples: np.ndarray) -> int:
    """The bar of one block's colour from its |4r| samples (int64): 4.4478 x their median, rounded
    up, at least ``BAR_FLOOR``."""
    if not len(samples):
        return BAR_FLOOR
    s = np.sort(samples)
    m = len(s)
    twice = int(s[(m - 1) // 2] + s[m // 2])
    return max((twice * BAR_PER_TWICE_MEDIAN + BAR_SCALE - 1) // BAR_SCALE, BAR_FLOOR)


def bars(frames: np.ndarray, stride: int, rows: tuple[int, int] | None = None) -> np.ndarray:
    """The bars of whole frames (k, H, W[, C]), int32 (``table_shape``): the numba kernel where it
    pays, else ``bars_numpy``; the same either way. ``rows`` (y0, y1): only the block rows that
    hold image rows y0 to y1 are computed, the others are 0 (a band of the sensor reads only its
    own: the whole table was 14 ms of a 12 MP frame, computed again by every band)."""
    frames = np.asarray(frames)
    k, height, width = frames.shape[:3]
    channels = frames.shape[3] if frames.ndim == 4 else 1
    shape = table_shape(k, height, width, stride, channels)
    first, end = block_rows(rows, height, stride)
    out = np.empty(shape, np.int32) if (first, end) == (0, shape[1]) else np.zeros(shape, np.int32)
    if k == 0 or frames.dtype not in (np.uint8, np.uint16) or not fused_pays(frames[0].size) or kernels() is None:
        return bars_numpy(frames, stride, out, rows)
    from .noise_kernels import noise_bars  # numba is there: ``kernels()`` loaded it

    flat = np.ascontiguousarray(frames).reshape(k * height, width * channels)
    side, step, offset = geometry(stride)
    noise_bars(read_only(flat), height, stride, channels, side, step, offset, BAR_FLOOR, BAR_PER_TWICE_MEDIAN,
               BAR_SCALE, first, end, out)
    return out


def block_rows(rows: tuple[int, int] | None, height: int, stride: int) -> tuple[int, int]:
    """The block rows (first, end) that hold image rows ``rows`` (all of them for None)."""
    side = geometry(stride)[0]
    y0, y1 = (0, height) if rows is None else rows
    return y0 // side, -(-y1 // side)


def bars_numpy(frames: np.ndarray, stride: int, out: np.ndarray | None = None,
               rows: tuple[int, int] | None = None) -> np.ndarray:
    """The reference: the bar of every frame, block and colour from the sampled sensels that have
    all 4 same-colour neighbours inside the frame (of the block rows that hold ``rows``)."""
    k, height, width = frames.shape[:3]
    channels = frames.shape[3] if frames.ndim == 4 else 1
    shape = table_shape(k, height, width, stride, channels)
    out = np.zeros(shape, np.int32) if out is None else out
    side, step, offset = geometry(stride)
    first, end = block_rows(rows, height, stride)
    for f in range(k):
        v = frames[f].astype(np.int64).reshape(height, width, channels)
        for by in range(first, min(end, shape[1])):
            for bx in range(shape[2]):
                for py in range(stride):
                    for px in range(stride):
                        ys = np.arange(by * side + py + offset, min(height, (by + 1) * side), step)
                        xs = np.arange(bx * side + px + offset, min(width, (bx + 1) * side), step)
                        ys = ys[(ys >= stride) & (ys < height - stride)]
                        xs = xs[(xs >= stride) & (xs < width - stride)]
                        yy, xx = np.meshgrid(ys, xs, indexing="ij")
                        for c in range(channels):
                            r4 = (4 * v[yy, xx, c] - v[yy - stride, xx, c] - v[yy + stride, xx, c]
                                  - v[yy, xx - stride, c] - v[yy, xx + stride, c])
                            out[f, by, bx, (py * stride + px) * channels + c] = bar_of(np.abs(r4).ravel())
    return out


def bar_map(table: np.ndarray, rows: np.ndarray, width: int, stride: int, channels: int) -> np.ndarray:
    """Each frame's bar at every sensel of image rows ``rows``: (k, len(rows), width, channels)."""
    side = geometry(stride)[0]
    y = np.asarray(rows)[:, None, None]
    x = np.arange(width)[None, :, None]
    c = np.arange(channels)[None, None, :]
    colour = ((y % stride) * stride + x % stride) * channels + c
    return table[:, y // side, x // side, colour]
