"""Numba kernels of the folds: the float64 steps at partition boundaries and the merge of days.

``to_stats_rows`` and ``merge_flat`` are the float64 steps at partition boundaries
(``IntegerSums.to_stats`` and ``PixelStats.merge``): one pass, no temporaries, and exactly the
float operations of the numpy references in the same order (fastmath off, no FMA contraction),
so the results are bit-identical. ``earliest_of_both`` merges two sets of a sensel's 4 earliest
days (``model.add``). Reached through ``fused.kernels()`` (``kernels`` re-exports them).
"""

from __future__ import annotations

import numpy as np

from .numba_cache import jit


@jit(nogil=True)
def keep_first(b0, b1, b2, b3, i, day):
    """Insert ``day`` into the 4 sorted earliest days at index i of b0..b3 (dropping the latest;
    ``NO_DAY`` inserts nothing). A min/max network with no branch and unconditional stores, so
    the loop around it vectorises (the casts keep numba's min and max in 16-bit lanes: without
    them the loop stays scalar, 14x slower)."""
    d = np.uint16(day)
    x = b0[i]
    b0[i] = np.uint16(min(x, d))
    d = np.uint16(max(x, d))
    x = b1[i]
    b1[i] = np.uint16(min(x, d))
    d = np.uint16(max(x, d))
    x = b2[i]
    b2[i] = np.uint16(min(x, d))
    d = np.uint16(max(x, d))
    b3[i] = np.uint16(min(b3[i], d))


@jit(nogil=True, error_model="numpy")
def to_stats_rows(n, s1, s2, mean_div, m2_div, mean, m2):
    """float64 moments of exact sums, into ``mean``/``m2``: the arithmetic of ``stats._to_stats_numpy``.

    ``s1``, ``s2`` (integers of any width, see ``stats.sum_types``) and ``mean``, ``m2``
    (float64) are (S, P); per stream ``s``,
    mean = float(s1) / mean_div[s] and m2 = float(n*s2 - s1*s1) / m2_div[s], the numerator
    exact in int64 and each result rounded once, exactly as numpy does it.
    """
    for s in range(s1.shape[0]):
        dm = mean_div[s]
        dv = m2_div[s]
        a = s1[s]
        b = s2[s]
        om = mean[s]
        ov = m2[s]
        for i in range(a.shape[0]):
            x = np.int64(a[i])
            om[i] = np.float64(x) / dm
            ov[i] = np.float64(n * np.int64(b[i]) - x * x) / dv


@jit(nogil=True, error_model="numpy")
def merge_flat(mean_a, m2_a, mean_b, m2_b, weight_b, weight_ab, mean, m2):
    """Chan's merge, elementwise over flat float64 arrays: the arithmetic of ``stats._merge_numpy``.

    ``weight_b`` = nb/n and ``weight_ab`` = na*nb/n are computed by the caller exactly as numpy's
    reference does; the operations and their order here are numpy's: delta = mb - ma,
    mean = ma + delta*weight_b, m2 = (m2a + m2b) + (delta*delta)*weight_ab.
    """
    for i in range(mean_a.shape[0]):
        a = mean_a[i]
        delta = mean_b[i] - a
        mean[i] = a + delta * weight_b
        m2[i] = (m2_a[i] + m2_b[i]) + (delta * delta) * weight_ab



@jit(nogil=True)
def earliest_of_both(a0, a1, a2, a3, b0, b1, b2, b3):
    """The earliest 4 of two sorted lists of 4 days per sensel (flat uint16), into ``a0..a3``:
    ``model.add``'s merge of first days, 4 vectorised insertions instead of a sort of 8."""
    for i in range(a0.shape[0]):
        keep_first(a0, a1, a2, a3, i, b0[i])
        keep_first(a0, a1, a2, a3, i, b1[i])
        keep_first(a0, a1, a2, a3, i, b2[i])
        keep_first(a0, a1, a2, a3, i, b3[i])
