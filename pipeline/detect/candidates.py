"""Candidates: the sensels past a configured threshold in some map, with what classification
needs of each. Whatever only a candidate needs (neighbour quantiles, the reference mean, the
ring-free residual) is computed at the candidates alone, from the statistics around each one,
by the same float32 arithmetic as the maps: the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ..stats.model import EXPOSURE_SUMS, FIRST_DAYS
from .bands import PlaneView
from .criteria import variance
from .criteria.counts import CountNull
from .filters import WINDOW, gather, gather_points, grid_points, pseudo_median_points, window_offsets
from .noise import QUANT_VAR, log_value_var
from .rings import with_rings_removed
from .scale import BlockScale

# the columns of ``Candidates.model``
MODEL_COLUMNS = ("res_mean", "res_m2", *EXPOSURE_SUMS)

# stuck also needs a variance below this x a low quantile (about the 10th percentile) of its
# neighbours': clipping hot pixels keep more than that, stuck ones none
STUCK_VAR_RATIO = 0.35
# noisy also needs a residual variance above this x a high quantile (about the 90th) of its neighbours'
NOISY_VAR_RATIO = 2.0
# ... and none of its 8 nearest same-colour neighbours above this x their median: a scene event
# (a moving highlight) lights up a neighbourhood, flicker one sensel
NOISY_ISOLATION = 4.0
# px: no flicker reports this close to the border of a demosaiced image or a JPEG, where
# demosaicing and JPEG's edge padding disturb the outer block; a mosaic's or a monochrome
# sensor's border sensels are read like any other
NOISY_EDGE_MARGIN = 8


# the log residual variance at given plane rows and columns (``criteria.flicker.lrv_points``)
LrvAt = Callable[[np.ndarray, np.ndarray], np.ndarray]
# an array that is there only in some cases (range counts, RGB, once classified): numpy's types
# cannot say when, so the checker takes these as they come
MaybeArray = Any


@dataclass
class Candidates:
    """One entry per candidate sensel and plane (arrays of equal length).

    Positions are the sensor's; ``plane`` tells planes apart (``Plane.key``). Levels and spreads
    are the sensel's and its neighbourhood's (``ref_*``); ``z_*`` are its scores in each map;
    ``rho`` its ring-free residual mean; ``below_all``/``above_all`` whether its variance lies
    clearly outside (nearly) all of its neighbours'. The count fields (``k_*`` counts, ``s_*``
    scores, ``m_*`` the null's means) are there when the stats have range counts; ``luma_amp``
    in RGB images; ``kind`` .. ``strength`` once classified (``classify.py``).
    """

    y: np.ndarray
    x: np.ndarray
    channel: np.ndarray
    color: np.ndarray
    plane: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    ref_mean: np.ndarray
    ref_std: np.ndarray
    black: np.ndarray
    rmean: np.ndarray
    rho: np.ndarray
    z_level: np.ndarray
    z_amp: np.ndarray
    z_var: np.ndarray
    z_noise: np.ndarray
    below_all: np.ndarray
    above_all: np.ndarray
    rstd: np.ndarray
    ref_rstd: np.ndarray
    inner: np.ndarray
    k_hi: MaybeArray = None
    k_lo: MaybeArray = None
    k_sum: MaybeArray = None
    s_hi: MaybeArray = None
    s_lo: MaybeArray = None
    s_sum: MaybeArray = None
    m_hi: MaybeArray = None
    m_lo: MaybeArray = None
    m_sum: MaybeArray = None
    k_strong_hi: MaybeArray = None  # of those frames, the ones beyond by 9 sigmas (``stats.model.STRONG_COUNTS``)
    k_strong_lo: MaybeArray = None
    luma_amp: MaybeArray = None
    rate: MaybeArray = None  # the exposure fit, where the stack has one: DN/s at ISO 100
    rate_se: MaybeArray = None
    offset: MaybeArray = None
    z_rate: MaybeArray = None  # the dark-current z (``criteria/dark_current.py``)
    model: MaybeArray = None  # its residual's mean and M2 and its model sums (``MODEL_COLUMNS``), to fit again
    first_days: MaybeArray = None  # (m, 4): the earliest capture days of its frames beyond the range (onset)
    beyond_logx: MaybeArray = None  # the sum of their log exposure factors (``stats.model.log_factor``)
    beyond_logg: MaybeArray = None  # ... and of their log gains
    z_exposure: MaybeArray = None  # how much longer than the stack's its frames beyond the range were (z)
    z_gain: MaybeArray = None  # how much higher than the stack's the gains of those frames were (z)
    line_share: MaybeArray = None  # the share of its residual's variance its exposure line explains
    shown: MaybeArray = None  # the frames its exposure line says it must stand out in (``exposure.frames_to_show``)
    beside_light: MaybeArray = None  # a steady bright partner hides it from the range test (``beside_steady_light``)
    onset: MaybeArray = None  # the capture day it appeared on (-1: from the start), where the stack has dates
    rate_floor: MaybeArray = None  # its rate is the least its clipped frames prove (``exposure.clipping_floor``)
    kind: MaybeArray = None
    score: MaybeArray = None
    by_counts: MaybeArray = None
    rank: MaybeArray = None
    sign: MaybeArray = None
    strength: MaybeArray = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def counted(self) -> bool:
        """Whether the range counts scored these candidates."""
        return self.k_hi is not None

    def take(self, index) -> Candidates:
        """The candidates at ``index`` (a mask or indices), every field alike."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)
                                if getattr(self, f.name) is not None})

    @classmethod
    def concat(cls, parts: list[Candidates]) -> Candidates:
        names = [f.name for f in fields(cls) if getattr(parts[0], f.name) is not None]
        return cls(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in names})


@dataclass(frozen=True)
class PlaneContext:
    """What gathering a plane's candidates needs besides the band: the plane's global parameters."""

    amp_scale: BlockScale
    var_scale: BlockScale
    quiet: float
    black: float
    null: CountNull | None
    spacing: int
    per_sensel: bool  # each defect one sensel (``Plan.per_sensel``): nothing demosaiced or JPEG-smeared
    raw_darks: bool


def gather_candidates(v: PlaneView, flat: np.ndarray, maps: dict[str, np.ndarray], lrv: LrvAt,
                      rings: tuple[np.ndarray, np.ndarray], ctx: PlaneContext,
                      rate_rings: tuple[np.ndarray, np.ndarray] | None = None) -> Candidates:
    """The candidates at plane-flat indices ``flat`` (sorted, unique, in the core rows), from the
    band's statistics, its maps (core rows: ``hot`` and ``dead`` scored, ``noisy`` scored but not
    yet clipped) and ``lrv``, the log residual variance at given plane rows and columns
    (``criteria.flicker.lrv_points``)."""
    f32 = np.float32
    q = f32(QUANT_VAR)
    n = f32(v.n)
    h, w = v.shape
    ys, xs = np.divmod(flat, w) if len(flat) else (flat, flat)
    ys, xs = ys.astype(flat.dtype), xs.astype(flat.dtype)
    core = (ys - v.y0, xs)
    here = (ys - v.top, xs)
    spacing = ctx.spacing
    z_noise_c = maps["noisy"][core]
    vy, vx = grid_points(ys, xs, (h, w), WINDOW, spacing)
    ref_lvar = pseudo_median_points(log_value_var(v.value_m2[vy - v.top, vx], n))
    lvar_c = log_value_var(v.value_m2[here], n)
    z_var_c = variance.deficit_z(lvar_c - ref_lvar, ctx.var_scale.points(ys, xs), v.n, ctx.raw_darks)
    ref_lrv = pseudo_median_points(lrv(*np.broadcast_arrays(vy, vx)))
    z_level_c = maps["hot"][core] - maps["dead"][core]  # one of them is 0: the signed z exactly

    # the variance kinds also need the sensel clearly outside the range of (nearly) all of its
    # neighbours, not just far from their median; flicker also needs quiet nearest neighbours
    offsets = window_offsets(WINDOW, spacing)
    k_lo = max(0, len(offsets) // 10)  # about the 10th percentile of the neighbourhood, and the 90th
    low = np.partition(log_value_var(gather(v.value_m2, ys, xs, offsets, v.top, h), n), k_lo, axis=1)[:, k_lo]
    below_all = lvar_c - low <= math.log(STUCK_VAR_RATIO)
    nb = gather_points(lrv, ys, xs, offsets, (h, w))
    high = np.partition(nb, len(offsets) - 1 - k_lo, axis=1)[:, len(offsets) - 1 - k_lo]
    lrv_c = lrv(ys, xs)
    above_all = (lrv_c - high >= math.log(NOISY_VAR_RATIO)) & (ref_lrv >= ctx.quiet)
    if not ctx.raw_darks:  # scene events light up a neighbourhood; no scene in a dark
        ring8 = gather_points(lrv, ys, xs, window_offsets(3, spacing), (h, w)).max(axis=1)
        above_all &= ring8 - ref_lrv <= math.log(NOISY_ISOLATION)
    inner = np.ones(len(ys), bool)
    if not ctx.per_sensel and NOISY_EDGE_MARGIN:  # demosaic and JPEG edge padding disturb the outer block
        e = NOISY_EDGE_MARGIN
        inner = (ys >= e) & (ys < h - e) & (xs >= e) & (xs < w - e)
        above_all &= inner

    mu_c = v.value_mean[here].astype(f32)
    ref_mu = np.median(gather(v.value_mean, ys, xs, offsets, v.top, h), axis=1).astype(f32)
    m = len(ys)
    rmean_c = v.res_mean[here].astype(f32)
    rho_c = with_rings_removed(rmean_c, ys, xs, w, rings)
    counts = {} if ctx.null is None else ctx.null.points(v, ys, xs)
    if v.fit is not None and "dark_current" in maps:
        fit = v.fit
        rate = np.nan_to_num(fit.rate[here], nan=0.0)
        if rate_rings is not None:
            rate = with_rings_removed(rate, ys, xs, w, rate_rings)
        counts.update(rate=rate, rate_se=fit.rate_se[here], offset=fit.offset[here],
                      z_rate=np.maximum(maps["dark_current"][core], 0),
                      model=np.stack([v.res_mean[here], v.res_m2[here]]
                                     + [v.extra[k][here].astype(np.float64) for k in EXPOSURE_SUMS], axis=1))
    for name in ("beyond_logx", "beyond_logg"):
        if name in v.extra:
            counts[name] = v.extra[name][here].astype(np.float64)
    if FIRST_DAYS[0] in v.extra:
        counts["first_days"] = np.stack([v.extra[k][here] for k in FIRST_DAYS], axis=1).astype(np.int64)
    iy, ix = v.to_image(ys, xs)
    pl = v.plane
    return Candidates(
        y=iy.astype(np.int64), x=ix.astype(np.int64), channel=np.full(m, pl.channel, np.int64),
        color=np.full(m, pl.color, dtype=object), plane=np.full(m, pl.key, np.int64), mean=mu_c,
        std=np.sqrt(np.maximum(v.value_m2[here], 0) / v.n).astype(f32), ref_mean=ref_mu,
        ref_std=np.sqrt(np.maximum(np.exp(ref_lvar) - q, 0)), black=np.full(m, ctx.black, np.float32),
        rmean=rmean_c, rho=rho_c, z_level=z_level_c, z_amp=np.abs(rho_c) / ctx.amp_scale.at(ys, xs),
        z_var=z_var_c, z_noise=z_noise_c, below_all=below_all, above_all=above_all,
        rstd=np.sqrt(np.maximum(np.exp(lrv_c) - q, 0)), ref_rstd=np.sqrt(np.maximum(np.exp(ref_lrv) - q, 0)),
        inner=inner, **counts)
