"""Chi-square for few frames: a sample variance's tail probability under Gaussian noise, as a z.

The criteria read their statistics as normal z's against thresholds of about 7 (p ~ 1e-12).
Over 40 frames that is nearly right; over 6 the log of a sample variance has chi-square's long
lower tail (5 degrees of freedom: a variance 1/400 of its neighbours' in one sensel of a
million, read as z -8.8): in a sensor of millions of sensels, dozens of false "stuck" ones in
6 plain darks. ``chi_deficit_z`` gives the stuck criterion the z of the same tail probability;
``chi2_median_ratio`` unbiases a median of sample variances (the dark-current criterion's floor).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# the most extreme z returned: the normal tail underflows a float64 beyond about 38
Z_LIMIT = 37.0
# above this many degrees of freedom the log of a sample variance is Gaussian enough
CHI_EXACT_MAX_DOF = 256


def chi_deficit_z(deficit: np.ndarray, dof: int) -> np.ndarray:
    """The normal z (<= 0) of a sample variance ``exp(deficit)`` times its neighbours' typical
    one, over ``dof`` degrees of freedom, from chi-square's lower tail: the variance is that of
    Gaussian noise whose log-variance median is the neighbours'. A deficit of 0 or more is 0;
    above ``CHI_EXACT_MAX_DOF`` the log-normal reading (deficit over sqrt(2/dof)) is used."""
    d = np.minimum(deficit, 0).astype(np.float32, copy=False)
    if dof > CHI_EXACT_MAX_DOF:
        return (d / np.float32(math.sqrt(2.0 / dof))).astype(np.float32, copy=False)
    grid, z = _chi_table(int(max(dof, 1)))
    return np.interp(d, grid, z).astype(np.float32)


@lru_cache(maxsize=64)
def _chi_table(dof: int) -> tuple[np.ndarray, np.ndarray]:
    """z of a deficit from -40 to 0 in steps of 0.02: P(chi2_dof / median(chi2_dof) < e^deficit)."""
    a = dof / 2.0
    median = _median_chi2(dof)
    grid = np.linspace(-40.0, 0.0, 2001)
    z = np.array([_normal_quantile_of_log(_log_lower_gamma(a, median * math.exp(g) / 2.0)) for g in grid])
    return grid, np.minimum(z, 0.0)


@lru_cache(maxsize=256)
def chi2_median_ratio(dof: int) -> float:
    """Chi-square's median over its mean (dof): what a median of sample variances over ``dof``
    degrees of freedom is of the variance (0.69 over 2, 0.84 over 4, 0.98 over 38)."""
    return 1.0 if dof > 10 * CHI_EXACT_MAX_DOF else _median_chi2(int(max(dof, 1))) / max(dof, 1)


def _log_lower_gamma(a: float, x: float) -> float:
    """log of the regularized lower incomplete gamma P(a, x), by its series (x up to ~a here)."""
    if x <= 0:
        return -math.inf
    term = total = 1.0 / a
    k = 0
    while term > total * 1e-16 and k < 10000:
        k += 1
        term *= x / (a + k)
        total += term
    return a * math.log(x) - x - math.lgamma(a) + math.log(total)


def _median_chi2(dof: int) -> float:
    lo, hi = 0.0, dof + 10.0 * math.sqrt(2 * dof) + 10
    for _ in range(100):
        mid = (lo + hi) / 2
        if _log_lower_gamma(dof / 2.0, mid / 2.0) < math.log(0.5):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _normal_quantile_of_log(log_p: float) -> float:
    """z with log Phi(z) = log_p, by bisection on the normal's lower tail (erfc), down to -Z_LIMIT."""
    if log_p >= math.log(0.5):
        return 0.0
    lo, hi = -Z_LIMIT, 0.0
    for _ in range(80):
        mid = (lo + hi) / 2
        tail = 0.5 * math.erfc(-mid / math.sqrt(2.0))
        if tail > 0 and math.log(tail) > log_p:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2
