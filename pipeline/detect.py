"""Robust per-pixel defect scores and classes from the final per-pixel statistics.

Pure numpy (no dask, no scipy). Every comparison is between a pixel and its *same-colour*
neighbourhood: the same channel of an RGB image, the same CFA sub-plane (stride 2) of a raw
mosaic. Locations come from local medians and scales from local MADs, so that one defect,
the scene or vignetting never set the yardstick for another pixel.

Four per-pixel score maps, each a robust z (about N(0, 1) on a clean sensor):

- ``hot`` / ``dead`` (level): the t statistic of the residual mean (pixel minus the mean of
  its 4 same-colour neighbours, averaged over the frames, over its own standard error),
  over its local MAD. The own standard error makes a single-frame event (a specular
  highlight, a one-frame blip in an 8-bit dark) count once, not n times; the MAD turns it
  into a z whatever the texture or the fixed-pattern noise. A defect leaks -1/4 of itself
  into each neighbour's residual: that ring is added back (see ``_remove_rings``).
- ``stuck``: log of the value variance over the local median of the neighbours' (the seed
  article's minimum-variance idea, made relative); a quantisation floor keeps clipped or
  black areas, where every variance is ~0, from looking stuck.
- ``noisy``: the same log ratio on the residual variance, minus the 1/16 of each neighbour's
  variance that the 4-neighbour mean leaks into it. The residual removes the scene changes
  that dominate the value variance of a photo stack, so flicker can stand out.

When the statistics carry range counts (``PixelStats.counts``: the frames in which a sensel
stood above / below the range of its 4 same-colour neighbours), a fifth map, ``counts``, scores
them: -log10 of their tail probability under a beta-binomial null fitted per plane and edge
class (``_CountNull``), thresholded for ``counts_false_alarms`` expected false reports per image.
Scene texture hardly moves these counts, so they find the warm and flickering sensels of photo
stacks that the moments cannot tell from the scene; they add to the moment scores (a sensel the
moments classify keeps that class, except that flicker by the counts outranks a level class).
Without counts, everything is as before.

Classes follow a fixed precedence (no variance, then level, then flicker) with physical side
conditions (see ``_classify``). Each defect is reported once, at its peak: one candidate per
pixel across channels, then greedy non-maximum suppression that also drops the rings a
strong defect leaves around itself and, in JPEGs, its chroma smear and block ringing
(``_suppress``). Thresholds are the configured ones, raised where a map's own tail is heavy
(``tail_threshold``): JPEG artefacts, scene events in photos or a skewed dark-current spread
would otherwise pass a fixed z.

Raw darks (one value per sensel, no scene) have a known noise model, and use it: the read
noise of the neighbours floors each sensel's standard error; the variance maps follow
chi-square (its spread floors their scale, and the noise map uses the Wilson-Hilferty cube
root, whose upper tail is right where the log's is short); flicker needs no isolation from
scene events. And the bright tail of the level map is the dark current itself, whose far end
is the warm pixels a dark stack is taken to find: instead of a tail guard, a hot pixel there
needs a physical offset, ``dark_min_sigmas`` of its neighbours' temporal noise.

Speed: the local medians are separable pseudo-medians (median of row medians) built from
min/max networks; MADs are per block and interpolated; whatever only a candidate needs
(neighbour quantiles, reference mean, ring removal) is computed at the few candidates alone.

Memory: the client already holds the float64 statistics (36 bytes per value) and keeps the
float32 score maps (16 bytes per value, 20 with the range counts), so the rest must stay small. Planes are scored one at a time,
each map made in its own place in the score maps, in row stripes that share the threads; one
plane-sized float32 intermediate lives besides (two in raw darks), and what the candidates need
of a map that is gone is rebuilt at the candidates, by the same arithmetic (see ``_score_plane``).
"""

from __future__ import annotations

import contextlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .defect import Defect
from .layout import SensorLayout
from .stats import PixelStats

# quantisation variance of integer data (uniform rounding error): a floor for every variance,
# so that a constant integer pixel is compared in a meaningful, finite way.
QUANT_VAR = 1.0 / 12.0


@dataclass
class DetectConfig:
    """Thresholds and neighbourhoods of :func:`detect`. Every score is a robust z.

    The lead mirrors these defaults into configs/default.yaml; the comment on each field is
    its documentation there.
    """

    # thresholds on the score maps (robust z); raised per image where a map's tail is heavy
    hot_threshold: float = 7.0  # level z above which a pixel is hot (includes weak "warm" pixels)
    dead_threshold: float = 7.0  # level z below -this: dead (includes "cold": consistently darker)
    stuck_threshold: float = 7.0  # variance z below -this: stuck (or dead when it also gives no signal)
    noisy_threshold: float = 7.0  # residual-variance z above this: noisy (flicker, random telegraph noise)
    tail_false_alarms: float = 0.2  # raise a threshold until clean pixels would pass it this often, by the map's own tail (0: off)
    tail_kinds: str = "hot dead noisy"  # maps with that tail guard (stuck needs none: its side conditions are strict; raw darks: not hot)
    tail_exclude_strength: float = 14.0  # the tails leave out pixels around level peaks this strong (their rings are explained)
    tail_samples: int = 400_000  # pixels sampled (evenly) to measure the tails of the score maps

    # neighbourhoods and scales
    window: int = 5  # side, in same-colour samples, of the neighbourhood for local medians (3, 5 or 7)
    rgb_spacing: int = 2  # sample spacing of that window in 3-channel images: steps over the demosaic/JPEG smear
    gray_spacing: int = 1  # the same for single-channel images that are not a CFA mosaic
    scale_block: int = 32  # side, in same-colour samples, of the blocks whose MAD is the local scale
    scale_floor: float = 0.25  # no amplitude scale below this fraction of the plane's median (clipped, flat areas)
    level_scale_floor: float = 1.0  # the level z is never larger than the t statistic itself
    var_scale_floor: float = 0.3  # no log-variance scale below this fraction of sqrt(2/(n-1)), chi-square's spread (raw darks: all of it)

    # ring removal (level): a defect leaks -1/4 of its offset into each same-colour neighbour's residual
    ring_dominance: float = 2.0  # a neighbour with an opposite-sign residual mean 2..8x larger (and |t| >= ring_t) leaked it
    ring_t: float = 4.0  # ... (see ring_dominance)

    # classes
    stuck_var_ratio: float = 0.35  # stuck also needs a variance below this x a low quantile of its neighbours' (clipping hot pixels keep more)
    dead_fraction: float = 0.1  # a variance-less pixel with less than this fraction of its neighbours' signal above black is dead
    cold_var_fraction: float = 0.25  # a darker variance-less pixel whose var ratio >= this x (signal ratio)^2 still responds: dead (cold)
    black_level: float | None = None  # raw black level, for the signal ratios; None = the plane's darkest mean
    noisy_excess_ratio: float = 0.5  # a bright/dark pixel whose extra residual std >= this x its offset is noisy, not hot/dead
    noisy_var_ratio: float = 2.0  # noisy also needs a residual variance above this x a high quantile of its neighbours'
    noisy_isolation: float = 4.0  # ... and none of its 8 nearest same-colour neighbours above this x their median (scene events)
    noisy_min_neighbour_var: float = 0.1  # ... and neighbours not this much quieter than the plane's median (clipped areas)
    noisy_edge_margin: int = 8  # px: no flicker reports this close to the border of a demosaiced image (JPEG padding)

    # one report per defect
    nms_radius: int = 3  # px, any channel: one report per blob (demosaic +-1 px, JPEG 4:2:0 chroma +-3 px)
    ring_radius: int = 8  # px: a candidate this close to a ring_ratio x stronger one is its ring or JPEG ringing
    ring_ratio: float = 3.0  # ... (see ring_radius)
    jpeg_block: int = 16  # px: JPEG ringing of a strong defect fills the (4:2:0 chroma) blocks its blob touches; 0: off
    far_ring_ratio: float = 8.0  # ... so candidates in those blocks this many times weaker than it are dropped
    nms_radius_cfa: int = 2  # px in a mosaic, same colour only: opposite-sign (ring) or ring_ratio x weaker neighbours go

    # range counts (stats.counts: frames a sensel stood beyond its 4 same-colour neighbours' range), when the stats have them
    use_counts: bool = True  # score the range counts (finds warm and flickering sensels in photos); False: the moments alone
    counts_false_alarms: float = 0.1  # expected false reports per image from the counts' beta-binomial null: sets their threshold
    counts_fit_quantile: float = 0.9995  # the null is fitted (by moments, per plane and edge class) on the counts below this quantile
    counts_flicker_frames: int = 2  # flicker by the counts also needs at least this many frames both above and below (and the null's mean on each side)

    # raw darks (one value per sensel, no scene): the noise is the sensor's own, so its physics is known
    dark_min_sigmas: float = 2.0  # a warm/hot pixel's offset is at least this x its neighbours' temporal sigma (it shows in single frames); replaces the hot tail guard

    # stack kind, resources
    stack_kind: str = "auto"  # "photos", "darks", or "auto" to decide from the statistics (the report says why)
    darks_ratio: float = 20.0  # auto stack kind: photos when the median value variance > this x the residual's
    threads: int = 0  # threads that score the row stripes of a plane (numpy releases the GIL); 0 = one per core, up to 4
    max_defects: int = 200_000  # report at most this many (strongest first); the score maps are complete


@dataclass
class Detection:
    """The result of :func:`detect`: defects, complete score maps, and why.

    ``defects``: one record per defect, at its peak, by descending score.
    ``scores``: per-pixel robust z maps (pixel shape, float32, >= 0) a user can threshold:
    "hot"/"dead" are the level z (brighter/darker), "stuck" the variance deficit, "noisy"
    the flicker excess. A dead pixel that gives no response is found through its missing
    variance, so its score is on the "stuck" map. With range counts in the stats (and
    ``use_counts``) a fifth map, "counts": the strongest of the above / below / summed count
    scores, -log10 of the tail probability under the plane's null; a defect found by the counts
    alone has that score (its detail says "beyond its neighbours' range").
    ``thresholds``: the thresholds used, per map: the configured ones, or higher where the
    map's own tail was heavy (see :func:`tail_threshold`); "counts" is the counts' null
    threshold, log10(3 N / counts_false_alarms) for N sensels, and "counts_hot"/"counts_dead"/
    "counts_noisy" appear where a stricter moment threshold raised it (:func:`count_thresholds`).
    ``stack_kind``/``stack_reason``: "photos" or "darks", and why.
    """

    defects: list[Defect]
    scores: dict[str, np.ndarray]
    thresholds: dict[str, float]
    stack_kind: str
    stack_reason: str


KIND_CODES = {"hot": 1, "dead": 2, "stuck": 3, "noisy": 4}
KIND_NAMES = {v: k for k, v in KIND_CODES.items()}


# --------------------------------------------------------------------------- row stripes
# Whole-plane work runs in row stripes of about this many values: a stripe's temporaries stay
# small (a few MB, whatever the sensor), stripes share the threads, and each one's data is
# still in cache from one step to the next.
_STRIPE_VALUES = 1 << 18


def _each(pool: ThreadPoolExecutor | None, rows: int, row_values: int, fn) -> None:
    """``fn(r0, r1)`` over stripes of ``rows`` rows of ``row_values`` values each, in ``pool``'s threads."""
    step = max(8, _STRIPE_VALUES // max(row_values, 1))
    ranges = [(r, min(r + step, rows)) for r in range(0, rows, step)]
    if pool is None or len(ranges) < 2:
        for r0, r1 in ranges:
            fn(r0, r1)
    else:
        for _ in pool.map(lambda r: fn(*r), ranges):  # numpy releases the GIL in its loops
            pass


# --------------------------------------------------------------------------- robust filters
def _med5_into(a, b, c, d, e, t1, t2, t3) -> np.ndarray:
    """Element-wise median of 5 arrays with 10 min/max into preallocated buffers (returns t1).

    Drop the minimum and the maximum of (a, b, c, d): what is left, with e, holds the
    median as the median of 3.
    """
    np.minimum(a, b, out=t1)
    np.minimum(c, d, out=t2)
    np.maximum(t1, t2, out=t1)  # lo = max(min(a, b), min(c, d))
    np.maximum(a, b, out=t2)
    np.maximum(c, d, out=t3)
    np.minimum(t2, t3, out=t2)  # hi = min(max(a, b), max(c, d))
    np.minimum(t1, t2, out=t3)
    np.maximum(t1, t2, out=t2)
    np.minimum(t2, e, out=t2)
    return np.maximum(t3, t2, out=t1)  # median(lo, hi, e)


def _median_views(views: list[np.ndarray], out: np.ndarray | None = None, scratch=None) -> np.ndarray:
    """Element-wise median of an odd number of equally shaped arrays (into ``out`` if given;
    ``scratch``: two arrays at least as large, for the temporaries of the 5-way median)."""
    if len(views) == 5:
        shape = views[0].shape
        t1 = np.empty(shape, views[0].dtype) if out is None else out
        t2, t3 = (np.empty_like(t1), np.empty_like(t1)) if scratch is None else (t[: shape[0]] for t in scratch)
        return _med5_into(*views, t1, t2, t3)
    if len(views) == 3:
        a, b, c = views
        med = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    else:
        med = np.median(np.stack(views), axis=0).astype(views[0].dtype)
    if out is None:
        return med
    out[...] = med
    return out


def _pad_mode(shape: tuple[int, ...], p: int) -> str:
    """The np.pad mode that pads ``p`` samples: reflect, or (arrays too small for it) symmetric or edge."""
    return "reflect" if min(shape) > p else "symmetric" if min(shape) >= p else "edge"


def _pad_index(i: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Index into an axis of length n of what ``np.pad(mode)`` (pad <= n) puts at position i (-pad <= i < n + pad)."""
    if mode == "reflect":
        return _reflect(i, n)
    if mode == "symmetric":
        i = np.where(i < 0, -1 - i, i)
        return np.where(i >= n, 2 * n - 1 - i, i)
    return np.clip(i, 0, n - 1)


def _padded_rows(a: np.ndarray, r0: int, r1: int, p: int) -> np.ndarray:
    """Rows r0 - p .. r1 + p of ``np.pad(a, p, mode=_pad_mode(a.shape, p))``, without padding
    (or copying) the rest of ``a``."""
    h, w = a.shape
    mode = _pad_mode(a.shape, p)
    out = np.empty((r1 - r0 + 2 * p, w + 2 * p), a.dtype)
    inner = slice(max(r0 - p, 0), min(r1 + p, h))  # rows of a itself: copied straight
    out[inner.start - (r0 - p) : inner.stop - (r0 - p), p : p + w] = a[inner]
    edge = np.concatenate((np.arange(r0 - p, inner.start), np.arange(inner.stop, r1 + p)))  # np.r_: ~0.1 ms a call
    if len(edge):
        out[edge - (r0 - p), p : p + w] = a[_pad_index(edge, h, mode)]
    if p:
        cols = _pad_index(np.concatenate((np.arange(-p, 0), np.arange(w, w + p))), w, mode) + p
        out[:, :p] = out[:, cols[:p]]
        out[:, p + w :] = out[:, cols[p:]]
    return out


def _pseudo_median_rows(a: np.ndarray, r0: int, r1: int, window: int, spacing: int,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Rows r0:r1 of ``pseudo_median(a, window, spacing)`` (min/max only: the same values, stripe by stripe)."""
    p = (window // 2) * spacing
    w = a.shape[1]
    ap = _padded_rows(a, r0, r1, p)
    offs = [k * spacing for k in range(window)]
    scratch = (np.empty((len(ap), w), a.dtype), np.empty((len(ap), w), a.dtype)) if window == 5 else None
    rows = _median_views([ap[:, o : o + w] for o in offs], scratch=scratch)
    del ap
    return _median_views([rows[o : o + r1 - r0] for o in offs], out, scratch)  # the row pass's scratch, again


def pseudo_median(a: np.ndarray, window: int = 5, spacing: int = 1, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """Separable median (median of row medians) over a window x window grid of samples ``spacing`` apart.

    It breaks down only when most samples of most rows are outliers (a blob wider than half
    the window), so a single defect or its demosaic smear never moves it; and it costs a few
    min/max passes over whole arrays instead of a sort per pixel. Computed in row stripes
    (``pool``: in threads), so that its temporaries are a few MB whatever the size of ``a``.
    """
    out = np.empty(a.shape, a.dtype)
    _each(pool, a.shape[0], a.shape[1], lambda r0, r1: _pseudo_median_rows(a, r0, r1, window, spacing, out[r0:r1]))
    return out


def _pseudo_median_points(values) -> np.ndarray:
    """The pseudo-median of (m, window, window) samples: the same min/max as ``pseudo_median``, per point."""
    k = values.shape[1]
    return _median_views([_median_views([values[:, i, j] for j in range(k)]) for i in range(k)])


def _grid_points(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int], window: int, spacing: int):
    """Row and column indices, (m, window, 1) and (m, 1, window), of the samples ``pseudo_median`` takes around each point."""
    p = (window // 2) * spacing
    mode = _pad_mode(shape, p)
    offs = np.arange(-p, p + 1, spacing)
    return (_pad_index(ys[:, None, None] + offs[None, :, None], shape[0], mode),
            _pad_index(xs[:, None, None] + offs[None, None, :], shape[1], mode))


def _reflect(i: np.ndarray, n: int) -> np.ndarray:
    """Indices reflected at the edges as np.pad(mode="reflect") does (-1 -> 1, n -> n-2)."""
    if n == 1:
        return np.zeros_like(i)
    i = np.abs(i)
    i = (n - 1) - np.abs((n - 1) - i)
    return np.clip(i, 0, n - 1)


def _flat_view(a: np.ndarray) -> tuple[np.ndarray | None, int]:
    """A 1-D view of the 2-D (possibly strided) ``a`` and its row step ``rs``: a[y, x] is view[y * rs + x].

    One flat index array reads ~4x faster than a pair of row and column arrays. None (and 0)
    when the strides do not allow it (negative, or rows not a whole number of column steps).
    """
    h, w = a.shape
    s0, s1 = a.strides
    if a.size == 0 or s1 <= 0 or s0 <= 0 or s0 % s1 or (h > 1 and s0 // s1 < w):
        return None, 0
    rs = s0 // s1
    return np.lib.stride_tricks.as_strided(a, ((h - 1) * rs + w,), (s1,), writeable=a.flags.writeable), rs


def _gather(a: np.ndarray, ys: np.ndarray, xs: np.ndarray, offsets) -> np.ndarray:
    """Values of ``a`` at (ys + dy, xs + dx) for every offset, reflected: shape (len(ys), len(offsets)).

    A column at a time (no (len(ys), len(offsets)) index arrays), by flat indices (``_flat_view``):
    only the points within the offsets' reach of the border need reflecting, and only they are.
    """
    h, w = a.shape
    out = np.empty((len(ys), len(offsets)), a.dtype)
    flat, rs = _flat_view(a)
    if flat is None or not len(offsets):
        for k, (dy, dx) in enumerate(offsets):
            out[:, k] = a[_reflect(ys + dy, h), _reflect(xs + dx, w)]
        return out
    ry, rx = max(abs(dy) for dy, _ in offsets), max(abs(dx) for _, dx in offsets)
    edge = np.flatnonzero((ys < ry) | (ys >= h - ry) | (xs < rx) | (xs >= w - rx))
    ey, ex = ys[edge].astype(np.intp), xs[edge]
    at = ys.astype(np.intp) * rs + xs
    for k, (dy, dx) in enumerate(offsets):
        i = at + (dy * rs + dx)
        i[edge] = _reflect(ey + dy, h) * rs + _reflect(ex + dx, w)
        out[:, k] = flat[i]
    return out


def _window(window: int, spacing: int) -> list[tuple[int, int]]:
    """Offsets of a window x window grid of same-colour samples, centre excluded."""
    r = window // 2
    return [(dy * spacing, dx * spacing) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy or dx]


def _median_last(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``np.median(x, axis=-1)`` from a full sort: the same middle values, averaged by the same
    ``np.mean``, NaN where a row holds one; many short rows sort ~5x faster than they partition."""
    part = np.sort(x, axis=-1)
    k = part.shape[-1]
    middle = slice(k // 2, k // 2 + 1) if k % 2 else slice(k // 2 - 1, k // 2 + 1)
    med = np.mean(part[..., middle], axis=-1, keepdims=keepdims)
    last = part[..., -1:] if keepdims else part[..., -1]
    nan = np.isnan(last)
    if nan.any():
        np.copyto(med, last, where=nan)
    return med


class _BlockScale:
    """Robust local scale, 1.4826 x MAD per block, on a grid; read back bilinearly (no seams).

    Each block's MAD is taken around its own median from every other row and column (a
    quarter of the samples: plenty for a scale, and 4x cheaper). A floor, a fraction of the
    plane's median scale or an absolute value, keeps clipped or perfectly flat regions, where
    the MAD is 0, from making every tiny difference infinitely significant. The blocks are
    taken a few block rows at a time (``pool``: in threads), and the interpolated scale is
    made for the rows (``rows``) or the points (``points``) that need it: never a full-size
    temporary.
    """

    def __init__(self, dev: np.ndarray, block: int, floor_frac: float = 0.0, floor_abs: float = 0.0,
                 pool: ThreadPoolExecutor | None = None, shape: tuple[int, int] | None = None):
        """``shape``: ``dev`` holds only the samples (``samples``) of a map of this shape."""
        h, w = shape or dev.shape
        self.shape = (h, w)
        self.bh, self.bw = min(block, h), min(block, w)
        nby, nbx = max(1, h // self.bh), max(1, w // self.bw)
        rows, cols = self.samples((h, w), block)
        sy, sx = rows.step, cols.step
        if shape is None:
            dev = dev[rows, cols]
        mad = np.empty((nby, nbx), np.result_type(dev.dtype, np.float32))

        def blocks(b0: int, b1: int) -> None:
            tiles = dev[b0 * self.bh // sy : b1 * self.bh // sy]
            tiles = tiles.reshape(b1 - b0, self.bh // sy, nbx, self.bw // sx).transpose(0, 2, 1, 3).reshape(b1 - b0, nbx, -1)
            med = _median_last(tiles, keepdims=True)
            mad[b0:b1] = np.float32(1.4826) * _median_last(np.abs(tiles - med))

        _each(pool, nby, self.bh * w, blocks)
        floor = max(floor_abs, floor_frac * float(np.median(mad)), 1e-12)
        self.grid = np.maximum(mad, np.float32(floor)).astype(np.float32)
        # columns: x0 and x1 never decrease, so each grid column is repeated, not gathered (C order, ~4x faster)
        x0, x1, fx = self._axis(np.arange(w), self.bw, self.grid.shape[1])
        nb = self.grid.shape[1]
        self._x = (np.bincount(x0, minlength=nb), np.bincount(x1, minlength=nb), 1 - fx, fx)

    @staticmethod
    def samples(shape: tuple[int, int], block: int) -> tuple[slice, slice]:
        """Where the MADs are taken: every other row and column (of an even block) of the whole blocks."""
        bh, bw = min(block, shape[0]), min(block, shape[1])
        nby, nbx = max(1, shape[0] // bh), max(1, shape[1] // bw)
        return slice(0, nby * bh, 2 if bh % 2 == 0 else 1), slice(0, nbx * bw, 2 if bw % 2 == 0 else 1)

    def _axis(self, pos: np.ndarray, b: int, nb: int):
        pos = np.clip((pos + 0.5) / b - 0.5, 0, nb - 1)
        i0 = np.floor(pos).astype(np.intp)
        return i0, np.minimum(i0 + 1, nb - 1), (pos - i0).astype(np.float32)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """The scale of rows r0:r1 (bilinear: along the rows of the grid first, then the columns)."""
        y0, y1, fy = self._axis(np.arange(r0, r1), self.bh, self.grid.shape[0])
        n0, n1, gx, fx = self._x
        rows = self.grid[y0] * (1 - fy)[:, None] + self.grid[y1] * fy[:, None]
        out = np.repeat(rows, n0, axis=1)  # rows[:, x0]
        out *= gx
        right = np.repeat(rows, n1, axis=1)  # rows[:, x1]
        right *= fx
        out += right
        return out

    def points(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """``rows`` at single pixels, by the same float32 arithmetic in the same order (the same values)."""
        y0, y1, fy = self._axis(ys, self.bh, self.grid.shape[0])
        x0, x1, fx = self._axis(xs, self.bw, self.grid.shape[1])
        g = self.grid
        left = g[y0, x0] * (1 - fy) + g[y1, x0] * fy
        right = g[y0, x1] * (1 - fy) + g[y1, x1] * fy
        return left * (1 - fx) + right * fx

    def at(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        y0, y1, fy = self._axis(ys.astype(np.float64), self.bh, self.grid.shape[0])
        x0, x1, fx = self._axis(xs.astype(np.float64), self.bw, self.grid.shape[1])
        g = self.grid
        return (g[y0, x0] * (1 - fx) + g[y0, x1] * fx) * (1 - fy) + (g[y1, x0] * (1 - fx) + g[y1, x1] * fx) * fy


def _near(shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, radius: int) -> np.ndarray:
    """Boolean map of pixels within ``radius`` (Chebyshev) of the given points."""
    mask = np.zeros(shape, bool)
    for y, x in zip(ys.tolist(), xs.tolist()):
        mask[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1] = True
    return mask


_CROSS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _unique_flat(keys: np.ndarray, size: int) -> np.ndarray:
    """``np.unique(keys)`` for flat indices into an array of ``size``: through a mask of that
    size when the keys are many (linear time; np.unique sorts), else by sorting."""
    if len(keys) < size // 64:
        return np.unique(keys)
    mask = np.zeros(size, np.bool_)
    mask[keys] = True
    return np.flatnonzero(mask)


def _divmod(a: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.divmod(a, w)`` for integers, through one floor division (np.divmod is ~10x slower)."""
    q = a // w
    return q, a - q * w


def _remove_rings(rho: np.ndarray, se: np.ndarray, significant: np.ndarray, sources: np.ndarray,
                  cfg) -> tuple[np.ndarray, np.ndarray]:
    """Add back the -1/4 that a significant neighbour's offset leaked into each residual, in place.

    Only pixels next to a significant one (``significant``: flat indices where |rho| >=
    ring_t * se) can carry a ring, so only they are visited. A neighbour counts when its
    residual mean has the opposite sign, ring_dominance..16/ring_dominance times the magnitude
    (4x for an exact ring) and |rho| / se >= ring_t (``sources``: flat indices of at least
    those pixels). Returns the visited pixels (flat indices, sorted) and what was added to each,
    so that the ring-free residual can be rebuilt at any pixel without keeping the map
    (``_with_rings_removed``).

    The test runs from the sources outwards (``_inner_ring_terms``: in a photo stack they are
    3 % of the plane, the visited pixels 10 %), and the visited pixels at the border, whose
    neighbours reflect, are tested directly (``_ring_terms``). Either way each term lands in its
    place in the same (visited, 4 neighbours) table, summed row by row: the same numbers.
    """
    h, w = rho.shape
    sy, sx = _divmod(significant, w)
    qy = np.concatenate([sy + dy for dy, _ in _CROSS])
    qx = np.concatenate([sx + dx for _, dx in _CROSS])
    inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
    key = _unique_flat(qy[inside] * w + qx[inside], h * w)
    if len(key) == 0:
        return key.astype(np.intp), np.empty(0, rho.dtype)
    qy, qx = _divmod(key, w)
    terms = np.zeros((len(key), len(_CROSS)), rho.dtype)
    edge = np.flatnonzero((qy == 0) | (qy == h - 1) | (qx == 0) | (qx == w - 1))
    terms[edge] = _ring_terms(rho, se, qy[edge], qx[edge], cfg)
    q, k, v = _inner_ring_terms(rho, se, *_divmod(sources, w), cfg)
    pos = np.minimum(np.searchsorted(key, q), len(key) - 1)
    visited = key[pos] == q  # next to a significant pixel (|t| >= ring_t by the other rounding)
    terms[pos[visited], k[visited]] = v[visited]
    rows = np.zeros(len(key), bool)  # the rows with a term: the others add 0 (+0.0, as their sum)
    rows[edge] = True
    rows[pos[visited]] = True
    rows = np.flatnonzero(rows)
    add = np.zeros(len(key), rho.dtype)
    add[rows] = terms[rows].sum(axis=1) * 0.25
    flat, rs = _flat_view(rho)
    if flat is None:
        rho[qy, qx] += add
    else:
        flat[qy * rs + qx] += add
    return key, add


def _ring_terms(rho: np.ndarray, se: np.ndarray, qy: np.ndarray, qx: np.ndarray, cfg) -> np.ndarray:
    """The ring test at (qy, qx) against each of the 4 neighbours (reflected at the border):
    the neighbour's residual mean where it leaked a ring, else 0; shape (len(qy), 4)."""
    r = _gather(rho, qy, qx, ((0, 0),))
    ar = np.abs(r)
    nb_r = _gather(rho, qy, qx, _CROSS)
    nb_t = np.abs(nb_r) / _gather(se, qy, qx, _CROSS)
    anb = np.abs(nb_r)
    ring = ((nb_r * r < 0) & (anb >= cfg.ring_dominance * ar)
            & (anb <= (16 / cfg.ring_dominance) * ar) & (nb_t >= cfg.ring_t))
    return np.where(ring, nb_r, 0)


def _inner_ring_terms(rho: np.ndarray, se: np.ndarray, jy: np.ndarray, jx: np.ndarray, cfg):
    """``_ring_terms`` of the pixels off the border, from the side of the neighbours that leak:
    each source (jy, jx) is tested against the 4 pixels it neighbours, by the same float32
    arithmetic. Returns the nonzero terms: the pixel (flat index), the neighbour's place in
    ``_CROSS`` as seen from the pixel, and the neighbour's residual mean."""
    h, w = rho.shape
    flat, rs = _flat_view(rho)
    if flat is None:  # not viewable flat (never, for the score maps): read a copy
        flat, rs = rho.ravel(), w
    jr = jy * rs + jx
    nb_r = flat[jr]
    anb = np.abs(nb_r)
    leaks = anb / _values_at(se, jy, jx) >= cfg.ring_t
    jy, jx, jr, nb_r, anb = jy[leaks], jx[leaks], jr[leaks], nb_r[leaks], anb[leaks]
    jq = jy * w + jx
    y_in, x_in = (jy >= 1) & (jy < h - 1), (jx >= 1) & (jx < w - 1)
    q, k, v = [], [], []
    for i, (dy, dx) in enumerate(_CROSS):  # the source is the pixel's neighbour at (dy, dx)
        inner = x_in & (jy - dy >= 1) & (jy - dy < h - 1) if dy else y_in & (jx - dx >= 1) & (jx - dx < w - 1)
        at = np.flatnonzero(inner)
        nb, a = nb_r[at], anb[at]
        r = flat[jr[at] - (dy * rs + dx)]
        ar = np.abs(r)
        ring = (nb * r < 0) & (a >= cfg.ring_dominance * ar) & (a <= (16 / cfg.ring_dominance) * ar)
        at = at[ring]
        q.append(jq[at] - (dy * w + dx))
        k.append(np.full(len(at), i))
        v.append(nb_r[at])
    return np.concatenate(q), np.concatenate(k), np.concatenate(v)


def _values_at(a: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``a[ys, xs]`` at points inside ``a``, by flat indices where ``_flat_view`` allows (~4x faster)."""
    flat, rs = _flat_view(a)
    return a[ys, xs] if flat is None else flat[ys.astype(np.intp, copy=False) * rs + xs]


def _with_rings_removed(rmean: np.ndarray, ys: np.ndarray, xs: np.ndarray, width: int, rings) -> np.ndarray:
    """The ring-free residual mean at (ys, xs), from the residual mean there and ``_remove_rings``' additions."""
    key, add = rings
    rho = rmean.copy()
    if len(key):
        flat = ys * width + xs
        i = np.minimum(np.searchsorted(key, flat), len(key) - 1)
        hit = key[i] == flat
        rho[hit] += add[i[hit]]
    return rho


def _neighbour_leak(a: np.ndarray, r0: int, r1: int) -> np.ndarray:
    """Rows r0:r1 of (up + down + left + right) / 16 of the 4 nearest neighbours, reflected at the
    edges like the residual stream: what the 4-neighbour mean leaks of each neighbour's variance."""
    p = _padded_rows(a, r0, r1, 1)
    leak = p[:-2, 1:-1] + p[2:, 1:-1]
    leak += p[1:-1, :-2]
    leak += p[1:-1, 2:]
    leak *= np.float32(1 / 16)
    return leak


# --------------------------------------------------------------------------- range counts
# stats.counts: per sensel, the frames in which it stood above (0) / below (1) its 4 same-colour
# neighbours by more than their own range. A healthy sensel does so by chance, at a rate set by
# the noise and the texture of its plane; a warm sensel is above in many more frames, a
# flickering one both above and below, and scene texture (one frame, or an edge that crosses
# it) adds at most a few frames. Three maps: above, below and their sum (flicker).
COUNT_MAPS = ("hi", "lo", "sum")


def count_tail(n: int, p: float, phi: float) -> np.ndarray:
    """-log10 P(K >= k), k = 0..n, for a beta-binomial count of n frames with mean rate ``p`` and
    overdispersion ``phi`` (variance / binomial variance; <= 1: binomial).

    From the ratios of consecutive probabilities (no gamma functions), summed in log space
    (``logaddexp``), so the far tail neither underflows nor cancels; O(n) per call.
    """
    p = min(max(p, 1e-4), 1 - 1e-4)
    k = np.arange(n, dtype=np.float64)  # P(k+1) / P(k) for k = 0..n-1
    lr = np.log(n - k) - np.log(k + 1)
    if phi > 1 + 1e-6 and n > 1:
        rho = min((phi - 1) / (n - 1), 1.0)  # intra-class correlation
        s = max(1 / rho - 1, 1e-3)
        a, b = p * s, (1 - p) * s
        lr += np.log(k + a) - np.log(n - k - 1 + b)
    else:
        lr += math.log(p) - math.log1p(-p)
    lp = np.concatenate([[0.0], np.cumsum(lr)])
    lp -= np.logaddexp.reduce(lp)
    lsf = np.logaddexp.accumulate(lp[::-1])[::-1]
    return np.maximum(-lsf / math.log(10), 0.0)


def _fit_counts(hist: np.ndarray, n: int, quantile: float) -> tuple[float, float]:
    """Mean rate p and overdispersion phi of a count histogram, by moments, on the counts at or
    below its ``quantile`` (so that the defects, far rarer than 1 - quantile, do not set them)."""
    total = hist.sum()
    if total == 0:
        return 0.0, 1.0
    cut = int(np.searchsorted(np.cumsum(hist), quantile * total))
    body = hist[: cut + 1].astype(np.float64)
    k = np.arange(len(body), dtype=np.float64)
    m = body.sum()
    mean = float((body * k).sum() / m)
    var = float((body * (k - mean) ** 2).sum() / m)
    p = mean / n
    return p, max(1.0, var / max(n * p * (1 - p), 1e-12))


def gauss_decades(z: float) -> float:
    """-log10 of the one-sided Gaussian tail P(Z >= z) (asymptotic where erfc underflows)."""
    tail = 0.5 * math.erfc(z / math.sqrt(2))
    if tail > 1e-300:
        return -math.log10(tail)
    return (z * z / 2 + math.log(z * math.sqrt(2 * math.pi)) - math.log1p(-1 / (z * z))) / math.log(10)


def count_thresholds(base: float, cfg: DetectConfig) -> dict[str, float]:
    """The counts' threshold for each class they can give: the null's (``base``), raised by as many
    decades of probability as a configured moment threshold is stricter than the default 7 on a
    Gaussian scale. A user who asks for only strong hot pixels (hot_threshold 40) gets no warm ones
    from the counts either; the defaults leave the null's threshold as it is."""
    ref = gauss_decades(7.0)
    return {k: base + max(0.0, gauss_decades(t) - ref) for k, t in
            (("hot", cfg.hot_threshold), ("dead", cfg.dead_threshold), ("noisy", cfg.noisy_threshold))}


class _CountNull:
    """The null of one plane's range counts, and their scores (-log10 tail probability).

    Per map (above, below, sum) and edge class, a beta-binomial fitted by moments: reflection
    at the border makes one neighbour count twice, so the range is narrower there and the rate
    higher. Interior and edge sensels (the outer same-colour row and column) have their own fit.
    The 4 corners of a plane have two duplicated neighbours, so only two distinct ones, and too few
    samples for a null of their own (extrapolating the edge's missed a corner's rate 2x in a
    test): they are not scored by the counts (the moments still score them). The histograms are taken in row stripes of the integer counts:
    no float copy of them.
    """

    def __init__(self, hi: np.ndarray, lo: np.ndarray, n: int, quantile: float, each):
        h, w = hi.shape
        self.shape = (h, w)
        self.hi, self.lo = hi, lo
        parts: list[np.ndarray] = []

        def rows_hist(r0: int, r1: int) -> None:  # bincount takes intp: converted once, not per call
            a, b = hi[r0:r1].astype(np.intp).ravel(), lo[r0:r1].astype(np.intp).ravel()
            hists = [np.bincount(a, minlength=n + 1)[: n + 1], np.bincount(b, minlength=n + 1)[: n + 1]]
            a += b
            parts.append(np.stack(hists + [np.bincount(a, minlength=n + 1)[: n + 1]]))

        each(rows_hist)
        total = np.sum(parts, axis=0)
        ey, ex = self._edge_points()
        corner = self.classes(ey, ex) == 2

        def hist(sel: np.ndarray) -> np.ndarray:  # the three maps' histograms at these edge points
            return np.stack([np.bincount(k, minlength=n + 1)[: n + 1] for k in self._at(ey[sel], ex[sel])]).astype(total.dtype)

        edge, corners = hist(~corner), hist(corner)
        interior = total - edge - corners
        tables = np.empty((len(COUNT_MAPS), 3, n + 1), np.float32)  # map, class (interior, edge, corner), k
        self.means = np.zeros((len(COUNT_MAPS), 3))  # the null's mean count, n p
        for i in range(len(COUNT_MAPS)):
            pi, fi = _fit_counts(interior[i] if interior[i].sum() else total[i], n, quantile)
            pe, fe = _fit_counts(edge[i], n, quantile) if edge[i].sum() else (pi, fi)
            tables[i, 0] = count_tail(n, pi, fi)
            tables[i, 1] = count_tail(n, pe, fe)
            tables[i, 2] = 0.0  # corners: see above
            self.means[i] = (n * pi, n * pe, n * pe)
        self.tables = tables

    def _edge_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the outer ring of the plane, each sensel once."""
        h, w = self.shape
        ys = np.concatenate([np.zeros(w, np.intp), np.full(w, h - 1), np.arange(h), np.arange(h)])
        xs = np.concatenate([np.arange(w), np.arange(w), np.zeros(h, np.intp), np.full(h, w - 1)])
        return np.divmod(np.unique(ys * w + xs), w)

    def classes(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        h, w = self.shape
        return ((ys == 0) | (ys == h - 1)).astype(np.intp) + ((xs == 0) | (xs == w - 1))

    def _at(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The counts (above, below, sum) at the given sensels, as indices."""
        a = self.hi[ys, xs].astype(np.intp)
        b = self.lo[ys, xs].astype(np.intp)
        return a, b, a + b

    def points(self, ys: np.ndarray, xs: np.ndarray) -> dict[str, np.ndarray]:
        """Counts and scores (float32) of the three maps at single sensels."""
        cls = self.classes(ys, xs)
        out = {}
        for i, (name, k) in enumerate(zip(COUNT_MAPS, self._at(ys, xs))):
            out["k_" + name] = k
            out["s_" + name] = self.tables[i, cls, k]
            out["m_" + name] = self.means[i, cls]
        return out

    def rows(self, r0: int, r1: int, out: np.ndarray) -> np.ndarray:
        """The strongest score of the three maps for rows r0:r1, into ``out`` (float32); returns a
        contiguous copy (``out`` is a strided channel: made in a copy, written once)."""
        h, w = self.shape
        # np.take with index arrays made once: ~2x faster than indexing with the integer counts
        a, b = self.hi[r0:r1].astype(np.intp), self.lo[r0:r1].astype(np.intp)
        t = self.tables
        score = np.take(t[0, 0], a)
        np.maximum(score, np.take(t[1, 0], b), out=score)
        a += b
        np.maximum(score, np.take(t[2, 0], a), out=score)
        # the edge classes: the first and last columns, and the first and last rows of the plane
        ey = np.concatenate([np.arange(r0, r1), np.arange(r0, r1)])
        ex = np.concatenate([np.zeros(r1 - r0, np.intp), np.full(r1 - r0, w - 1)])
        for r in {0, h - 1} & set(range(r0, r1)):
            ey = np.concatenate([ey, np.full(w, r)])
            ex = np.concatenate([ex, np.arange(w)])
        s = self.points(ey, ex)
        score[ey - r0, ex] = np.maximum(np.maximum(s["s_hi"], s["s_lo"]), s["s_sum"])
        out[...] = score
        return score


# --------------------------------------------------------------------------- planes
@dataclass
class _Plane:
    sel: tuple  # index into the pixel shape
    channel: int
    color: str
    y0: int = 0
    x0: int = 0
    step: int = 1


def _planes(pixel_shape: tuple[int, ...], cfa_pattern, color_desc: str | None) -> tuple[list[_Plane], bool]:
    if cfa_pattern is not None:
        pattern = np.asarray(cfa_pattern)
        if pattern.shape != (2, 2):
            raise ValueError(
                f"only 2x2 CFA patterns (Bayer) are supported, got a {pattern.shape} pattern "
                "(X-Trans or another layout): same-colour neighbours would be wrong, so detection refuses "
                "rather than guess"
            )
        if len(pixel_shape) != 2:
            raise ValueError(f"a CFA pattern needs a 2-D mosaic, got pixel shape {pixel_shape}")
        desc = color_desc or "RGBG"
        planes = []
        for oy in (0, 1):
            for ox in (0, 1):
                idx = int(pattern[oy, ox])
                color = desc[idx] if 0 <= idx < len(desc) else str(idx)
                planes.append(_Plane((slice(oy, None, 2), slice(ox, None, 2)), 0, color, oy, ox, 2))
        return planes, True
    if len(pixel_shape) == 3:
        names = color_desc if color_desc and len(color_desc) == pixel_shape[2] else "RGBA"[: pixel_shape[2]]
        if len(names) < pixel_shape[2]:
            names = [str(c) for c in range(pixel_shape[2])]
        return [_Plane((slice(None), slice(None), c), c, names[c]) for c in range(pixel_shape[2])], False
    if len(pixel_shape) == 2:
        return [_Plane((slice(None), slice(None)), 0, (color_desc or "L")[:1])], False
    raise ValueError(f"pixel shape must be (H, W) or (H, W, C), got {pixel_shape}")


# --------------------------------------------------------------------------- stack kind
def classify_stack(stats: PixelStats, ratio: float) -> tuple[str, str]:
    """Photos or darks, from how much of the frame-to-frame variance is spatially coherent.

    Scene changes move whole neighbourhoods together, so they inflate the value variance
    but cancel in the residual; sensor noise is spatially white and shows in both alike.
    """
    rows = slice(None, None, max(1, stats.pixel_shape[0] // 256))  # a sample of rows is plenty
    n = max(stats.n, 1)
    v = float(np.median(stats.m2[0][rows])) / n
    rv = float(np.median(stats.m2[1][rows])) / n
    m = float(np.median(stats.mean[0][rows]))
    if not np.isfinite(v) or v <= 0:
        return "darks", f"median frame-to-frame variance of the values is {v:.3g} (mean {m:.3g}): no scene changes"
    rr = v / max(rv, QUANT_VAR)
    if rr > ratio:
        return "photos", (f"median frame-to-frame variance of the values ({v:.3g}, mean {m:.3g}) is {rr:.3g}x that "
                          f"of the neighbour residual ({rv:.3g}) > {ratio:g}: the scene changes between frames")
    return "darks", (f"median frame-to-frame variance of the values ({v:.3g}, mean {m:.3g}) is only {rr:.3g}x that "
                     f"of the neighbour residual ({rv:.3g}) <= {ratio:g}: spatially white noise, no scene")


# --------------------------------------------------------------------------- main
def detect(
    stats: PixelStats,
    config: DetectConfig | None = None,
    layout: SensorLayout | None = None,
    stack_kind: str | None = None,
) -> Detection:
    """Score every pixel against its same-colour neighbourhood and report each defect once.

    ``layout`` says which stored value is which colour: a CFA mosaic (its pattern, e.g.
    ``SensorLayout.bayer("RGGB")``), or None / no pattern for RGB (channels "R", "G", "B") or
    grayscale ("L").
    ``stack_kind`` (None: ``config.stack_kind``) is "photos", "darks" or "auto" (decided from the statistics; it is
    reported, the scores adapt to either kind by themselves).
    """
    cfg = config or DetectConfig()
    if cfg.window not in (3, 5, 7):
        raise ValueError(f"window must be 3, 5 or 7 same-colour samples, got {cfg.window}")
    n = int(stats.n)
    if n < 2:
        raise ValueError(f"need statistics over at least 2 frames to detect defects, got n={n}")
    layout = SensorLayout() if layout is None else layout
    planes, is_cfa = _planes(stats.pixel_shape, None if layout.cfa is None else np.asarray(layout.cfa),
                             layout.colors or None)
    stack_kind = stack_kind or cfg.stack_kind
    if stack_kind == "auto":
        stack_kind, reason = classify_stack(stats, cfg.darks_ratio)
    elif stack_kind in ("photos", "darks"):
        reason = f"stack kind given as {stack_kind!r}"
    else:
        raise ValueError(f"stack_kind must be 'auto', 'photos' or 'darks', got {stack_kind!r}")

    shape = stats.pixel_shape
    spacing = 1 if is_cfa else (cfg.rgb_spacing if len(shape) == 3 else cfg.gray_spacing)
    # raw darks: one value per sensel (a CFA mosaic or a monochrome sensor) and no scene, so every
    # variance is the sensor's white, near-Gaussian noise; demosaicing and JPEG smear and quantise it
    raw_darks = stack_kind == "darks" and len(shape) == 2
    score_maps = {k: np.zeros(shape, np.float32) for k in KIND_CODES}
    # range counts: a threshold from their null, alpha expected false reports per image over its
    # sensels and the three count maps (Bonferroni): a healthy sensel passes with P <= alpha / (3 N)
    count_thr = None
    if cfg.use_counts and stats.counts is not None:
        count_thr = math.log10(len(COUNT_MAPS) * math.prod(shape) / cfg.counts_false_alarms)
        score_maps["counts"] = np.zeros(shape, np.float32)
    # one plane at a time, its row stripes in threads: the working set is that of one plane
    # (one float32 plane besides the score maps), not one per thread, and every core works on it
    workers = max(1, cfg.threads or min(os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        parts = [_score_plane(stats, pl, cfg, spacing, score_maps, is_cfa, raw_darks, pool, count_thr) for pl in planes]
        cand = {k: np.concatenate([c[k] for c in parts]) for k in parts[0]}
        del parts
        if not is_cfa and len(planes) == 3:
            cand["luma_amp"] = _blob_amplitude(stats, cfg, cand["y"], cand["x"], pool)

    # 1. peaks: classify at the configured thresholds and keep one candidate per blob
    configured = {"hot": cfg.hot_threshold, "dead": cfg.dead_threshold, "stuck": cfg.stuck_threshold,
                  "noisy": cfg.noisy_threshold}
    if count_thr is not None:
        configured["counts"] = count_thr
        for k, t in count_thresholds(count_thr, cfg).items():
            if t > count_thr:  # stricter moment thresholds: stricter counts (see count_thresholds)
                configured["counts_" + k] = t
    _classify(cand, configured, cfg, stack_kind == "darks", raw_darks)
    cand = {k: v[cand["kind"] > 0] for k, v in cand.items()}
    cand = _one_per_pixel(cand)
    if len(cand["y"]) > cfg.max_defects:  # keep suppression affordable on a hopeless input
        top = np.argsort(-cand["strength"], kind="stable")[: cfg.max_defects]
        cand = {k: v[top] for k, v in cand.items()}
    kept = _suppress(cand, cfg, is_cfa)  # once: in the comprehension it would run once per key
    cand = {k: v[kept] for k, v in cand.items()}

    # 2. thresholds: no lower than configured, raised where a map's own tail is heavy. Pixels next
    # to a strong peak are left out of the tails: its rings and JPEG ringing are accounted for.
    # In raw darks the bright tail of the level map is the dark-current distribution itself, whose
    # far end is warm pixels, what darks are taken to find: there the physical floor
    # (dark_min_sigmas, see _classify) replaces the hot map's tail guard.
    thresholds = dict(configured)
    if cfg.tail_false_alarms > 0:
        tails = _tail_samples({k: score_maps[k] for k in KIND_CODES}, planes, cfg.tail_samples)
        strong = np.abs(cand["z_level"]) >= cfg.tail_exclude_strength  # rings are a level phenomenon
        near = _near(shape[:2], cand["y"][strong], cand["x"][strong],
                     2 if is_cfa else max(cfg.ring_radius, cfg.nms_radius))
        for k, v in thresholds.items():
            if k not in cfg.tail_kinds.split() or k not in KIND_CODES or (raw_darks and k == "hot"):
                continue
            values = np.concatenate([c[0] for c in tails[k]])
            far = ~near[np.concatenate([c[1] for c in tails[k]]), np.concatenate([c[2] for c in tails[k]])]
            size = sum(c[3] for c in tails[k]) * (far.mean() if far.size else 1.0)
            thresholds[k] = max(v, tail_threshold(values[far], int(size), cfg.tail_false_alarms))
        # 3. the peaks, classified again at the final thresholds (a weaker kind can take over)
        _classify(cand, thresholds, cfg, stack_kind == "darks", raw_darks)
        cand = {k: v[cand["kind"] > 0] for k, v in cand.items()}
    idx = np.argsort(-cand["score"], kind="stable")
    defects = [_defect(cand, i, n) for i in idx]
    return Detection(defects, score_maps, thresholds, stack_kind, reason)


def tail_threshold(sample: np.ndarray, size: int, false_alarms: float, p1: float = 1e-2, p2: float = 1e-3) -> float:
    """The score that clean pixels would pass ``false_alarms`` times in ``size`` pixels, by their own tail.

    ``sample`` is an even subsample of a score map of ``size`` pixels, without the
    surroundings of strong defects. The tail between its 1-p1 and 1-p2 quantiles (defects,
    even smeared by JPEG, are far rarer than p2) is fitted with an exponential and
    extrapolated to ``size``. A Gaussian tail falls faster than that, so on a well-behaved
    sensor this stays below the configured thresholds; it rises where the data are
    heavy-tailed: the lognormal dark current of darks, JPEG artefacts, or scene edges and
    specular highlights of single frames in photos.
    """
    if sample.size < 20 / p2:
        return 0.0
    q1, q2 = np.quantile(sample, [1 - p1, 1 - p2])
    slope = max(float(q2 - q1), 0.0) / math.log(p1 / p2)
    return float(q2 + slope * math.log(max(size * p2 / false_alarms, 1.0)))


def _blob_amplitude(stats, cfg: DetectConfig, ys: np.ndarray, xs: np.ndarray,
                    pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """|luma of the mean image minus its local median| over its local MAD, at the given pixels.

    In a demosaiced JPEG one sensel becomes a blob a few pixels wide, sharp in luma (kept at
    full resolution) and blurred in chroma. Against a median taken around the blob, its
    centre stands out most, while the residual's rings and the chroma smear, which carry the
    largest z at some distance, lie inside the blob and stand out less. Used only to rank
    the candidates of one blob. The deviation from the median is made a stripe at a time:
    only its values at the candidates and the samples of the local scale are kept.
    """
    mean = stats.mean[0]
    h, w = mean.shape[:2]
    luma = np.empty((h, w), np.float32)
    rows, cols = _BlockScale.samples((h, w), cfg.scale_block)
    samples = np.empty((len(range(h)[rows]), len(range(w)[cols])), np.float32)
    at = np.empty(len(ys), np.float32)

    def rows_luma(r0: int, r1: int) -> None:  # 0.299 R + 0.587 G + 0.114 B, in float64, left to right
        m = mean[r0:r1]
        y = np.float32(0.299) * m[..., 0]
        t = np.float32(0.587) * m[..., 1]
        y += t
        y += np.multiply(np.float32(0.114), m[..., 2], out=t)
        luma[r0:r1] = y

    def rows_dev(r0: int, r1: int) -> None:
        d = _pseudo_median_rows(luma, r0, r1, cfg.window, cfg.rgb_spacing)
        np.subtract(luma[r0:r1], d, out=d)
        first = -(-r0 // rows.step) * rows.step  # the first sampled row in the stripe
        if first < min(r1, rows.stop):
            samples[first // rows.step : -(-min(r1, rows.stop) // rows.step)] = d[first - r0 : rows.stop - r0 : rows.step, cols]
        here = (ys >= r0) & (ys < r1)
        at[here] = d[ys[here] - r0, xs[here]]

    _each(pool, h, w, rows_luma)
    _each(pool, h, w, rows_dev)
    luma = None  # free before the scale's blocks
    return np.abs(at) / _BlockScale(samples, cfg.scale_block, cfg.scale_floor, pool=pool, shape=(h, w)).at(ys, xs)


def _score_plane(stats, pl: _Plane, cfg: DetectConfig, spacing: int, score_maps, is_mosaic: bool,
                 raw_darks: bool = False, pool: ThreadPoolExecutor | None = None,
                 count_thr: float | None = None) -> dict:
    """Score maps of one same-colour plane, and the attributes of its candidate pixels.

    Candidates are pixels past the configured thresholds (the final ones can only be
    higher), so that classification can wait until the tail thresholds of the whole image
    are known. Everything only a candidate needs (neighbour quantiles, reference mean) is
    computed at the candidates alone.

    Memory: a plane of a large sensor is tens of MB even in float32, so each map is made in
    its own place in ``score_maps`` (the ring-free residual and the t statistic in "hot", the
    residual variance in "noisy"), and scaled and clipped there, in row stripes (``pool``: in
    threads). One more float32 plane at a time is all the rest needs: the residual's standard
    error, then the log value variance, then the log residual variance (the local medians
    read them around each pixel); raw darks also keep the residual variance. What the
    candidates need of a map that is gone is rebuilt at the candidates with the same float32
    arithmetic, so it is the same number: the level z from its hot and dead parts, the
    ring-free residual from the additions of ``_remove_rings``, the log value variance and the
    local medians (min/max) from the samples around each one, the local scales from their grids.

    ``raw_darks``: one value per sensel and no scene, so a healthy sensel's sample variance is
    its noise variance times chi-square(n-1)/(n-1), and the variance maps use that:

    - their scale is never below chi-square's own spread (a block's MAD, from 256 samples, is
      itself ~7 % noisy, and below the spread it would make a chance low variance "stuck");
    - the noise map compares the residual variance with what a healthy sensel there would
      show (its neighbours' typical variance plus the 1/16 of each neighbour's that leaks in)
      through the Wilson-Hilferty cube root, which is Gaussian in both tails of chi-square.
      The log is not: its upper tail is short, so a 5x variance (p ~ 1e-22 in 40 frames)
      scored 6.4;
    - flicker needs no isolation from its neighbours: that gate is for scene events, and in a
      dark it only drops a strong flickerer whose chance covariance with a neighbour (over n
      frames) inflates that neighbour's residual variance.
    """
    f32 = np.float32
    n = f32(stats.n)
    q = f32(QUANT_VAR)
    value_m2, res_mean, res_m2 = stats.m2[0][pl.sel], stats.mean[1][pl.sel], stats.m2[1][pl.sel]
    h, w = value_m2.shape
    hot, dead, stuck, noisy = (score_maps[k][pl.sel] for k in ("hot", "dead", "stuck", "noisy"))
    cand = []  # flat indices of the pixels past a configured threshold, per stripe and map

    def candidates(r0: int, past: np.ndarray) -> None:
        cand.append(np.flatnonzero(past) + r0 * w)

    def each(fn) -> None:
        _each(pool, h, w, fn)

    def residual_var(r0: int, r1: int, out: np.ndarray) -> np.ndarray:
        out[...] = res_m2[r0:r1]
        out /= n
        return np.maximum(out, 0, out=out)

    def log_value_var(values: np.ndarray) -> np.ndarray:
        v = values.astype(f32)
        v /= n
        np.maximum(v, 0, out=v)
        v += q
        return np.log(v, out=v)

    # level: t statistic of the residual mean (its own standard error keeps single-frame events,
    # like a specular highlight, from counting), with the ring removed: a defect puts -1/4 of its
    # offset into each same-colour neighbour's residual. Where a significant neighbour (|t| >=
    # ring_t) has the opposite sign and ring_dominance..16/ring_dominance times the residual (4x
    # for an exact ring), that quarter is added back. In raw darks every sensel has the same read
    # noise: the variance of its neighbours is a floor, so that one that came out low by chance
    # (the own variance over n frames scatters by sqrt(2/(n-1)): +-23 % in 40) cannot inflate t.
    se = np.empty((h, w), f32)
    se_q = q * f32(1.25)
    if raw_darks:
        rvar = np.empty((h, w), f32)
        each(lambda r0, r1: residual_var(r0, r1, rvar[r0:r1]))

        def rows_se(r0: int, r1: int) -> None:
            s = np.add(rvar[r0:r1], se_q, out=se[r0:r1])
            floor = _pseudo_median_rows(rvar, r0, r1, cfg.window, spacing)
            floor += se_q
            np.maximum(s, floor, out=s)
            s /= n
            np.sqrt(s, out=s)
    else:  # the residual variance goes where the noise map will be made of it: computed once
        def rows_se(r0: int, r1: int) -> None:
            s = np.add(residual_var(r0, r1, noisy[r0:r1]), se_q, out=se[r0:r1])
            s /= n
            np.sqrt(s, out=s)
    each(rows_se)
    rvar = None
    rho = hot  # the ring-free residual mean, then t, then the level z
    significant = []

    def rows_rho(r0: int, r1: int) -> None:  # the significant pixels, and those whose ring counts
        r = rho[r0:r1]
        r[...] = res_mean[r0:r1]
        a = np.abs(r)
        sig = np.flatnonzero(a >= np.float32(cfg.ring_t) * se[r0:r1]) + r0 * w  # np.nonzero: ~4x slower
        src = np.flatnonzero(np.divide(a, se[r0:r1], out=a) >= cfg.ring_t) + r0 * w  # _ring_terms' test
        significant.append((r0, sig, src))

    each(rows_rho)
    significant.sort(key=lambda s: s[0])  # flat indices, sorted
    rings = _remove_rings(rho, se, np.concatenate([s[1] for s in significant]),
                          np.concatenate([s[2] for s in significant]), cfg)
    amp_scale = _BlockScale(rho, cfg.scale_block, cfg.scale_floor, pool=pool)
    each(lambda r0, r1: np.divide(rho[r0:r1], se[r0:r1], out=rho[r0:r1]))  # t
    se = None
    level_scale = _BlockScale(hot, cfg.scale_block, 0.0, cfg.level_scale_floor, pool)

    def rows_level(r0: int, r1: int) -> None:  # z in the (contiguous) scale's rows: the maps are strided
        z = level_scale.rows(r0, r1)
        np.divide(hot[r0:r1], z, out=z)
        candidates(r0, (z >= cfg.hot_threshold) | (z <= -cfg.dead_threshold))
        d = np.negative(z, out=dead[r0:r1])
        np.maximum(d, 0, out=d)
        np.maximum(z, 0, out=hot[r0:r1])

    each(rows_level)

    # stuck: log value variance relative to the neighbours' (robust location and scale)
    chi_spread = math.sqrt(2.0 / max(stats.n - 1, 1))  # of the log of a sample variance
    var_floor = (1.0 if raw_darks else cfg.var_scale_floor) * chi_spread
    lvar = np.empty((h, w), f32)

    def rows_lvar(r0: int, r1: int) -> None:
        lvar[r0:r1] = log_value_var(value_m2[r0:r1])

    each(rows_lvar)

    def rows_var(r0: int, r1: int) -> None:  # z before its scale
        np.subtract(lvar[r0:r1], _pseudo_median_rows(lvar, r0, r1, cfg.window, spacing), out=stuck[r0:r1])

    each(rows_var)
    lvar = None  # freed: rebuilt at the candidates
    var_scale = _BlockScale(stuck, cfg.scale_block, 0.0, var_floor, pool)

    def rows_stuck(r0: int, r1: int) -> None:  # z in the (contiguous) scale's rows, as rows_level
        z = var_scale.rows(r0, r1)
        np.divide(stuck[r0:r1], z, out=z)
        candidates(r0, z <= -cfg.stuck_threshold)
        np.negative(z, out=z)
        np.maximum(z, 0, out=stuck[r0:r1])

    each(rows_stuck)

    # noisy: the same on the residual variance, after removing the 1/16 of each neighbour's
    # variance that the 4-neighbour mean leaks into it (so a flickering pixel's neighbours stay
    # quiet). Neighbourhoods far quieter than the plane's typical one are clipped or flat: a pixel
    # there varies because it sits at the edge of the clipping, not because it flickers.
    if raw_darks:  # they read it again for the noise z; otherwise it is in "noisy" already (rows_se)
        rvar = np.empty((h, w), f32)
        each(lambda r0, r1: residual_var(r0, r1, rvar[r0:r1]))
    else:
        rvar = noisy
    quiet = math.log(cfg.noisy_min_neighbour_var * float(np.median(rvar[::4, ::4])) + QUANT_VAR)
    lrv = np.empty((h, w), f32)

    def rows_lrv(r0: int, r1: int) -> None:
        leak = _neighbour_leak(rvar, r0, r1)
        np.subtract(rvar[r0:r1], leak, out=leak)
        np.maximum(leak, 0, out=leak)
        leak += q
        np.log(leak, out=lrv[r0:r1])

    each(rows_lrv)

    def rows_noise(r0: int, r1: int) -> None:  # z before its scale
        ref = _pseudo_median_rows(lrv, r0, r1, cfg.window, spacing)
        if raw_darks:  # Wilson-Hilferty: (s^2 / sigma^2)^(1/3) is ~N(1 - 2/(9k), 2/(9k)) for k degrees of freedom
            inflow = _neighbour_leak(rvar, r0, r1)
            inflow += np.exp(ref)  # the healthy residual variance here, quantisation included
            z = np.divide(rvar[r0:r1] + q, inflow, out=inflow)
            np.cbrt(z, out=z)
            z -= f32(1)
            noisy[r0:r1] = z
        else:
            np.subtract(lrv[r0:r1], ref, out=noisy[r0:r1])

    each(rows_noise)
    rvar = None
    wh_floor = chi_spread / 3  # Wilson-Hilferty's spread: sqrt(2 / (9 (n-1)))
    noise_scale = _BlockScale(noisy, cfg.scale_block, 0.0, wh_floor if raw_darks else var_floor, pool)

    def rows_noisy(r0: int, r1: int) -> None:  # z in the (contiguous) scale's rows, as rows_level
        z = noise_scale.rows(r0, r1)
        np.divide(noisy[r0:r1], z, out=z)
        candidates(r0, z >= cfg.noisy_threshold)
        noisy[r0:r1] = z

    each(rows_noisy)

    # range counts (``count_thr``: the stats have them): the strongest of the three count scores,
    # -log10 of the tail probability under the plane's own null, made in its place in "counts"
    null = None
    if count_thr is not None:
        null = _CountNull(stats.counts[0][pl.sel], stats.counts[1][pl.sel], int(stats.n), cfg.counts_fit_quantile, each)
        cmap = score_maps["counts"][pl.sel]

        def rows_counts(r0: int, r1: int) -> None:
            candidates(r0, null.rows(r0, r1, cmap[r0:r1]) >= count_thr)

        each(rows_counts)
    ys, xs = _divmod(_unique_flat(np.concatenate(cand), h * w), w)  # row by row, as np.nonzero would give them
    cand = None
    g = (ys, xs)
    z_noise_c = noisy[g]
    each(lambda r0, r1: np.maximum(noisy[r0:r1], 0, out=noisy[r0:r1]))

    # the candidates' values of the dropped maps, rebuilt (see above): the same numbers
    vy, vx = _grid_points(ys, xs, (h, w), cfg.window, spacing)
    ref_lvar = _pseudo_median_points(log_value_var(value_m2[vy, vx]))
    lvar_c = log_value_var(value_m2[g])
    z_var_c = (lvar_c - ref_lvar) / var_scale.points(ys, xs)
    ref_lrv = _pseudo_median_points(lrv[vy, vx])
    z_level_c = hot[g] - dead[g]  # one of them is 0: the signed z exactly

    # the variance kinds also need the pixel clearly outside the range of (nearly) all of its
    # neighbours, not just far from their median; flicker also needs quiet nearest neighbours
    offsets = _window(cfg.window, spacing)
    k_lo = max(0, len(offsets) // 10)  # about the 10th percentile of the neighbourhood, and the 90th
    low = np.partition(log_value_var(_gather(value_m2, ys, xs, offsets)), k_lo, axis=1)[:, k_lo]
    below_all = lvar_c - low <= math.log(cfg.stuck_var_ratio)
    nb = _gather(lrv, ys, xs, offsets)
    high = np.partition(nb, len(offsets) - 1 - k_lo, axis=1)[:, len(offsets) - 1 - k_lo]
    above_all = (lrv[g] - high >= math.log(cfg.noisy_var_ratio)) & (ref_lrv >= quiet)
    if not raw_darks:  # scene events light up a neighbourhood; no scene in a dark
        ring8 = _gather(lrv, ys, xs, _window(3, spacing)).max(axis=1)
        above_all &= ring8 - ref_lrv <= math.log(cfg.noisy_isolation)
    inner = np.ones(len(ys), bool)
    if not is_mosaic and cfg.noisy_edge_margin:  # demosaic and JPEG edge padding disturb the outer block
        e = cfg.noisy_edge_margin
        inner = (ys >= e) & (ys < h - e) & (xs >= e) & (xs < w - e)
        above_all &= inner

    mu = stats.mean[0][pl.sel]
    mu_c = mu[g].astype(f32)
    ref_mu = np.median(_gather(mu, ys, xs, offsets), axis=1).astype(f32)
    black = cfg.black_level if cfg.black_level is not None else float(mu.min())
    m = len(ys)
    rmean_c = res_mean[g].astype(f32)
    rho_c = _with_rings_removed(rmean_c, ys, xs, w, rings)
    lrv_c = lrv[g]
    counts = {} if null is None else {**null.points(ys, xs), "inner": inner}
    return {
        **counts,
        "y": (pl.y0 + pl.step * ys).astype(np.int64),
        "x": (pl.x0 + pl.step * xs).astype(np.int64),
        "channel": np.full(m, pl.channel, np.int64),
        "color": np.full(m, pl.color, dtype=object),
        "plane": np.full(m, pl.y0 * 2 + pl.x0 + 4 * pl.channel, np.int64),
        "mean": mu_c,
        "std": np.sqrt(np.maximum(value_m2[g], 0) / stats.n).astype(f32),
        "ref_mean": ref_mu,
        "ref_std": np.sqrt(np.maximum(np.exp(ref_lvar) - q, 0)),
        "black": np.full(m, black, np.float32),
        "rmean": rmean_c,
        "rho": rho_c,
        "z_level": z_level_c,
        "z_amp": np.abs(rho_c) / amp_scale.at(ys, xs),
        "z_var": z_var_c,
        "z_noise": z_noise_c,
        "below_all": below_all,
        "above_all": above_all,
        "rstd": np.sqrt(np.maximum(np.exp(lrv_c) - q, 0)),
        "ref_rstd": np.sqrt(np.maximum(np.exp(ref_lrv) - q, 0)),
    }


def _tail_samples(score_maps: dict[str, np.ndarray], planes: list[_Plane], tail_samples: int) -> dict[str, list]:
    """An even sample of each score map, plane by plane, for its tail: (values, rows, columns, plane size)."""
    tails: dict[str, list] = {k: [] for k in score_maps}
    for pl in planes:
        h, w = score_maps["hot"][pl.sel].shape
        step = max(1, h * w * len(planes) // tail_samples)
        at = np.arange(0, h * w, step, dtype=np.int32 if h * w < 2**31 else np.int64)
        ty, tx = _divmod(at, at.dtype.type(w))
        iy, ix = pl.y0 + pl.step * ty, pl.x0 + pl.step * tx  # image coordinates, shared by the kinds
        for kind, m in score_maps.items():
            tails[kind].append((_values_at(m[pl.sel], ty, tx), iy, ix, h * w))
    return tails


def _classify(c: dict, thr: dict[str, float], cfg: DetectConfig, darks: bool = False, raw_darks: bool = False) -> None:
    """Kind and score of every candidate, in order of precedence (adds "kind", "score", ...).

    1. far less variance than (nearly) all neighbours: dead if it gives (almost) no signal
       above black, or if it is darker with a variance that fell with its gain (cold: var
       ratio ~ gain^2); otherwise stuck at its value;
    2. consistently brighter / darker: hot / dead, unless the extra variance explains the
       offset (flicker shifts the mean as well);
    3. far more variance than (nearly) all neighbours: noisy.

    In darks every pixel is near black, where data clip: a variance-less pixel darker than
    its neighbours is only dead if its level says so too, and never if it sits at the data's
    floor in every frame (clipped at black: how dark it really is cannot be known).

    In raw darks a hot (warm) pixel also needs an offset of at least ``dark_min_sigmas`` times
    its neighbours' temporal sigma: its dark current stands out of the noise of a single frame.
    That is the physical meaning of warm, whatever the number of frames; the significance
    (the level z, not raised by the tail guard there) only says that it is measured. Without
    the floor, a long stack of a sensor with a very even dark current would make sensels
    significant that no single exposure shows. The default, 2 rather than the 3 of "a few
    sigmas", leaves room for the error of a measured offset (0.2 sigma in 40 frames) and for a
    warm pixel's own place in the dark-current spread of its neighbours.
    """
    zl, zv, zn = c["z_level"], c["z_var"], c["z_noise"]
    m = len(zl)
    kind = np.zeros(m, np.int8)
    score = np.zeros(m, np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sig_ratio = (c["mean"] - c["black"]) / np.maximum(c["ref_mean"] - c["black"], 1e-6)
        var_ratio = (c["std"] ** 2 + QUANT_VAR) / (c["ref_std"] ** 2 + QUANT_VAR)
    is_stuck = (zv <= -thr["stuck"]) & c["below_all"]
    no_signal = sig_ratio <= cfg.dead_fraction
    cold = (sig_ratio < 1) & (var_ratio >= cfg.cold_var_fraction * np.clip(sig_ratio, 0, 1) ** 2) & (zl < 0)
    darker = no_signal | cold
    pinned = (c["std"] <= 1e-6) & (c["mean"] <= c["black"] + 1e-6)  # at the data's floor in every frame
    if darks:
        is_stuck &= (~darker | (zl <= -thr["dead"])) & ~pinned
    kind[is_stuck] = KIND_CODES["stuck"]
    kind[is_stuck & darker] = KIND_CODES["dead"]
    score[is_stuck] = -zv[is_stuck]
    noisy = (zn >= thr["noisy"]) & c["above_all"]
    excess_sd = np.sqrt(np.maximum(c["rstd"] ** 2 - c["ref_rstd"] ** 2, 0))
    flicker = noisy & (excess_sd >= cfg.noisy_excess_ratio * np.abs(c["rho"]))
    bright = zl >= thr["hot"]
    if raw_darks:  # warm in a dark: a physical offset, for the level z and the counts alike
        warm_enough = c["rho"] >= cfg.dark_min_sigmas * np.maximum(c["ref_std"], math.sqrt(QUANT_VAR))
        bright &= warm_enough
    # range counts (when the stats have them): flicker is beyond the range on both sides, often;
    # a level defect on one side. Flicker by the counts (their sum) also needs both sides at least
    # counts_flicker_frames and at least their null's mean: a shifted level raises one side but
    # lowers the other, which over many frames would make the sum significant too. Flicker by the
    # counts outranks a level class (flicker shifts the mean too), never the missing variance of a
    # stuck or unresponsive sensel.
    counted = "k_hi" in c
    c_flicker = c_hot = c_dead = np.zeros(m, bool)
    if counted:
        thr_c = {k: thr.get("counts_" + k, thr["counts"]) for k in ("hot", "dead", "noisy")}
        s_hi, s_lo, s_sum = c["s_hi"], c["s_lo"], c["s_sum"]
        both = ((c["k_hi"] >= np.maximum(cfg.counts_flicker_frames, c["m_hi"]))
                & (c["k_lo"] >= np.maximum(cfg.counts_flicker_frames, c["m_lo"])))
        flickers = (s_sum >= thr["counts"]) & both & c["inner"]  # at the null's threshold: never a level class then
        c_flicker = flickers & (s_sum >= thr_c["noisy"])
        c_hot = (s_hi >= thr_c["hot"]) & (s_hi >= s_lo) & ~flickers
        c_dead = (s_lo >= thr_c["dead"]) & (s_lo > s_hi) & ~flickers
        if raw_darks:
            c_hot &= warm_enough
        if darks:
            c_dead &= ~pinned
    lvl = ~is_stuck & (bright | (zl <= -thr["dead"])) & ~flicker & ~c_flicker
    if darks:
        lvl &= ~pinned
    kind[lvl] = np.where(zl[lvl] > 0, KIND_CODES["hot"], KIND_CODES["dead"])
    score[lvl] = np.abs(zl[lvl])
    nz = ~is_stuck & ~lvl & (noisy | c_flicker)
    kind[nz] = KIND_CODES["noisy"]
    score[nz] = zn[nz]
    by_counts = np.zeros(m, bool)
    if counted:
        c_score = np.maximum(np.maximum(s_hi, s_lo), s_sum)  # the "counts" map
        nc = nz & ~noisy
        cl = ~is_stuck & ~lvl & ~nz & (c_hot | c_dead)
        kind[cl] = np.where(c_hot[cl], KIND_CODES["hot"], KIND_CODES["dead"])
        by_counts = nc | cl
        score[by_counts] = c_score[by_counts]
        lvl = lvl | cl
    c["kind"], c["score"], c["by_counts"] = kind, score, by_counts
    c["rank"] = np.where(is_stuck, 0, np.where(lvl, 1, 2)).astype(np.int8)
    c["sign"] = np.sign(zl).astype(np.int8)
    # JPEG: the residual's rings and the chroma smear around a defect can be as strong as it is in
    # one channel; the luma blob ranks the pixels of a blob instead
    amp = c["luma_amp"] if "luma_amp" in c else c["z_amp"]
    c["strength"] = np.maximum(np.maximum(amp, np.abs(zv)), zn)


def _one_per_pixel(c: dict) -> dict:
    """One candidate per pixel (x, y) across channels: a sensel is one defect, whatever the smear.

    Its class follows the same precedence as within a channel (no variance, then level, then
    flicker), its strength is the largest of its channels'.
    """
    if len(c["y"]) == 0:
        return c
    key = c["y"] * (int(c["x"].max()) + 1) + c["x"]
    order = np.lexsort((-c["score"], c["rank"], key))
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    starts = np.flatnonzero(first)
    strength = np.maximum.reduceat(c["strength"][order], starts)
    out = {k: v[order[starts]] for k, v in c.items()}
    out["strength"] = strength
    return out


def _suppress(c: dict, cfg: DetectConfig, is_cfa: bool) -> np.ndarray:
    """Greedy non-maximum suppression, strongest first; returns the mask of kept candidates.

    Strength is a candidate's largest |z| of any kind, so that the true peak of a blob wins
    even when its class is decided by a smaller score (a clipped hot pixel is also less
    variable; a JPEG ring can be as dark as the hot pixel is bright).

    Demosaiced images: a candidate is dropped when a stronger kept one lies within
    ``nms_radius`` px in any channel (one sensel smears into a blob across channels), or a
    kept one ``ring_ratio`` times stronger lies within ``ring_radius`` px (the residual's
    opposite-sign ring, and JPEG's ringing over its 8x8 blocks), or one ``far_ring_ratio``
    times stronger whose blob (+-nms_radius) touches the candidate's ``jpeg_block`` cell
    (ringing fills the 16x16 chroma blocks of a 4:2:0 JPEG, but does not leave them).
    Mosaics: sensels do not smear, so only the same CFA colour counts; a candidate is dropped
    next to a stronger one (``nms_radius_cfa``, 2 = the 8 nearest same-colour sensels) only
    when its level has the opposite sign (the -1/4 ring a hot pixel leaves in its neighbours'
    residuals, or the +1/4 ring of a dead one), or the stronger one is ``ring_ratio`` times
    stronger.
    """
    m = len(c["score"])
    keep = np.zeros(m, bool)
    if m == 0:
        return keep
    order = np.argsort(-c["strength"], kind="stable")
    block = 0
    if is_cfa:
        r_nms, r_ring = 0, cfg.nms_radius_cfa
    else:
        r_nms, r_ring, block = cfg.nms_radius, cfg.ring_radius, cfg.jpeg_block
    cell = max(r_nms, r_ring, block + r_nms, 1)
    # Python numbers for the loop (numpy scalars are ~10x slower in it); the ratio tests compare
    # with the products made in the strength's own dtype, as the scalar arithmetic made them
    sc = c["strength"]
    ring_at, far_at = (cfg.ring_ratio * sc).tolist(), (cfg.far_ring_ratio * sc).tolist()
    ys, xs, sc, sign, plane = (c[k].tolist() for k in ("y", "x", "strength", "sign", "plane"))
    grid: dict[tuple[int, int], list[int]] = {}

    def dropped(i: int, y: int, x: int, cy: int, cx: int) -> bool:
        """Whether a kept candidate in the 3x3 cells around candidate i drops it (see above)."""
        for gy in (cy - 1, cy, cy + 1):
            for gx in (cx - 1, cx, cx + 1):
                for j in grid.get((gy, gx), ()):
                    if is_cfa and plane[j] != plane[i]:
                        continue
                    d = max(abs(ys[j] - y), abs(xs[j] - x))
                    if d <= r_nms:
                        return True
                    if d <= r_ring:
                        if sc[j] >= ring_at[i] or (is_cfa and sign[j] * sign[i] < 0):
                            return True
                    elif block and sc[j] >= far_at[i]:
                        # JPEG ringing stays in the blocks that the kept defect's blob touches
                        by, bx = ys[j] // block, xs[j] // block
                        if ((y // block == by or (y - r_nms) // block == by or (y + r_nms) // block == by)
                                and (x // block == bx or (x - r_nms) // block == bx or (x + r_nms) // block == bx)):
                            return True
        return False

    for i in order.tolist():
        y, x = ys[i], xs[i]
        cy, cx = y // cell, x // cell
        if not dropped(i, y, x, cy, cx):
            keep[i] = True
            grid.setdefault((cy, cx), []).append(i)
    return keep


def _defect(c: dict, i: int, n: int) -> Defect:
    """One record (of stats over ``n`` frames), with the evidence that decided its class in words."""
    kind = KIND_NAMES[int(c["kind"][i])]
    mu, ref = float(c["mean"][i]), float(c["ref_mean"][i])
    sd, ref_sd = float(c["std"][i]), float(c["ref_std"][i])
    rank = int(c["rank"][i])
    if "by_counts" in c and c["by_counts"][i]:
        what = {"hot": "brighter", "dead": "darker", "noisy": "flicker"}[kind]
        detail = (f"{what}: beyond its neighbours' range, above in {int(c['k_hi'][i])} and below in "
                  f"{int(c['k_lo'][i])} of {n} frames (-log10 p {float(c['score'][i]):.1f}); "
                  f"mean {mu:.4g} vs neighbours {ref:.4g}, residual std {float(c['rstd'][i]):.3g} vs {float(c['ref_rstd'][i]):.3g}")
    elif rank == 0:
        what = "no response" if kind == "dead" else f"stuck near {mu:.4g}"
        detail = f"{what}: std {sd:.3g} vs neighbours {ref_sd:.3g} (z {c['z_var'][i]:+.1f}); mean {mu:.4g} vs {ref:.4g}"
    elif rank == 1:
        detail = (f"{'brighter' if kind == 'hot' else 'darker'}: mean {mu:.4g} vs neighbours {ref:.4g}; "
                  f"residual {float(c['rho'][i]):+.3g}/frame (z {c['z_level'][i]:+.1f})")
    else:
        detail = (f"flicker: residual std {float(c['rstd'][i]):.3g} vs neighbours {float(c['ref_rstd'][i]):.3g} "
                  f"(z {c['z_noise'][i]:+.1f}); mean {mu:.4g} vs {ref:.4g}")
    return Defect(
        x=int(c["x"][i]), y=int(c["y"][i]), channel=int(c["channel"][i]), kind=kind, mean=mu, std=sd,
        score=float(c["score"][i]), color=str(c["color"][i]), neighbour_mean=ref, neighbour_std=ref_sd,
        residual_mean=float(c["rmean"][i]), detail=detail,
    )
