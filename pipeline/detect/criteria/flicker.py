"""Flicker: does a sensel vary far more than its neighbours, the scene taken out (noisy: random
telegraph noise)?

The log of the residual variance minus the 1/16 of each neighbour's variance that the
4-neighbour mean leaks into it (so a flickering sensel's neighbours stay quiet), over its local
median and MAD. The residual removes the scene changes that dominate the value variance of a
photo stack, so flicker can stand out.

In raw darks (one value per sensel, no scene) a healthy sensel's sample variance is its noise
variance times chi-square(n-1)/(n-1), and the map compares the residual variance with what a
healthy sensel there would show (its neighbours' typical variance plus the leak) through the
Wilson-Hilferty cube root, which is Gaussian in both tails of chi-square. The log is not: its
upper tail is short, so a 5x variance (p ~ 1e-22 in 40 frames) scored 6.4.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..bands import PlaneView
from ..exposure import residual_variance, residual_variance_at
from ..filters import WINDOW, pad_index, pad_mode, padded_rows, pseudo_median_rows
from ..noise import QUANT_VAR
from ..scale import BlockScale, block_mads
from ..stripes import each_stripe
from .variance import VAR_SCALE_FLOOR, chi_spread

# neighbourhoods far quieter than the plane's typical one are clipped or flat: a sensel there
# varies because it sits at the edge of the clipping, not because it flickers. "Far" is this
# fraction of the plane's median residual variance
MIN_NEIGHBOUR_VAR = 0.1
# the plane's median residual variance is taken from every 4th row and column
QUIET_SAMPLE = 4
# a candidate's log residual variance at the few dozen sensels its tests read costs as much as
# about this many sensels' of whole rows (12 us and 13 ns: ``lrv_lookup``): a photo stack's
# thousands of candidates per million sensels read the rows, a 45 MP sensor's few the points
POINTS_PER_ROW_VALUE = 1000


@dataclass
class FlickerMeasures:
    mads: np.ndarray
    quiet_sample: np.ndarray  # the residual variance at every QUIET_SAMPLE-th row and column of the core


def neighbour_leak(a: np.ndarray, r0: int, r1: int, top: int = 0, height: int | None = None) -> np.ndarray:
    """Rows r0:r1 of (up + down + left + right) / 16 of the 4 nearest neighbours, reflected at the
    edges like the residual stream: what the 4-neighbour mean leaks of each neighbour's variance."""
    p = padded_rows(a, r0, r1, 1, top, height)
    leak = p[:-2, 1:-1] + p[2:, 1:-1]
    leak += p[1:-1, :-2]
    leak += p[1:-1, 2:]
    leak *= np.float32(1 / 16)
    return leak


def log_residual_var(v: PlaneView, rvar: np.ndarray, r0: int, r1: int, out: np.ndarray) -> None:
    """log(residual variance - the neighbours' leak + 1/12) of rows r0:r1, into ``out``;
    ``rvar`` holds the view's rows."""
    leak = neighbour_leak(rvar, r0, r1, v.top, v.height)
    np.subtract(rvar[r0 - v.top : r1 - v.top], leak, out=leak)
    np.maximum(leak, 0, out=leak)
    leak += np.float32(QUANT_VAR)
    np.log(leak, out=out)


def lrv_points(v: PlaneView, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``log_residual_var`` at single sensels (plane rows ``ys`` and columns ``xs`` inside the plane,
    any shape), the same float32 steps as the rows': the candidates read it at a few dozen sensels
    around each, and a band's every row of it cost 13 % of a 45 MP detection."""
    shape = np.shape(ys)
    ys, xs = np.ravel(ys), np.ravel(xs)
    mode = pad_mode((v.height, v.width), 1)
    up, down = pad_index(ys - 1, v.height, mode), pad_index(ys + 1, v.height, mode)
    left, right = pad_index(xs - 1, v.width, mode), pad_index(xs + 1, v.width, mode)
    leak = residual_variance_at(v, up, xs) + residual_variance_at(v, down, xs)
    leak += residual_variance_at(v, ys, left)
    leak += residual_variance_at(v, ys, right)
    leak *= np.float32(1 / 16)
    out = np.subtract(residual_variance_at(v, ys, xs), leak, out=leak)
    np.maximum(out, 0, out=out)
    out += np.float32(QUANT_VAR)
    return np.log(out, out=out).reshape(shape)


def lrv_lookup(v: PlaneView, spacing: int, candidates: int, pool: ThreadPoolExecutor | None = None):
    """The log residual variance at given plane rows and columns for ``candidates`` candidates of
    the view's core: at those sensels alone where they are few (``lrv_points``), else read from
    the rows (``lrv_rows``); the same numbers either way."""
    if candidates * POINTS_PER_ROW_VALUE < (v.y1 - v.y0) * v.width:
        return partial(lrv_points, v)
    _, lrv, top = lrv_rows(v, spacing, pool)
    return lambda ys, xs: lrv[ys - top, xs]


def lrv_rows(v: PlaneView, spacing: int, pool: ThreadPoolExecutor | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The residual variance of the view's rows, and its log after the leak for the rows the core's
    local medians read; returns (rvar, lrv, first row of lrv)."""
    np.float32(v.n)
    rvar = np.empty((v.bottom - v.top, v.width), np.float32)
    each_stripe(pool, v.top, v.bottom, v.width,
                lambda r0, r1: residual_variance(v, r0, r1, rvar[r0 - v.top : r1 - v.top]))
    p = (WINDOW // 2) * spacing
    a, b = max(v.top, v.y0 - p), min(v.bottom, v.y1 + p)
    lrv = np.empty((b - a, v.width), np.float32)
    each_stripe(pool, a, b, v.width, lambda r0, r1: log_residual_var(v, rvar, r0, r1, lrv[r0 - a : r1 - a]))
    return rvar, lrv, a


def measure(v: PlaneView, out: np.ndarray, spacing: int, raw_darks: bool,
            pool: ThreadPoolExecutor | None = None) -> FlickerMeasures:
    """The flicker map of the core rows before its scale, into ``out``; the blocks of its scale
    and the sample of the plane's typical residual variance."""
    q = np.float32(QUANT_VAR)
    rvar, lrv, a = lrv_rows(v, spacing, pool)
    quiet = rvar[(-v.y0) % QUIET_SAMPLE + v.y0 - v.top : v.y1 - v.top : QUIET_SAMPLE, ::QUIET_SAMPLE]

    def rows_noise(r0: int, r1: int) -> None:  # z before its scale
        ref = pseudo_median_rows(lrv, r0, r1, WINDOW, spacing, top=a, height=v.height)
        if raw_darks:  # Wilson-Hilferty: (s^2 / sigma^2)^(1/3) is ~N(1 - 2/(9k), 2/(9k)) for k degrees of freedom
            inflow = neighbour_leak(rvar, r0, r1, v.top, v.height)
            inflow += np.exp(ref)  # the healthy residual variance here, quantisation included
            z = np.divide(rvar[r0 - v.top : r1 - v.top] + q, inflow, out=inflow)
            np.cbrt(z, out=z)
            z -= np.float32(1)
            out[r0 - v.y0 : r1 - v.y0] = z
        else:
            np.subtract(lrv[r0 - a : r1 - a], ref, out=out[r0 - v.y0 : r1 - v.y0])

    each_stripe(pool, v.y0, v.y1, v.width, rows_noise)
    return FlickerMeasures(block_mads(out, v.y0, v.y1, v.shape, pool=pool, top=v.y0), quiet.copy())


def scale(measures: list[FlickerMeasures], shape: tuple[int, int], n: int, raw_darks: bool) -> BlockScale:
    # raw darks: Wilson-Hilferty's own spread, sqrt(2/(9(n-1)))
    floor = chi_spread(n) / 3 if raw_darks else VAR_SCALE_FLOOR * chi_spread(n)
    return BlockScale(np.concatenate([m.mads for m in measures]), shape, floor_abs=floor)


def quiet_level(measures: list[FlickerMeasures]) -> float:
    """The log residual variance below which a neighbourhood is too quiet to judge flicker in."""
    sample = np.concatenate([m.quiet_sample.ravel() for m in measures])
    return math.log(MIN_NEIGHBOUR_VAR * float(np.median(sample)) + QUANT_VAR)


def score(v: PlaneView, noisy: np.ndarray, noise_scale: BlockScale, threshold: float,
          pool: ThreadPoolExecutor | None = None) -> list[np.ndarray]:
    """The flicker z of the core rows into ``noisy`` (signed: the candidates read it before
    ``clip``); the sensels past the threshold."""
    found: list[np.ndarray] = []

    def rows_noisy(r0: int, r1: int) -> None:  # z in the (contiguous) scale's rows
        z = noise_scale.rows(r0, r1)
        np.divide(noisy[r0 - v.y0 : r1 - v.y0], z, out=z)
        found.append(np.flatnonzero(z >= threshold) + r0 * v.width)
        noisy[r0 - v.y0 : r1 - v.y0] = z

    each_stripe(pool, v.y0, v.y1, v.width, rows_noisy)
    return found


def clip(v: PlaneView, noisy: np.ndarray, pool: ThreadPoolExecutor | None = None) -> None:
    each_stripe(pool, v.y0, v.y1, v.width,
                lambda r0, r1: np.maximum(noisy[r0 - v.y0 : r1 - v.y0], 0, out=noisy[r0 - v.y0 : r1 - v.y0]))
