"""The exposure fit of a band of a plane, in float32 rows, for the criteria that need it.

Where the stack has an exposure model (``stats.model``), each sensel's residual was regressed
on the frames' exposure factor (``stats.fit``). Detection reads three things of it: the
residual's variance with the exposure taken out (the level's standard error and the flicker
test use it: a dark-current hot pixel's residual grows with exposure, which is neither noise
nor flicker), the rate's t statistic (the dark-current criterion), and the rate and offset
themselves (defects.csv, the classes). Computed in row stripes, kept in float32: 16 bytes per
value of a band's plane.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from ..stats.fit import ExposureFit, FrameTable, fit_exposure
from ..stats.model import EXPOSURE_SUMS, EXPOSURE_UNIT
from ..stats.moments import RESIDUAL_SCALE
from .bands import PlaneView
from .stripes import each_stripe


@dataclass(frozen=True)
class FitRows:
    """The fit of rows ``top`` .. of a plane (NaN where a sensel has too few frames in it)."""

    noise_var: np.ndarray  # the residual's variance about the line, DN^2
    rate: np.ndarray  # DN/s at ISO 100 (per step of the stand-in factor when not physical)
    rate_se: np.ndarray
    offset: np.ndarray  # DN at zero exposure: a warm (or cold) sensel's constant part
    physical: bool


def with_fit(v: PlaneView, table: FrameTable | None, pool: ThreadPoolExecutor | None = None) -> PlaneView:
    """``v`` with its exposure fit (unchanged where the stack has no exposure model)."""
    if table is None or not all(k in v.extra for k in EXPOSURE_SUMS):
        return v
    rows = v.bottom - v.top
    out = [np.empty((rows, v.width), np.float32) for _ in range(4)]
    x = v.extra

    def stripe(r0: int, r1: int) -> None:
        s = slice(r0 - v.top, r1 - v.top)
        fit = fit_exposure(v.n, v.res_mean[s], v.res_m2[s], {k: x[k][s] for k in EXPOSURE_SUMS}, table)
        for o, a in zip(out, (fit.noise_var, fit.rate, fit.rate_se, fit.offset)):
            o[s] = a

    each_stripe(pool, v.top, v.bottom, v.width, stripe)
    noise_var, rate, rate_se, offset = out
    return replace(v, fit=FitRows(noise_var, rate, rate_se, offset, table.physical))


def residual_variance(v: PlaneView, r0: int, r1: int, out: np.ndarray) -> np.ndarray:
    """The residual's variance of plane rows r0:r1 into ``out`` (float32): with the exposure taken
    out where the stack has a fit (and the sensel enough frames in it), else M2/n."""
    from .noise import residual_var

    residual_var(v.res_m2[r0 - v.top : r1 - v.top], np.float32(v.n), out)
    if v.fit is not None:
        fitted = v.fit.noise_var[r0 - v.top : r1 - v.top]
        np.copyto(out, fitted, where=np.isfinite(fitted))
    return out


def residual_variance_at(v: PlaneView, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``residual_variance`` at single sensels (plane rows and columns, any shape): the same steps."""
    from .noise import residual_var

    out = residual_var(v.res_m2[ys - v.top, xs], np.float32(v.n), np.empty(np.shape(ys), np.float32))
    if v.fit is not None:
        fitted = v.fit.noise_var[ys - v.top, xs]
        np.copyto(out, fitted, where=np.isfinite(fitted))
    return out


def beyond_exposure_z(beyond_logx: np.ndarray, beyond_logg: np.ndarray, beyond: np.ndarray,
                      table: FrameTable) -> np.ndarray:
    """How much longer a sensel's frames beyond its neighbours were than their gains
    alone make likely: the z of their mean log exposure time about its regression on the log
    gain over the stack's frames, against as many frames drawn at random (without replacement).

    A hot sensel stands out in the long exposures: its frames are long for their gain (z of
    several). A telegraph sensel's step is charge, amplified with the gain: it stands out at
    high gains whatever the time (z near 0), though in a camera's program a high gain comes with
    a long time, which is why the time is taken about the gain and not alone. With one gain,
    it is the exposure factor itself."""
    lx = table.log_factors().astype(np.float64)
    lg = table.log_gains().astype(np.float64)
    lt = lx - lg
    n = len(lt)
    k = np.asarray(beyond, np.float64)
    if n < 3:
        return np.zeros(len(k))
    slope = float(np.cov(lt, lg, bias=True)[0, 1] / lg.var()) if lg.var() > 0 else 0.0
    intercept = float(lt.mean() - slope * lg.mean())
    spread = float(np.var(lt - intercept - slope * lg))
    if spread <= 0:
        return np.zeros(len(k))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (beyond_logx - beyond_logg - k * intercept - slope * beyond_logg) / k
        z = mean / np.sqrt(spread * (n - k) / (k * (n - 1)))
    return np.where((k > 0) & (k < n) & np.isfinite(z), z, 0.0)


def beyond_gain_z(beyond_logg: np.ndarray, beyond: np.ndarray, table: FrameTable) -> np.ndarray:
    """How much lower than the stack's the gains of a sensel's frames beyond its neighbours were:
    the z of their mean log gain against as many frames drawn at random (without replacement);
    negative where they were the low gains. 0 where the stack has one gain, or no gains known.

    A defect shows where it stands out of the frame's noise. A telegraph step is charge, amplified
    with the gain as the noise is (read noise) or faster (a scene's shot noise grows with the root
    of the gain): it shows at high gains rather than low. So does dark current, which grows with
    the gain and the time. A fixed offset in DN (a warm sensel, an offset the readout adds after
    the amplifier) does not grow: the noise buries it at high gains, and it shows in the
    low-gain frames. On the benchmark collections (ISO 100-6400) warm sensels had -3.2 to -6.8,
    telegraph sensels -1.9 to +7.1 (a many-defect sensor's weak ones: 5 % under -1.4, the least
    -3.7), dark-current ones -1.1 to +7.2."""
    lg = table.log_gains().astype(np.float64)
    n = len(lg)
    k = np.asarray(beyond, np.float64)
    spread = float(lg.var())
    if n < 3 or spread <= 0:
        return np.zeros(len(k))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.asarray(beyond_logg, np.float64) / k - float(lg.mean())) / np.sqrt(spread * (n - k) / (k * (n - 1)))
    return np.where((k > 0) & (k < n) & np.isfinite(z), z, 0.0)


# a frame must show a sensel's dark current where its line predicts this many of its
# neighbours' residual sigmas (``frames_showing``)
SHOWN_SIGMAS = 6.0
# a dark-current sensel must stand beyond its neighbours in at least this share of the
# frames its line says must show it (``frames_to_show``: by SHOWN_SIGMAS of its neighbours'
# sigmas), where that is SHOWN_FRAMES or more (``classify``). A scene's excess in a
# dark-subtracted long frame, whose cross term the fit keeps at its recorded exposure, draws a line
# of any t (z 61-137 on a rendered collection) that the frames it predicts do not follow (beyond in
# 1-2 of 3-11). A same-colour partner of at least half the rate that does show hides a hot sensel
# from the range test (it is not above all 4 neighbours): that one is exempt (``brighter_partner``)
SHOWN_FRAMES = 3
SHOWN_SHARE = 0.5
# a same-colour partner with at least this share of a sensel's rate is as bright in its frames
PARTNER_SHARE = 0.5
# a candidate's clipped frames bound its dark rate from below where it clipped in this many
# (``clipping_floor``): one clipped frame may be a scene's highlight
CLIPPED_FRAMES = 3
# ... and replaces the fitted rate where that is under this share of the bound: the bound is the
# clipped residual's, whose noise can put it a few percent over the true rate (a weak population
# sensel of 37.3 DN/s: fit 37.7, bound 38.4), so a fit near it stands
FLOOR_SHARE = 0.5


def candidate_fit(model: np.ndarray, n: int, table: FrameTable, within: np.ndarray | None = None) -> ExposureFit:
    """The exposure fit of candidates from their model rows (``Candidates.model``: the residual's
    mean and M2 over the n frames, then ``EXPOSURE_SUMS``), over every frame or ``within``."""
    return fit_exposure(n, model[:, 0], model[:, 1], model_sums(model), table, within=within)


def model_sums(model: np.ndarray) -> dict[str, np.ndarray]:
    """The ``EXPOSURE_SUMS`` columns of candidates' model rows (after the residual's mean and M2)."""
    return {k: model[:, 2 + j] for j, k in enumerate(EXPOSURE_SUMS)}


def clipping_floor(model: np.ndarray, table: FrameTable, darks: bool = False) -> np.ndarray:
    """The least dark-current rate (DN/s at ISO 100) each candidate's clipped frames prove, from
    its model row (``Candidates.model``); NaN where they prove none.

    The fit leaves out the frames a sensel clipped at the white level in (``stats.model``). A hot
    sensel that clips in nearly every frame is fitted from its few short ones, and in darks some
    of those are dark-subtracted: the fit can come out near 0 or negative for a sensel of
    thousands of DN/s (the many-defect darks: -131 DN/s for one of 2,995). Each clipped frame
    says rate x its factor >= its residual there, so over them rate >= their mean residual over
    their mean factor (a weak bound: the mean factor, not the least, which is not kept).

    Only where the sensel clipped in at least ``CLIPPED_FRAMES`` frames and every frame's factor is
    known (an unknown one counts as clipped at 0); in photos (not ``darks``) only where those frames'
    mean factor is over the stack's too: dark current clips in the long exposures, a scene's
    highlight in any (in photos, the short ones). In darks nothing but the sensel's own signal
    clips, and a hot sensel that appeared clips in the frames since, whatever their mean."""
    out = np.full(len(model), np.nan)
    if not table.physical or table.unknown or not len(model):
        return out
    sums = model_sums(model)
    clipped, clipped_sum, clipped_x = (sums[k].astype(np.float64) for k in ("excluded", "excluded_sum", "excluded_x"))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_x = clipped_x / clipped
        floor = (clipped_sum / clipped / RESIDUAL_SCALE) / (mean_x * EXPOSURE_UNIT)
    proves = (clipped >= CLIPPED_FRAMES) & (darks | (mean_x > float(np.mean(table.factors)))) & (floor > 0)
    return np.where(proves & np.isfinite(floor), floor, out)


def line_share(fit: ExposureFit, model: np.ndarray, n: int) -> np.ndarray:
    """The share of each candidate's residual variance (over all n frames) that its exposure line
    (``fit``, ``candidate_fit`` over every frame) explains, from its model row: 1 - the variance
    about the line / the variance. Dark current grows with exposure, and its line takes nearly
    all of it (0.95-1.0 on the benchmark collections, 0.6-0.96 for one that appeared during
    them); a telegraph or Gaussian flicker jumps whatever the exposure, and its line takes little
    (0-0.4). 0 where there is no fit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = 1.0 - fit.noise_var / (model[:, 1] / n)
    return np.where(np.isfinite(share), share, 0.0)


def frames_showing(rate: np.ndarray, offset: np.ndarray, sigma: np.ndarray, excluded: np.ndarray,
                   table: FrameTable, since: np.ndarray | None = None, days: np.ndarray | None = None) -> np.ndarray:
    """How many frames each sensel's exposure line (``rate``, DN/s at ISO 100, and ``offset``, DN)
    says it must stand out in: those where it predicts at least ``SHOWN_SIGMAS`` x ``sigma`` (its
    neighbours' residual spread over every frame, which the scene's busiest frames dominate: a
    quiet frame's noise is less), less the frames it was left out of the fit in (``excluded``:
    clipped, where lit neighbours may clip with it). A dark-subtracted frame shows nothing; a
    sensel that appeared on day ``since`` (-1: from the start; ``days``: each frame's capture
    day) shows in the frames since only."""
    fitted = np.where(table.fitted > 0, table.fitted, 0).astype(np.float64) * EXPOSURE_UNIT
    with np.errstate(divide="ignore", invalid="ignore"):
        need = (SHOWN_SIGMAS * np.asarray(sigma, np.float64) - np.asarray(offset, np.float64)) / np.asarray(rate)
    need = np.nan_to_num(np.where(np.asarray(rate) > 0, need, np.inf), nan=np.inf)
    shown = np.zeros(len(need), np.int64)
    groups = np.full(len(need), -1, np.int64) if since is None or days is None else np.asarray(since, np.int64)
    for day in np.unique(groups).tolist():
        take = np.flatnonzero(groups == day)
        x = np.sort(fitted if day < 0 else fitted[np.asarray(days) >= day])
        shown[take] = len(x) - np.searchsorted(x, need[take], side="left")
    return np.maximum(shown - np.asarray(excluded, np.int64), 0)


def brighter_partner(y: np.ndarray, x: np.ndarray, plane: np.ndarray, value: np.ndarray, source: np.ndarray,
                     radius: int, share: float = PARTNER_SHARE) -> np.ndarray:
    """Whether each candidate has among its 8 nearest same-colour sensels (``radius`` px apart) a
    ``source`` one whose ``value`` is at least ``share`` of its own: a dark-current candidate of at
    least ``PARTNER_SHARE`` of its rate, or a bright level defect brighter on average (a stuck or
    warm sensel). In the frames its line says must show it, that partner is as bright or brighter:
    it stands above all 4 neighbours in none of them (the range counts' test), however strong its
    dark current."""
    out = np.zeros(len(y), bool)
    src = np.flatnonzero(source)
    if not len(src) or not len(y):
        return out
    rows, span = int(y.max()) + 2 * radius + 1, int(x.max()) + 2 * radius + 1

    def key(yy: np.ndarray, xx: np.ndarray, pp: np.ndarray) -> np.ndarray:  # one int64 per (plane, y, x)
        return (pp.astype(np.int64) * rows + yy + radius) * span + xx + radius

    keys = key(y[src], x[src], plane[src])
    order = np.argsort(keys)
    sorted_keys, sorted_value = keys[order], value[src][order]
    for dy in (-radius, 0, radius):
        for dx in (-radius, 0, radius):
            if not (dy or dx):
                continue
            k = key(y + dy, x + dx, plane)
            at = np.minimum(np.searchsorted(sorted_keys, k), len(sorted_keys) - 1)
            out |= (sorted_keys[at] == k) & (sorted_value[at] >= share * value)
    return out


def beside_steady_light(cand, level: float, radius: int, n: int) -> np.ndarray:
    """Whether each candidate has among its 8 nearest same-colour sensels (``radius`` px apart) a
    bright level defect (z ``level`` or more, beyond its own neighbours in ``SHOWN_SHARE`` of the
    ``n`` frames) brighter on average (``brighter_partner``): a stuck sensel beside a hot one is the
    maximum of its 4 neighbours in every frame, so the hot one is beyond them in none (on a rendered
    collection a 21 DN/s hot sensel, dark-current z 9.8, beside one stuck at the white level)."""
    steady = (cand.z_level >= level) & (cand.k_hi >= SHOWN_SHARE * n)
    return brighter_partner(cand.y, cand.x, cand.plane, cand.mean, steady, radius, 1.0)


def frames_to_show(cand, table: FrameTable, threshold: float, radius: int,
                   days: np.ndarray | None = None, level: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """The frames each counted candidate's exposure line says must show it (``frames_showing``;
    those since its onset where it has one, ``days`` each frame's capture day), and whether a steady
    bright partner hides it from the range test in all of them (``beside_steady_light``). Where a
    partner hides it the frames are 0: that one, or a dark-current partner of at least
    ``PARTNER_SHARE`` of its rate that does show its own (beyond its neighbours in at least
    ``SHOWN_SHARE`` of them, at a dark-current z of ``threshold``; ``brighter_partner``).
    ``radius``: px to the ring, 0 where a defect is no one sensel (none is hidden)."""
    excluded = cand.model[:, 2 + EXPOSURE_SUMS.index("excluded")]
    shown = frames_showing(cand.rate, cand.offset, cand.ref_rstd, excluded, table, cand.onset, days)
    steady = np.zeros(len(shown), bool)
    if radius and cand.z_rate is not None:
        rising = (cand.z_rate >= threshold) & (cand.k_hi >= SHOWN_SHARE * shown)
        steady = beside_steady_light(cand, level, radius, len(table.fitted))
        shown[steady | brighter_partner(cand.y, cand.x, cand.plane, cand.rate, rising, radius)] = 0
    return shown, steady
