"""Dark current: does a sensel's residual grow with exposure (hot), whatever its mean?

Real hot pixels are dark current: their excess is rate x exposure x gain, invisible in short
frames and large in long ones, so over a collection their mean is diluted by the short frames
and their spread inflated by the long ones. The exposure fit (``exposure.py``) measures the
rate itself; its t statistic, over its local MAD (the same robust z as the level's), says how
clearly it stands out of its neighbours'. Only a rising rate is a defect here: a hot pixel
leaks -1/4 of its rate into each neighbour's residual, which is its ring, not a cold pixel.

The rate's standard error comes from the sensel's own scatter about its line, so over few
frames t has Student's tails (6 darks: t > 7 in one sensel of 900). In raw darks every sensel
has the same noise, so its neighbours' typical scatter floors its own, as the level's does: a
scatter that came out low by chance cannot inflate t. In photos the scene adds to the scatter
and t is read as it is (over the 40-60 frames of a collection its tails are near normal), with
the residual's quantisation in its error (8-bit frames round a flat area's scatter to nothing).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..bands import PlaneView
from ..filters import WINDOW, gather, pseudo_median_rows, window_offsets
from ..noise import QUANT_VAR
from ..nulls import chi2_median_ratio
from ..rings import RING_T, remove_rings, ring_rows, separate_adjacent
from ..scale import BlockScale, block_mads
from ..stripes import each_stripe
from .level import SE_QUANT

# the dark-current z is never larger than the rate's t statistic itself (as the level's)
RATE_SCALE_FLOOR = 1.0
# sigma of a normal distribution per unit of MAD
MAD_SIGMA = 1.4826
# a falling rate no larger than this share of one of its 8 nearest neighbours' rising rate is that
# neighbour's leak (a quarter of it, give or take the noise), not the map's null (``leaks``)
LEAK_SHARE = 0.5


@dataclass
class RateMeasures:
    mads: np.ndarray
    rings: tuple[np.ndarray, np.ndarray]  # what ring removal added to each rate (``rings.remove_rings``)


def measure(v: PlaneView, out: np.ndarray, pool: ThreadPoolExecutor | None = None,
            one_value: bool = False, bright: np.ndarray | None = None, spacing: int = 1,
            raw_darks: bool = False) -> RateMeasures:
    """The rate's t statistic of the core rows into ``out`` (0 where the sensel has no fit), its
    neighbours' leaks added back as the level's are; the blocks of its scale.

    In a one-value sensor no value slope is kept, so a partner's leak is added back to first
    order, and only at the sensels the level's exact separation found bright (``bright``,
    plane-flat): a clipped hot sensel leaks less than its rate (its neighbours' residuals see
    it flat at white), so the ring of one would turn positive, and its diagonals with it."""
    fit = v.fit
    if fit is None:
        raise ValueError("the dark-current criterion needs the stack's exposure fit")
    a, b = ring_rows(v, one_value)
    rate = np.nan_to_num(fit.rate[a - v.top : b - v.top], nan=0.0)
    se = np.nan_to_num(fit.rate_se[a - v.top : b - v.top], nan=np.inf, posinf=np.inf)
    _unmeasured_scatter(v, se, a, b, spacing)
    se = np.where(se > 0, se, np.float32(np.inf)).astype(np.float32)
    if raw_darks:
        _floor_by_neighbours(v, se, a, b, spacing, pool)
    else:
        _with_quantisation(v, se, a, b)
    mag = np.abs(rate)
    significant = np.flatnonzero(mag >= np.float32(RING_T) * se)
    sources = np.flatnonzero(mag / se >= RING_T)
    if one_value:
        allow = None if bright is None else bright - a * v.width
        key, add, _ = separate_adjacent(rate, se, sources, a, v.height, allow=allow)
    else:
        key, add = remove_rings(rate, se, significant, sources)

    def rows_t(r0: int, r1: int) -> None:
        np.divide(rate[r0 - a : r1 - a], se[r0 - a : r1 - a], out=out[r0 - v.y0 : r1 - v.y0])

    each_stripe(pool, v.y0, v.y1, v.width, rows_t)
    mads = block_mads(out, v.y0, v.y1, v.shape, pool=pool, top=v.y0)
    return RateMeasures(mads, (key + a * v.width, add))


def _unmeasured_scatter(v: PlaneView, se: np.ndarray, a: int, b: int, spacing: int) -> None:
    """The rate's standard error (rows a..b of ``se``, in place) where the sums cannot say the
    sensel's scatter about its line (``stats.fit``: 0): the spread of its neighbours' rates.

    The cross term of a frame the camera dark-subtracted holds that frame's noise times its
    exposure (among the longest), and a dark-current sensel's noise there is its own dark
    signal's shot noise, twice over: for a strong one it outweighs what the line leaves of every
    other frame, and the scatter comes out nothing. Its rate is measured all the same, and the
    rates of its neighbours, healthy sensels fitted over the same frames, say how far a rate
    strays by chance (1.4826 x their MAD, as every map's local scale): whatever broke its own
    scatter is in theirs. Only where it rises: a falling line whose scatter comes out nothing
    is the leak of a dark-current neighbour (-1/4 of its rate, and of its noise in that frame)."""
    assert v.fit is not None
    held = v.fit.noise_var[a - v.top : b - v.top]
    unmeasured = np.isfinite(held) & (held <= 0) & (v.fit.rate[a - v.top : b - v.top] > 0)
    if not unmeasured.any():
        return
    ys, xs = np.nonzero(unmeasured)
    rates = gather(v.fit.rate, ys + a, xs, window_offsets(WINDOW, spacing), top=v.top, height=v.height)
    rates = np.where(np.isfinite(rates), rates, np.nan)
    med = np.nanmedian(rates, axis=1, keepdims=True)
    spread = np.float32(MAD_SIGMA) * np.nanmedian(np.abs(rates - med), axis=1)
    se[ys, xs] = np.where(spread > 0, spread, np.inf)


def _with_quantisation(v: PlaneView, se: np.ndarray, a: int, b: int) -> None:
    """Widen ``se`` (rows a..b, in place) by the quantisation of the residual, as the level's
    standard error is: the scatter about the line plus ``QUANT_VAR`` x ``SE_QUANT``. In 8-bit
    frames a sensel of a flat area reads the same integer frame after frame, and where one long
    frame lifts it by a few levels, its line takes all of its scatter and the rest is rounding:
    on 8 JPEG collections, 13 reports of 0.03-0.1 "DN/s" at a dark-current z of 21-73 matched
    nothing planted. Negligible where the noise is tens of DN (raw)."""
    assert v.fit is not None
    own = np.nan_to_num(v.fit.noise_var[a - v.top : b - v.top], nan=0.0).astype(np.float32)
    quant = np.float32(QUANT_VAR * SE_QUANT)
    widen = np.divide(own + quant, own, out=np.ones_like(own), where=own > 0)
    se *= np.sqrt(widen)


def _floor_by_neighbours(v: PlaneView, se: np.ndarray, a: int, b: int, spacing: int,
                         pool: ThreadPoolExecutor | None) -> None:
    """Widen ``se`` (rows a..b) where the sensel's scatter about its line is below its
    neighbours' typical one: se * sqrt(floor / own), the error the neighbours' scatter would
    give the same line. The floor is the larger of the neighbours' pseudo-median (it follows
    amp glow) and its row's median (over few frames 25 neighbours' scatters can all come out
    low by chance, somewhere in a million), each a median of scatters over n - 2 degrees of
    freedom and so divided by chi-square's median over its mean; plus the quantisation.

    The row's median, not the band's: a band is what the cluster's worker count cut, so a floor
    of the band's made a scan's scores on 2 workers differ from the same stats' on 1 (the
    many-defect darks: dark-current z by up to 0.2 %); a row is whole in every band that reads it."""
    assert v.fit is not None
    noise = np.nan_to_num(v.fit.noise_var, nan=0.0).astype(np.float32, copy=False)
    unbias = np.float32(1.0 / chi2_median_ratio(max(v.n - 2, 1)))
    quant = np.float32(QUANT_VAR * SE_QUANT)

    def rows(r0: int, r1: int) -> None:
        own = noise[r0 - v.top : r1 - v.top]
        floor = pseudo_median_rows(noise, r0, r1, WINDOW, spacing, top=v.top, height=v.height)
        np.maximum(floor, np.median(own, axis=1, keepdims=True).astype(np.float32), out=floor)
        floor *= unbias
        floor += quant
        widen = np.divide(floor, own, out=np.ones_like(own), where=own > 0)
        np.maximum(widen, 1, out=widen)
        np.sqrt(widen, out=widen)
        se[r0 - a : r1 - a] *= widen

    each_stripe(pool, a, b, v.width, rows)


def leaks(v: PlaneView, ys: np.ndarray, xs: np.ndarray, spacing: int) -> np.ndarray:
    """Whether each sensel (plane rows and columns, core rows) falls with exposure by a leak: by
    no more than ``LEAK_SHARE`` of what one of its 8 nearest neighbours rises.

    A hot sensel leaks -1/4 of its rate into each neighbour's residual. Where the level shows it
    (``measure``'s ``bright``) that is added back; in photos a dark-current sensel's excess is
    diluted by the short frames and mostly does not, and its own error holds its dark shot noise,
    so its ring can stand out of its neighbours' smaller errors more than it does itself. The
    tail guard reads this map's falling side as its null (``tails.MIRRORED``): on collections
    with 20 hot sensels those leaks raised the threshold to 24-33, on a 1 % population to 77. A
    scene edge that brightens with exposure on one side and darkens on the other is no leak: its
    two sides move alike, and stay in the null."""
    fit = v.fit
    if fit is None:
        raise ValueError("the dark-current criterion needs the stack's exposure fit")
    own = fit.rate[ys - v.top, xs]
    near = gather(fit.rate, ys, xs, window_offsets(3, spacing), top=v.top, height=v.height)
    most = np.max(np.nan_to_num(near, nan=0.0), axis=1)
    return (own < 0) & (-own <= np.float32(LEAK_SHARE) * most)


def scale(measures: list[RateMeasures], shape: tuple[int, int]) -> BlockScale:
    return BlockScale(np.concatenate([m.mads for m in measures]), shape, floor_abs=RATE_SCALE_FLOOR)


def score(v: PlaneView, rate_map: np.ndarray, rate_scale: BlockScale, threshold: float,
          pool: ThreadPoolExecutor | None = None) -> list[np.ndarray]:
    """The dark-current z of the core rows into ``rate_map``, signed: the tail guard reads its falling
    side (``tails.MIRRORED``), and ``clip`` then keeps the rising side only; the sensels past the
    threshold."""
    found: list[np.ndarray] = []

    def rows_rate(r0: int, r1: int) -> None:
        z = rate_scale.rows(r0, r1)
        np.divide(rate_map[r0 - v.y0 : r1 - v.y0], z, out=z)
        found.append(np.flatnonzero(z >= threshold) + r0 * v.width)
        rate_map[r0 - v.y0 : r1 - v.y0] = z

    each_stripe(pool, v.y0, v.y1, v.width, rows_rate)
    return found


def clip(rate_map: np.ndarray) -> None:
    """The map a user reads: the rising side only (max(z, 0))."""
    np.maximum(rate_map, 0, out=rate_map)
