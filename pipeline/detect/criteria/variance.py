"""Variance: does a sensel vary far less than its neighbours (stuck, or dead when it also gives
no signal)?

The log of the value variance over the local (pseudo-)median of its neighbours' (the seed
article's minimum-variance idea, made relative), over its local MAD. The quantisation floor
(``noise.QUANT_VAR``) keeps clipped or black areas, where every variance is ~0, from looking
stuck. In raw darks a healthy sensel's variance scatters by chi-square over n-1 degrees of
freedom: the scale is never below that spread (a block's MAD from 256 samples is itself ~7 %
noisy, and below the spread it would make a chance low variance "stuck"). Over few frames
the log of a sample variance has chi-square's long lower tail, which no scale makes Gaussian:
in raw darks (Gaussian noise, no scene) the z is also read from chi-square's tail
(``nulls.chi_deficit_z``), and the nearer of the two to 0 is kept (6 frames of Gaussian noise:
25 "stuck" sensels in a million, now none). In photos the scene's changes, not noise, make
the variance, and chi-square says nothing of them: the MAD z alone.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..bands import PlaneView
from ..filters import WINDOW, pseudo_median_rows
from ..noise import log_value_var
from ..nulls import chi_deficit_z
from ..scale import BlockScale, block_mads
from ..stripes import each_stripe

# no log-variance scale below this fraction of sqrt(2/(n-1)), chi-square's spread of the log of
# a sample variance (raw darks: all of it); photos' block MADs include the scene's own spread
VAR_SCALE_FLOOR = 0.3


def chi_spread(n: int) -> float:
    """The spread of the log of a sample variance over n frames: sqrt(2/(n-1))."""
    return math.sqrt(2.0 / max(n - 1, 1))


def measure(v: PlaneView, out: np.ndarray, spacing: int, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """log variance minus its local median for the core rows, into ``out``; the blocks of its scale."""
    n = np.float32(v.n)
    p = (WINDOW // 2) * spacing
    a, b = max(v.top, v.y0 - p), min(v.bottom, v.y1 + p)
    lvar = np.empty((b - a, v.width), np.float32)

    def rows_lvar(r0: int, r1: int) -> None:
        lvar[r0 - a : r1 - a] = log_value_var(v.value_m2[r0 - v.top : r1 - v.top], n)

    each_stripe(pool, a, b, v.width, rows_lvar)

    def rows_var(r0: int, r1: int) -> None:  # z before its scale
        np.subtract(lvar[r0 - a : r1 - a], pseudo_median_rows(lvar, r0, r1, WINDOW, spacing, top=a, height=v.height),
                    out=out[r0 - v.y0 : r1 - v.y0])

    each_stripe(pool, v.y0, v.y1, v.width, rows_var)
    return block_mads(out, v.y0, v.y1, v.shape, pool=pool, top=v.y0)


def scale(mads: list[np.ndarray], shape: tuple[int, int], n: int, raw_darks: bool) -> BlockScale:
    floor = (1.0 if raw_darks else VAR_SCALE_FLOOR) * chi_spread(n)
    return BlockScale(np.concatenate(mads), shape, floor_abs=floor)


def deficit_z(deficit: np.ndarray, scale: np.ndarray, n: int, raw_darks: bool) -> np.ndarray:
    """The z of a log-variance deficit over its scale; in raw darks, the nearer to 0 of that
    and chi-square's over n - 1 degrees of freedom (see the module docstring). ``scale`` is
    overwritten with the result where it is float32."""
    z = np.divide(deficit, scale, out=scale if scale.dtype == np.float32 else None)
    if raw_darks:
        np.maximum(z, chi_deficit_z(deficit, max(n - 1, 1)), out=z)
    return z


def score(v: PlaneView, stuck: np.ndarray, var_scale: BlockScale, threshold: float,
          pool: ThreadPoolExecutor | None = None, raw_darks: bool = False) -> list[np.ndarray]:
    """The variance deficit z of the core rows into ``stuck`` (max(-z, 0)); the sensels past the threshold."""
    found: list[np.ndarray] = []

    def rows_stuck(r0: int, r1: int) -> None:  # z in the (contiguous) scale's rows
        z = deficit_z(stuck[r0 - v.y0 : r1 - v.y0], var_scale.rows(r0, r1), v.n, raw_darks)
        found.append(np.flatnonzero(z <= -threshold) + r0 * v.width)
        np.negative(z, out=z)
        np.maximum(z, 0, out=stuck[r0 - v.y0 : r1 - v.y0])

    each_stripe(pool, v.y0, v.y1, v.width, rows_stuck)
    return found
