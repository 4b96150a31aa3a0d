"""The range counts' two passes over every sensel, each in one compiled loop.

In numpy each took several: the counts (uint8/uint16, strided planes of a mosaic) converted to
intp for ``bincount`` and ``take``, three bincounts or three lookups, and the sum of the two
counts as a third array: 5.8 s of CPU of a 45 MP RGB scan's detection. Compiled on first use
(importing detection must not load numba), with the same results: integer histograms, and the
float32 maximum of table values by np.maximum's rules (a NaN wins; of equal values, such as 0
and the -0 of -log10(1), the second).
"""

from __future__ import annotations

import numpy as np

_KERNELS: dict[str, object] = {}


def _histograms(above, below, n, out):
    for y in range(above.shape[0]):
        for x in range(above.shape[1]):
            a = above[y, x]
            b = below[y, x]
            if a <= n:
                out[0, a] += 1
            if b <= n:
                out[1, b] += 1
            if a + b <= n:
                out[2, a + b] += 1


def _strongest(above, below, hi, lo, both, out):
    for y in range(above.shape[0]):
        for x in range(above.shape[1]):
            a = np.intp(above[y, x])
            b = np.intp(below[y, x])
            s = hi[a]
            t = lo[b]
            s = s if s > t or s != s else t  # np.maximum's rules: a NaN wins, of equals the second
            t = both[a + b]
            out[y, x] = s if s > t or s != s else t


def _count_set(a):
    m = 0
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            m += a[y, x] != 0
    return m


def _set_entries(a, positions, values):
    m = 0
    w = a.shape[1]
    for y in range(a.shape[0]):
        for x in range(w):
            k = a[y, x]
            if k != 0:
                positions[m] = y * w + x
                values[m] = k
                m += 1


def _kernel(name: str, fn):
    if name not in _KERNELS:
        from ...stats.numba_cache import jit

        _KERNELS[name] = jit(nogil=True)(fn)
    return _KERNELS[name]


def count_histograms(above: np.ndarray, below: np.ndarray, n: int) -> np.ndarray:
    """(3, n + 1) int64: the histograms of the above, below and summed counts (0..n) of these
    sensels, as ``np.bincount`` of each gives them (counts past n are left out)."""
    out = np.zeros((3, n + 1), np.int64)
    _kernel("histograms", _histograms)(above, below, np.intp(n), out)
    return out


def set_entries(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The row-major flat positions (intp) and values (intp) of a 2D array's nonzero entries, read
    in place (a plane of a mosaic is a strided view: ``np.flatnonzero`` would copy it first)."""
    m = int(_kernel("count_set", _count_set)(a))
    positions = np.empty(m, np.intp)
    values = np.empty(m, np.intp)
    _kernel("set_entries", _set_entries)(a, positions, values)
    return positions, values


def strongest_scores(above: np.ndarray, below: np.ndarray, hi: np.ndarray, lo: np.ndarray,
                     both: np.ndarray) -> np.ndarray:
    """float32: per sensel, the largest of ``hi[above]``, ``lo[below]`` and ``both[above + below]``."""
    out = np.empty(above.shape, np.float32)
    _kernel("strongest", _strongest)(above, below, hi, lo, both, out)
    return out
