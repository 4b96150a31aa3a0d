"""The exposure fit of every sensel, from its exact sums and the frames' table.

Per sensel, over the frames in the fit (``model.py``: not clipped, with an exposure), the
residual r (the sensel minus the mean of its 4 same-colour neighbours) is regressed on the
exposure factor x = exposure x ISO/100:  r = offset + rate * x + noise. The slope is the
sensel's dark current above its neighbours' (DN per second at ISO 100), the intercept its
constant offset (a warm or cold sensel), and the scatter about the line its noise with the
exposure taken out: a dark-current hot pixel's residual grows with exposure, which is not
flicker.

The sums per frame (n, sum x, sum x^2) come from the frames' table (the manifest); per sensel
only the frames it clipped in differ from it. Which frames those were is not kept (that would
cost a sum per sensel more): a sensel clips in its longest exposures (dark current grows with
x), so they are taken as its ``excluded`` largest factors. That is exact for darks and for
hot pixels, and only approximate where a scene clipped a sensel in a shorter frame.

Pure numpy, element-wise over any array shape (a band of a plane, a whole sensor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import EXPOSURE_UNIT, NO_FACTOR
from .moments import RESIDUAL_SCALE


@dataclass(frozen=True)
class FrameTable:
    """The exposure factors of the frames the statistics hold (``NO_FACTOR`` for a frame left
    out of the fit); with ``physical`` False they are a stand-in (the frames' mean values), so
    the fitted rate has no unit."""

    factors: np.ndarray
    physical: bool = True

    @classmethod
    def of(cls, factors, physical: bool = True) -> FrameTable:
        return cls(np.asarray(list(factors), np.int64), physical)

    @property
    def known(self) -> np.ndarray:
        return np.sort(self.factors[self.factors != NO_FACTOR])[::-1].astype(np.float64)

    @property
    def unknown(self) -> int:
        return int(np.count_nonzero(self.factors == NO_FACTOR))


@dataclass(frozen=True)
class ExposureFit:
    """The fit of every sensel (arrays of the sensels' shape, float64; NaN where there are too
    few frames or no spread of exposure). ``rate`` in DN/s at ISO 100 (in DN per step of the
    stand-in factor when the table is not physical), ``offset`` in DN, ``noise_var`` the
    residual's variance about the line (DN^2), ``frames`` the frames in the fit."""

    rate: np.ndarray
    rate_se: np.ndarray
    offset: np.ndarray
    noise_var: np.ndarray
    frames: np.ndarray

    @property
    def t(self) -> np.ndarray:
        """The rate's t statistic: how many standard errors it stands from zero."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.rate / self.rate_se


def fit_exposure(n: int, res_mean: np.ndarray, res_m2: np.ndarray, xr: np.ndarray, excluded: np.ndarray,
                 excluded_sum: np.ndarray, table: FrameTable) -> ExposureFit:
    """The exposure fit from a sensel's moments of the residual (``res_mean``, ``res_m2`` over all
    ``n`` frames) and its model sums (``model.EXPOSURE_SUMS``)."""
    s = float(RESIDUAL_SCALE)
    known = table.known
    cum1 = np.concatenate([[0.0], np.cumsum(known)])  # the c largest factors' sum, by c
    cum2 = np.concatenate([[0.0], np.cumsum(known * known)])
    clipped = np.clip(excluded.astype(np.int64) - table.unknown, 0, len(known))
    n_fit = (n - excluded.astype(np.int64)).astype(np.float64)
    sx = cum1[-1] - cum1[clipped]
    sxx = cum2[-1] - cum2[clipped]
    sum_r = res_mean * (n * s) - excluded_sum  # sums of 4r over the frames in the fit
    sum_rr = (res_m2 + n * res_mean * res_mean) * (s * s)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the excluded frames' sum of squares is not kept: a clipped sensel's residual is near
        # constant there, so (their sum)^2 / their count stands in for it
        sum_rr = sum_rr - np.where(excluded > 0, excluded_sum.astype(np.float64) ** 2 / excluded, 0.0)
        x_var = sxx - sx * sx / n_fit
        xr_cov = xr - sx * sum_r / n_fit
        r_var = sum_rr - sum_r * sum_r / n_fit
        slope = xr_cov / x_var
        usable = (n_fit >= 3) & (x_var > 0)
        noise = np.maximum(r_var - slope * xr_cov, 0) / np.maximum(n_fit - 2, 1)
        slope_se = np.sqrt(noise / x_var)
        intercept = (sum_r - slope * sx) / n_fit
    unit = (1.0 / EXPOSURE_UNIT) if table.physical else 1.0
    nan = np.float64(np.nan)
    return ExposureFit(
        rate=np.where(usable, slope * unit / s, nan), rate_se=np.where(usable, slope_se * unit / s, nan),
        offset=np.where(usable, intercept / s, nan), noise_var=np.where(usable, noise / (s * s), nan),
        frames=n_fit)
