"""Robust neighbourhood filters on one same-colour plane: pseudo-medians from min/max networks,
reflected gathers, exact medians of short rows; numpy, and one compiled loop for the 5 x 5
pseudo-median (``median_kernel``).

Arrays may hold only a band of a plane: rows ``top`` .. ``top + len(a)`` of a plane ``height``
rows high. Row arguments are then plane coordinates, and reflection happens only at the
plane's real edges, so a band with enough halo rows gives exactly the numbers of the whole
plane (``pipeline.detect.bands``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .stripes import each_stripe

# side, in same-colour samples, of the neighbourhood of the local medians: 5x5 holds a defect's
# smear (a blob under half the window never moves a pseudo-median) and enough samples for a
# quantile, without reaching into the next scene feature
WINDOW = 5


def med5_into(a, b, c, d, e, t1, t2, t3) -> np.ndarray:
    """Element-wise median of 5 arrays with 10 min/max into preallocated buffers (returns t1).

    Drop the minimum and the maximum of (a, b, c, d): what is left, with e, holds the
    median as the median of 3.
    """
    np.minimum(a, b, out=t1)
    np.minimum(c, d, out=t2)
    np.maximum(t1, t2, out=t1)  # lo = max(min(a, b), min(c, d))
    np.maximum(a, b, out=t2)
    np.maximum(c, d, out=t3)
    np.minimum(t2, t3, out=t2)  # hi = min(max(a, b), max(c, d))
    np.minimum(t1, t2, out=t3)
    np.maximum(t1, t2, out=t2)
    np.minimum(t2, e, out=t2)
    return np.maximum(t3, t2, out=t1)  # median(lo, hi, e)


def median_views(views: list[np.ndarray], out: np.ndarray | None = None, scratch=None) -> np.ndarray:
    """Element-wise median of an odd number of equally shaped arrays (into ``out`` if given;
    ``scratch``: two arrays at least as large, for the temporaries of the 5-way median)."""
    if len(views) == 5:
        shape = views[0].shape
        t1 = np.empty(shape, views[0].dtype) if out is None else out
        t2, t3 = (np.empty_like(t1), np.empty_like(t1)) if scratch is None else (t[: shape[0]] for t in scratch)
        a, b, c, d, e = views
        return med5_into(a, b, c, d, e, t1, t2, t3)
    if len(views) == 3:
        a, b, c = views
        med = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    else:
        med = np.median(np.stack(views), axis=0).astype(views[0].dtype)
    if out is None:
        return med
    out[...] = med
    return out


def pad_mode(shape: tuple[int, ...], p: int) -> str:
    """The np.pad mode that pads ``p`` samples: reflect, or (arrays too small for it) symmetric or edge."""
    return "reflect" if min(shape) > p else "symmetric" if min(shape) >= p else "edge"


def pad_index(i: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Index into an axis of length n of what ``np.pad(mode)`` (pad <= n) puts at position i (-pad <= i < n + pad)."""
    if mode == "reflect":
        return reflect(i, n)
    if mode == "symmetric":
        i = np.where(i < 0, -1 - i, i)
        return np.where(i >= n, 2 * n - 1 - i, i)
    return np.clip(i, 0, n - 1)


def padded_rows(a: np.ndarray, r0: int, r1: int, p: int, top: int = 0, height: int | None = None) -> np.ndarray:
    """Rows r0 - p .. r1 + p of ``np.pad(plane, p, mode=pad_mode(plane.shape, p))``, without padding
    (or copying) the rest, from ``a``: rows ``top`` .. of a plane ``height`` rows high."""
    h = top + len(a) if height is None else height
    w = a.shape[1]
    mode = pad_mode((h, w), p)
    out = np.empty((r1 - r0 + 2 * p, w + 2 * p), a.dtype)
    inner = slice(max(r0 - p, 0), min(r1 + p, h))  # rows of the plane itself: copied straight
    out[inner.start - (r0 - p) : inner.stop - (r0 - p), p : p + w] = a[inner.start - top : inner.stop - top]
    edge = np.concatenate((np.arange(r0 - p, inner.start), np.arange(inner.stop, r1 + p)))  # np.r_: ~0.1 ms a call
    if len(edge):
        out[edge - (r0 - p), p : p + w] = a[pad_index(edge, h, mode) - top]
    if p:
        cols = pad_index(np.concatenate((np.arange(-p, 0), np.arange(w, w + p))), w, mode) + p
        out[:, :p] = out[:, cols[:p]]
        out[:, p + w :] = out[:, cols[p:]]
    return out


def pseudo_median_rows(a: np.ndarray, r0: int, r1: int, window: int, spacing: int, out: np.ndarray | None = None,
                       top: int = 0, height: int | None = None, compiled: bool = True) -> np.ndarray:
    """Rows r0:r1 of ``pseudo_median(plane, window, spacing)`` (min/max only: the same values, stripe
    by stripe); the 5 x 5 window of floats through ``median_kernel`` (``compiled``), the same bits."""
    p = (window // 2) * spacing
    w = a.shape[1]
    ap = padded_rows(a, r0, r1, p, top, height)
    if compiled and window == 5 and ap.dtype.kind == "f":
        from .median_kernel import median5_rows

        return median5_rows(ap, spacing, w, np.empty((r1 - r0, w), a.dtype) if out is None else out)
    offs = [k * spacing for k in range(window)]
    scratch = (np.empty((len(ap), w), a.dtype), np.empty((len(ap), w), a.dtype)) if window == 5 else None
    rows = median_views([ap[:, o : o + w] for o in offs], scratch=scratch)
    del ap
    return median_views([rows[o : o + r1 - r0] for o in offs], out, scratch)  # the row pass's scratch, again


def pseudo_median(a: np.ndarray, window: int = WINDOW, spacing: int = 1,
                  pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """Separable median (median of row medians) over a window x window grid of samples ``spacing`` apart.

    It breaks down only when most samples of most rows are outliers (a blob wider than half
    the window), so a single defect or its demosaic smear never moves it; and it costs a few
    min/max passes over whole arrays instead of a sort per pixel. Computed in row stripes
    (``pool``: in threads), so that its temporaries are a few MB whatever the size of ``a``.
    """
    out = np.empty(a.shape, a.dtype)
    each_stripe(pool, 0, a.shape[0], a.shape[1],
                lambda r0, r1: pseudo_median_rows(a, r0, r1, window, spacing, out[r0:r1]))
    return out


def pseudo_median_points(values) -> np.ndarray:
    """The pseudo-median of (m, window, window) samples: the same min/max as ``pseudo_median``, per point."""
    k = values.shape[1]
    return median_views([median_views([values[:, i, j] for j in range(k)]) for i in range(k)])


def grid_points(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int], window: int, spacing: int):
    """Row and column indices, (m, window, 1) and (m, 1, window), of the samples ``pseudo_median``
    takes around each point of a plane of ``shape`` (plane coordinates)."""
    p = (window // 2) * spacing
    mode = pad_mode(shape, p)
    offs = np.arange(-p, p + 1, spacing)
    return (pad_index(ys[:, None, None] + offs[None, :, None], shape[0], mode),
            pad_index(xs[:, None, None] + offs[None, None, :], shape[1], mode))


def reflect(i: np.ndarray, n: int) -> np.ndarray:
    """Indices reflected at the edges as np.pad(mode="reflect") does (-1 -> 1, n -> n-2)."""
    if n == 1:
        return np.zeros_like(i)
    i = np.abs(i)
    i = (n - 1) - np.abs((n - 1) - i)
    return np.clip(i, 0, n - 1)


def flat_view(a: np.ndarray) -> tuple[np.ndarray | None, int]:
    """A 1-D view of the 2-D (possibly strided) ``a`` and its row step ``rs``: a[y, x] is view[y * rs + x].

    One flat index array reads ~4x faster than a pair of row and column arrays. None (and 0)
    when the strides do not allow it (negative, or rows not a whole number of column steps).
    """
    h, w = a.shape
    s0, s1 = a.strides
    if a.size == 0 or s1 <= 0 or s0 <= 0 or s0 % s1 or (h > 1 and s0 // s1 < w):
        return None, 0
    rs = s0 // s1
    return np.lib.stride_tricks.as_strided(a, ((h - 1) * rs + w,), (s1,), writeable=a.flags.writeable), rs


def gather(a: np.ndarray, ys: np.ndarray, xs: np.ndarray, offsets, top: int = 0,
           height: int | None = None) -> np.ndarray:
    """Values at (ys + dy, xs + dx) for every offset, reflected at the plane's edges: shape
    (len(ys), len(offsets)). ``a`` holds rows ``top`` .. of a plane ``height`` rows high; ``ys``
    are plane rows.

    A column at a time (no (len(ys), len(offsets)) index arrays), by flat indices (``flat_view``):
    only the points within the offsets' reach of the border need reflecting, and only they are.
    """
    h = top + len(a) if height is None else height
    w = a.shape[1]
    out = np.empty((len(ys), len(offsets)), a.dtype)
    flat, rs = flat_view(a)
    if flat is None or not len(offsets):
        for k, (dy, dx) in enumerate(offsets):
            out[:, k] = a[reflect(ys + dy, h) - top, reflect(xs + dx, w)]
        return out
    ry, rx = max(abs(dy) for dy, _ in offsets), max(abs(dx) for _, dx in offsets)
    edge = np.flatnonzero((ys < ry) | (ys >= h - ry) | (xs < rx) | (xs >= w - rx))
    ey, ex = ys[edge].astype(np.intp), xs[edge]
    at = (ys.astype(np.intp) - top) * rs + xs
    for k, (dy, dx) in enumerate(offsets):
        i = at + (dy * rs + dx)
        i[edge] = (reflect(ey + dy, h) - top) * rs + reflect(ex + dx, w)
        out[:, k] = flat[i]
    return out


def gather_points(at, ys: np.ndarray, xs: np.ndarray, offsets, shape: tuple[int, int]) -> np.ndarray:
    """``gather`` of a quantity computed at single sensels (``at(rows, columns)``) rather than read
    from an array: (len(ys), len(offsets)), reflected at the plane's edges as ``gather`` is."""
    h, w = shape
    rows = reflect(ys[:, None] + np.array([dy for dy, _ in offsets], np.int64), h)
    cols = reflect(xs[:, None] + np.array([dx for _, dx in offsets], np.int64), w)
    return at(rows, cols)


def window_offsets(window: int, spacing: int) -> list[tuple[int, int]]:
    """Offsets of a window x window grid of same-colour samples, centre excluded."""
    r = window // 2
    return [(dy * spacing, dx * spacing) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy or dx]


def median_last(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``np.median(x, axis=-1)`` from a full sort: the same middle values, averaged by the same
    ``np.mean``, NaN where a row holds one; many short rows sort ~5x faster than they partition."""
    part = np.sort(x, axis=-1)
    k = part.shape[-1]
    middle = slice(k // 2, k // 2 + 1) if k % 2 else slice(k // 2 - 1, k // 2 + 1)
    med = np.mean(part[..., middle], axis=-1, keepdims=keepdims)
    last = part[..., -1:] if keepdims else part[..., -1]
    nan = np.isnan(last)
    if nan.any():
        np.copyto(med, last, where=nan)
    return med


def values_at(a: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``a[ys, xs]`` at points inside ``a``, by flat indices where ``flat_view`` allows (~4x faster)."""
    flat, rs = flat_view(a)
    return a[ys, xs] if flat is None else flat[ys.astype(np.intp, copy=False) * rs + xs]


def unique_flat(keys: np.ndarray, size: int) -> np.ndarray:
    """``np.unique(keys)`` for flat indices into an array of ``size``: through a mask of that
    size when the keys are many (linear time; np.unique sorts), else by sorting."""
    if len(keys) < size // 64:
        return np.unique(keys)
    mask = np.zeros(size, np.bool_)
    mask[keys] = True
    return np.flatnonzero(mask)


def divmod_int(a: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.divmod(a, w)`` for integers, through one floor division (np.divmod is ~10x slower)."""
    q = a // w
    return q, a - q * w
