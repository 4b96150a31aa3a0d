"""The exposure fit of every sensel, from its exact sums and the frames' table.

Per sensel, over the frames in the fit (``model.py``: not clipped, with an exposure), the
residual r (the sensel minus the mean of its 4 same-colour neighbours) is regressed on the
exposure factor x = exposure x ISO/100:  r = offset + rate * x + noise. The slope is the
sensel's dark current above its neighbours' (DN per second at ISO 100), the intercept its
constant offset (a warm or cold sensel), and the scatter about the line its noise with the
exposure taken out: a dark-current hot pixel's residual grows with exposure, which is not
flicker.

The sums per frame (n, sum x, sum x^2) come from the frames' table (the manifest); per sensel
only the frames it clipped in differ from it, and their count, sum of x and of x^2 are kept
per sensel (``model.EXPOSURE_SUMS``): a hot sensel clips in its longest exposures, any sensel
under a bright sky in short ones, and either way the fit holds exactly the frames it should
(x^2 of the clipped frames to 2^-7 s, ``model.coarse_square``).

Pure numpy, element-wise over any array shape (a band of a plane, a whole sensor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .model import COARSE_SHIFT, EXPOSURE_UNIT, NO_FACTOR, log_factor
from .moments import RESIDUAL_SCALE


@dataclass(frozen=True)
class FrameTable:
    """The exposure factors of the frames the statistics hold (``NO_FACTOR`` for a frame left
    out of the fit); with ``physical`` False they are a stand-in (the frames' mean values), so
    the fitted rate has no unit. ``subtracted``: the frames the camera dark-subtracted
    (``dark_subtraction``), whose dark signal is zero: the fit takes them at factor 0.

    The per-sensel sums were taken at the recorded factors: a sensel's cross term then holds
    x * r of a subtracted frame, where r is its noise (its excess is gone), and a sensel that
    clipped in one (a street light in a night frame) has its x among its clipped frames'. Both
    are small against the sums of the frames that show dark current."""

    factors: np.ndarray
    physical: bool = True
    subtracted: np.ndarray | None = None
    isos: np.ndarray | None = None  # each frame's ISO (NaN where unknown)

    @classmethod
    def of(cls, factors, physical: bool = True, sketches=None, candidates: np.ndarray | None = None,
           isos=None) -> FrameTable:
        """The table of these factors; with each frame's sketch (the manifest's, None where not
        kept) and the stack's possible hot set (``dark_subtraction.hot_candidates``), the
        dark-subtracted frames are found too."""
        factors = np.asarray(list(factors), np.int64)
        subtracted = None
        if sketches is not None and candidates is not None:
            from .dark_subtraction import dark_subtracted

            subtracted = dark_subtracted(factors, list(sketches), candidates)
        iso = None if isos is None else np.array([np.nan if i is None else float(i) for i in isos])
        return cls(factors, physical, subtracted, iso)

    @property
    def fitted(self) -> np.ndarray:
        """Each frame's factor in the fit: 0 for a dark-subtracted frame, ``NO_FACTOR`` if unknown."""
        if self.subtracted is None or not self.subtracted.any():
            return self.factors
        return np.where(self.subtracted & (self.factors != NO_FACTOR), 0, self.factors)

    def log_factors(self) -> np.ndarray:
        """Each frame's log exposure factor as the scan summed it (``model.log_factor``; a frame
        without one at the median of the others)."""
        known = np.sort(self.factors[self.factors > 0])
        fill = int(log_factor(known[len(known) // 2 : len(known) // 2 + 1])[0]) if len(known) else 0
        return log_factor(self.factors, fill)

    @property
    def gains_known(self) -> bool:
        """Whether every frame has its gain (ISO), physically: then the log gains say which frames
        were the stack's high gains (an unknown one was summed as ISO 100)."""
        return self.isos is not None and self.physical and bool(np.all(np.nan_to_num(self.isos, nan=0.0) > 0))

    def log_gains(self) -> np.ndarray:
        """Each frame's log gain (ISO/100) as the scan summed it (``model.log_factor``; 0 where
        unknown, or where the factors are not physical)."""
        if self.isos is None or not self.physical:
            return np.zeros(len(self.factors), np.int32)
        iso = np.nan_to_num(self.isos, nan=0.0)
        return log_factor(iso / 100.0, 0)

    @property
    def known(self) -> np.ndarray:
        fitted = self.fitted
        return np.sort(fitted[fitted != NO_FACTOR])[::-1].astype(np.float64)

    @property
    def unknown(self) -> int:
        return int(np.count_nonzero(self.factors == NO_FACTOR))

    @property
    def n_subtracted(self) -> int:
        return 0 if self.subtracted is None else int(self.subtracted.sum())


def fit_bands(stats, table: FrameTable, band: int):
    """The exposure fit of whole-sensor statistics (``PixelStats`` with the model's sums), a band
    of ``band`` rows at a time: (rows, ExposureFit) pairs. A whole-sensor fit at once would hold
    several float64 temporaries of the sensor's size."""
    from .model import EXPOSURE_SUMS

    x = stats.extra
    for y in range(0, stats.pixel_shape[0], band):
        rows = slice(y, y + band)
        yield rows, fit_exposure(stats.n, stats.mean[1, rows], stats.m2[1, rows],
                                 {k: x[k][rows] for k in EXPOSURE_SUMS}, table)


def _known(fitted: np.ndarray) -> np.ndarray:
    return np.sort(fitted[fitted != NO_FACTOR])[::-1].astype(np.float64)


def frames_carrying(table: FrameTable, within: np.ndarray) -> float:
    """How many frames carry a line through zero fitted over the frames ``within``: (sum x)^2 /
    sum x^2 of their exposure factors (n for n equal ones, ~1 where one frame's exposure is far
    the longest). Such a line's t is then one frame's excess over the noise, and one frame's
    excess in a photo is as often the scene's (a highlight, a thin line) as a defect's."""
    x = _known(np.asarray(table.fitted)[np.asarray(within, bool)])
    sxx = float((x * x).sum())
    return float(x.sum()) ** 2 / sxx if sxx > 0 else 0.0


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
    # where the scatter about the line was measured (a fit since a day: False where its line takes
    # all of the sums' scatter, and the scatter about the mean, an upper bound, stands in); None: everywhere
    measured: np.ndarray | None = None

    @property
    def t(self) -> np.ndarray:
        """The rate's t statistic: how many standard errors it stands from zero."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.rate / self.rate_se


def fit_exposure(n: int, res_mean: np.ndarray, res_m2: np.ndarray, sums: Mapping[str, np.ndarray],
                 table: FrameTable, within: np.ndarray | None = None) -> ExposureFit:
    """The exposure fit from a sensel's moments of the residual (``res_mean``, ``res_m2`` over all
    ``n`` frames) and its model sums (``sums``: ``model.EXPOSURE_SUMS``, arrays of its shape).

    ``within`` (a mask of the table's frames), if given, fits the dark current over those frames
    only: a defect that appeared during the collection (``_fit_since``)."""
    if within is not None:
        return _fit_since(n, res_mean, res_m2, sums, table, np.asarray(within, bool))
    s = float(RESIDUAL_SCALE)
    known = table.known
    xr, excluded, excluded_sum = sums["xr"], sums["excluded"], sums["excluded_sum"]
    holes, holes_sum = sums["holes"], sums["holes_sum"]
    frames = n
    n_fit = (frames - excluded.astype(np.int64) - holes.astype(np.int64)).astype(np.float64)
    sx = float(known.sum()) - sums["excluded_x"]
    sxx = float((known * known).sum()) - sums["excluded_xx"] * float(1 << (2 * COARSE_SHIFT))
    sum_r = res_mean * (n * s) - excluded_sum - holes_sum  # sums of 4r over the frames in the fit
    sum_rr = (res_m2 + n * res_mean * res_mean) * (s * s)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the excluded frames' sum of squares is not kept: a clipped sensel's residual is near
        # constant there, so (their sum)^2 / their count stands in for it
        sum_rr = sum_rr - np.where(excluded > 0, excluded_sum.astype(np.float64) ** 2 / excluded, 0.0)
        sum_rr = sum_rr - np.where(holes > 0, holes_sum.astype(np.float64) ** 2 / holes, 0.0)
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


def _fit_since(n: int, res_mean: np.ndarray, res_m2: np.ndarray, sums: Mapping[str, np.ndarray],
               table: FrameTable, within: np.ndarray) -> ExposureFit:
    """The fit of a defect that appeared during the collection: r = rate * x in the frames since
    (``within``), and no excess before (dark current that a damaged site starts to generate).

    The sums of r are the whole stack's, and x * r is not kept apart for the frames since. Each
    gives the rate: sum r = rate * Sx_since, with the noise of every frame, and sum x r =
    rate * Sxx_since, with the noise of every frame weighted by its x. A collection's long
    exposures before the onset make the second noisy where the first is not (and the reverse
    where the frames since are long), so the two are combined by their precision. Over every
    frame, with no offset, they are the least-squares fit. The frames the sensel clipped in are
    taken to be among those since (it clipped because it was hot)."""
    s = float(RESIDUAL_SCALE)
    fitted = table.fitted
    every, since = _known(fitted), _known(fitted[within])
    xr, excluded, excluded_sum = sums["xr"], sums["excluded"], sums["excluded_sum"]
    holes, holes_sum = sums["holes"], sums["holes_sum"]
    n_fit = (n - excluded.astype(np.int64) - holes.astype(np.int64)).astype(np.float64)
    ex_x = sums["excluded_x"]
    ex_xx = sums["excluded_xx"] * float(1 << (2 * COARSE_SHIFT))
    sx = float(since.sum()) - ex_x
    sxx = float((since * since).sum()) - ex_xx
    sxx_all = float((every * every).sum()) - ex_xx
    sum_r = res_mean * (n * s) - excluded_sum - holes_sum
    sum_rr = (res_m2 + n * res_mean * res_mean) * (s * s)
    with np.errstate(divide="ignore", invalid="ignore"):
        sum_rr = sum_rr - np.where(excluded > 0, excluded_sum.astype(np.float64) ** 2 / excluded, 0.0)
        sum_rr = sum_rr - np.where(holes > 0, holes_sum.astype(np.float64) ** 2 / holes, 0.0)
        by_sum, by_cross = sx * sx / n_fit, sxx * sxx / sxx_all  # each one's precision, per noise variance
        precision = by_sum + by_cross
        slope = (sx * sum_r / n_fit + sxx * xr / sxx_all) / precision
        # the scatter about the line, with the line's own sum of squares (rate^2 Sxx_since) taken
        # out; where the fit's rate overshoots so that nothing is left, the scatter about the
        # mean stands in (it holds the rate's own spread: an upper bound)
        line = sum_rr - slope * slope * sxx
        noise = np.where(line > 0, line, np.maximum(sum_rr - sum_r * sum_r / n_fit, 0)) / np.maximum(n_fit - 1, 1)
        usable = (n_fit >= 3) & (sx > 0) & (sxx > 0) & (precision > 0)
        slope_se = np.sqrt(noise / precision)
    unit = (1.0 / EXPOSURE_UNIT) if table.physical else 1.0
    nan = np.float64(np.nan)
    return ExposureFit(
        rate=np.where(usable, slope * unit / s, nan), rate_se=np.where(usable, slope_se * unit / s, nan),
        offset=np.where(usable, 0.0, nan), noise_var=np.where(usable, noise / (s * s), nan),
        frames=np.count_nonzero(within) - np.asarray(excluded, np.float64), measured=np.asarray(line > 0))
