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
from ..stats.model import EXPOSURE_SUMS
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


def candidate_fit(model: np.ndarray, n: int, table: FrameTable, within: np.ndarray | None = None) -> ExposureFit:
    """The exposure fit of candidates from their model rows (``Candidates.model``: the residual's
    mean and M2 over the n frames, then ``EXPOSURE_SUMS``), over every frame or ``within``."""
    sums = {k: model[:, 2 + j] for j, k in enumerate(EXPOSURE_SUMS)}
    return fit_exposure(n, model[:, 0], model[:, 1], sums, table, within=within)


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
