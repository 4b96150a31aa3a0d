"""Level: is a sensel consistently brighter (hot, warm) or darker (dead, cold) than its neighbours?

The t statistic of the residual mean (the sensel minus the mean of its 4 same-colour
neighbours, averaged over the frames, over its own standard error), over its local MAD. The
own standard error makes a single-frame event (a specular highlight, a one-frame blip in an
8-bit dark) count once, not n times; the MAD turns t into a z whatever the texture or the
fixed-pattern noise. A defect leaks -1/4 of itself into each neighbour's residual: that ring
is added back first (``rings.py``). In raw darks every sensel has the same read noise, so its
neighbours' variance floors its standard error: one that came out low by chance (the own
variance over n frames scatters by sqrt(2/(n-1)): +-23 % in 40) cannot inflate t. The standard
error is that of the mean it divides, over every frame: a sensel whose residual grows with
exposure has a wide one here, and the dark-current criterion speaks for it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..bands import PlaneView
from ..filters import WINDOW, pseudo_median_rows
from ..noise import QUANT_VAR, residual_var
from ..rings import RING_T, remove_rings, ring_rows, separate_adjacent
from ..scale import BlockScale, block_mads
from ..stripes import each_stripe

# the amplitude scale (|residual| over its block's MAD: ranks a JPEG blob's pixels) is never
# below this fraction of the plane's median scale: clipped and flat areas have a MAD near 0
AMP_SCALE_FLOOR = 0.25
# the level z is never larger than the t statistic itself: a MAD of t below 1 means t's own
# noise was overestimated there, not that the sensel is more significant than its t
LEVEL_SCALE_FLOOR = 1.0
# the standard error's quantisation floor is 1.25 x 1/12: the residual of integer data has the
# sensel's own rounding and 1/16 of each of its 4 neighbours'
SE_QUANT = 1.25


@dataclass
class LevelMeasures:
    """What pass 1 leaves: the blocks of both scales, and the rings added back (plane-flat
    indices, sorted, and what each got), to rebuild the ring-free residual at any sensel; in a
    one-value sensor, the sensels that stand out bright once measured against their background
    neighbours (plane-flat, sorted: ``dark_current`` separates only their rates)."""

    amp_mads: np.ndarray
    level_mads: np.ndarray
    rings: tuple[np.ndarray, np.ndarray]
    bright: np.ndarray | None = None


def measure(v: PlaneView, t_out: np.ndarray, spacing: int, raw_darks: bool,
            pool: ThreadPoolExecutor | None = None, one_value: bool = False) -> LevelMeasures:
    """The t statistic of the core rows into ``t_out`` (core rows), and the blocks of both scales.
    ``one_value``: one value per sensel (a mosaic, a monochrome sensor): every significant
    neighbour's leak is added back (``rings.remove_rings``)."""
    f32 = np.float32
    n = f32(v.n)
    w = v.width
    se_q = f32(QUANT_VAR) * f32(SE_QUANT)
    a, b = ring_rows(v, one_value)
    se = np.empty((b - a, w), f32)
    if raw_darks:
        rvar = np.empty((v.bottom - v.top, w), f32)
        each_stripe(pool, v.top, v.bottom, w,
                    lambda r0, r1: residual_var(v.res_m2[r0 - v.top : r1 - v.top], n, rvar[r0 - v.top : r1 - v.top]))

        def rows_se(r0: int, r1: int) -> None:
            s = np.add(rvar[r0 - v.top : r1 - v.top], se_q, out=se[r0 - a : r1 - a])
            floor = pseudo_median_rows(rvar, r0, r1, WINDOW, spacing, top=v.top, height=v.height)
            floor += se_q
            np.maximum(s, floor, out=s)
            s /= n
            np.sqrt(s, out=s)
    else:
        def rows_se(r0: int, r1: int) -> None:
            s = se[r0 - a : r1 - a]
            residual_var(v.res_m2[r0 - v.top : r1 - v.top], n, s)
            s += se_q
            s /= n
            np.sqrt(s, out=s)
    each_stripe(pool, a, b, w, rows_se)
    # which sensels stand out, to be told apart from their neighbours: judged about the exposure
    # trend where the stack has a fit (a hot sensel's own dark current widens its plain error)
    se_sep = _separation_se(v, se, a, b, n, se_q) if one_value else se
    rho = np.empty((b - a, w), f32)  # the ring-free residual mean
    significant = []

    def rows_rho(r0: int, r1: int) -> None:  # the significant sensels, and those whose ring counts
        r = rho[r0 - a : r1 - a]
        r[...] = v.res_mean[r0 - v.top : r1 - v.top]
        s = se_sep[r0 - a : r1 - a]
        mag = np.abs(r)
        sig = np.flatnonzero(mag >= f32(RING_T) * s) + (r0 - a) * w  # np.nonzero: ~4x slower
        src = np.flatnonzero(np.divide(mag, s, out=mag) >= RING_T) + (r0 - a) * w  # ring_terms' test
        significant.append((r0, sig, src))

    each_stripe(pool, a, b, w, rows_rho)
    significant.sort(key=lambda s: s[0])  # flat indices, sorted
    sources = np.concatenate([s[2] for s in significant])
    bright = None
    if one_value:
        key, add, kept = separate_adjacent(rho, se_sep, sources, a, v.height, v.value_mean, v.top)
        # fewer neighbours, a noisier reference: the residual's variance is the sensel's plus
        # 1/kept of a neighbour's, where it was 1/4 of one
        at = np.flatnonzero((kept > 0) & (kept < 4))
        grow = np.sqrt((1 + 1 / kept[at]) / 1.25).astype(f32)
        se.reshape(-1)[key[at]] *= grow
        maybe = np.union1d(sources, key)
        bright = maybe[rho.reshape(-1)[maybe] >= f32(RING_T) * se_sep.reshape(-1)[maybe]] + a * w
    else:
        key, add = remove_rings(rho, se, np.concatenate([s[1] for s in significant]), sources)
    amp_mads = block_mads(rho, v.y0, v.y1, v.shape, pool=pool, top=a)
    each_stripe(pool, v.y0, v.y1, w, lambda r0, r1: np.divide(rho[r0 - a : r1 - a], se[r0 - a : r1 - a],
                                                               out=t_out[r0 - v.y0 : r1 - v.y0]))
    level_mads = block_mads(t_out, v.y0, v.y1, v.shape, pool=pool, top=v.y0)
    return LevelMeasures(amp_mads, level_mads, (key + a * w, add), bright)


def _separation_se(v: PlaneView, se: np.ndarray, a: int, b: int, n: np.float32, se_q: np.float32) -> np.ndarray:
    """The standard error of held rows a:b with the exposure taken out where the stack has a fit
    (``exposure.py``), else the level's own. Only where the fit holds every frame: a sensel
    that clipped (a specular highlight in one frame) has a mean the fit's noise does not
    describe."""
    if v.fit is None:
        return se
    fitted = v.fit.noise_var[a - v.top : b - v.top]
    out = np.sqrt((fitted + se_q) / n).astype(np.float32)
    whole = np.isfinite(out)
    for name in ("excluded", "holes"):
        if name in v.extra:
            whole &= v.extra[name][a - v.top : b - v.top] == 0
    np.copyto(out, se, where=~whole)
    return out


def scales(measures: list[LevelMeasures], shape: tuple[int, int]) -> tuple[BlockScale, BlockScale]:
    """The plane's amplitude and level scales, from every band's blocks (in row order)."""
    amp = BlockScale(np.concatenate([m.amp_mads for m in measures]), shape, floor_frac=AMP_SCALE_FLOOR)
    level = BlockScale(np.concatenate([m.level_mads for m in measures]), shape, floor_abs=LEVEL_SCALE_FLOOR)
    return amp, level


def score(v: PlaneView, hot: np.ndarray, dead: np.ndarray, level_scale: BlockScale, hot_threshold: float,
          dead_threshold: float, pool: ThreadPoolExecutor | None = None) -> list[np.ndarray]:
    """The level z of the core rows: ``hot`` (holding t) becomes max(z, 0), ``dead`` max(-z, 0);
    the plane-flat indices of the sensels past either threshold."""
    found: list[np.ndarray] = []

    def rows_level(r0: int, r1: int) -> None:  # z in the (contiguous) scale's rows: the maps are strided
        z = level_scale.rows(r0, r1)
        np.divide(hot[r0 - v.y0 : r1 - v.y0], z, out=z)
        found.append(np.flatnonzero((z >= hot_threshold) | (z <= -dead_threshold)) + r0 * v.width)
        d = np.negative(z, out=dead[r0 - v.y0 : r1 - v.y0])
        np.maximum(d, 0, out=d)
        np.maximum(z, 0, out=hot[r0 - v.y0 : r1 - v.y0])

    each_stripe(pool, v.y0, v.y1, v.width, rows_level)
    return found
