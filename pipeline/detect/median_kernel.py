"""The 5 x 5 pseudo-median of ``filters.pseudo_median_rows`` in one compiled pass per direction.

numpy takes ten whole-array min/max passes per direction (``filters.med5_into``): a quarter of
detection's time on a 45 MP RGB sensor. This is the same network, value by value, with numpy's
rules (a NaN in, a NaN out; of equal values, 0 and -0, the second), so the numbers are the same
bit for bit (tested against the numpy path, which stays the reference and serves other
windows). Compiled on first use: importing detection must not load numba.
"""

from __future__ import annotations

import numpy as np

_KERNEL = None


def _median5_rows(padded, spacing, width, rows, out):
    def lo(a, b):  # np.minimum: the NaN wins, and of equals (0 and -0) the second
        return a if a < b or a != a else b

    def hi(a, b):  # np.maximum
        return a if a > b or a != a else b

    def med5(a, b, c, d, e):  # filters.med5_into, step by step
        t1 = hi(lo(a, b), lo(c, d))
        t2 = lo(hi(a, b), hi(c, d))
        return hi(lo(t1, t2), lo(hi(t1, t2), e))

    s = spacing
    for i in range(padded.shape[0]):
        for x in range(width):
            rows[i, x] = med5(padded[i, x], padded[i, x + s], padded[i, x + 2 * s], padded[i, x + 3 * s],
                              padded[i, x + 4 * s])
    for i in range(out.shape[0]):
        for x in range(width):
            out[i, x] = med5(rows[i, x], rows[i + s, x], rows[i + 2 * s, x], rows[i + 3 * s, x], rows[i + 4 * s, x])


def median5_rows(padded: np.ndarray, spacing: int, width: int, out: np.ndarray) -> np.ndarray:
    """Rows of the pseudo-median from ``padded`` (``filters.padded_rows`` with 2 * spacing rows
    and columns of padding) into ``out`` (its core rows, ``width`` wide)."""
    global _KERNEL
    if _KERNEL is None:
        from ..stats.numba_cache import jit

        _KERNEL = jit(nogil=True)(_median5_rows)
    rows = np.empty((padded.shape[0], width), padded.dtype)
    _KERNEL(padded, spacing, width, rows, out)
    return out
