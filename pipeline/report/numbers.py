"""The report's numbers, in numpy only (no bokeh): block-reduced maps, histograms, thresholds.

A 60 MP sensor must give a light page: maps are block-reduced to at most a given number of
pixels (max for the variance so that a single hot or noisy pixel still lights up its block,
mean for the mean), and histograms are counted here so that only the bin counts are embedded.
Everything works on the full-size arrays without full-size temporaries (in bands, in chunks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["BAND_VALUES", "CHUNK", "HIST_BINS", "SAMPLE", "block_factor", "block_reduce", "histogram",
           "map_for_display", "related_thresholds"]

HIST_BINS = 200
SAMPLE = 1_000_000  # values used to choose a histogram's range (the counts use all values)
CHUNK = 1 << 20  # values counted at a time for a histogram
BAND_VALUES = 1 << 19  # input values block-reduced at a time


# --------------------------------------------------------------------------- maps


def block_factor(height: int, width: int, max_pixels: int) -> int:
    """Smallest integer block edge f with ceil(H/f) * ceil(W/f) <= max_pixels."""
    max_pixels = max(1, int(max_pixels))
    f = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    while math.ceil(height / f) * math.ceil(width / f) > max_pixels:
        f += 1
    return f


def _reduce_axis(arr: np.ndarray, factor: int, axis: int, how: str) -> np.ndarray:
    """Reduce one axis in blocks of ``factor`` (last block partial) through a reshape view.

    Splitting an axis in two is a view, so the full blocks cost one pass of numpy's
    contiguous reduction (~20x faster than ``ufunc.reduceat`` on a (H, W, 3) sensor).
    """
    n = arr.shape[axis]
    full = n // factor
    index: list[slice] = [slice(None)] * arr.ndim
    index[axis] = slice(0, full * factor)
    head = arr[tuple(index)]
    head = head.reshape(head.shape[:axis] + (full, factor) + head.shape[axis + 1 :])
    if how == "max":
        out = np.fmax.reduce(head, axis=axis + 1)
    else:
        out = head.sum(axis=axis + 1, dtype=np.float64)
    if n % factor:
        index[axis] = slice(full * factor, n)
        tail = arr[tuple(index)]
        tail = np.fmax.reduce(tail, axis=axis, keepdims=True) if how == "max" else tail.sum(
            axis=axis, keepdims=True, dtype=np.float64)
        out = np.concatenate([out, tail.astype(out.dtype, copy=False)], axis=axis)
    return out


def block_reduce(arr: np.ndarray, factor: int, how: str) -> np.ndarray:
    """Reduce the first two axes by ``factor`` x ``factor`` blocks ('max' or 'mean').

    Edge blocks may be partial and are reduced over what they hold. 'max' ignores NaN
    (``np.fmax``). Works on (H, W) and (H, W, C) without copying the full-size input.
    """
    if how not in ("max", "mean"):
        raise ValueError(f"how must be 'max' or 'mean', not {how!r}")
    arr = np.asarray(arr)
    if factor == 1:
        return arr.astype(np.float64)
    # a band of block rows at a time: the row reduction's float64 temporary stays a few MB
    # (each block is reduced by the same numpy loop either way: the same numbers)
    step = factor * max(1, BAND_VALUES // max(1, factor * arr[:1].size))
    out = np.concatenate([_reduce_axis(_reduce_axis(arr[r : r + step], factor, 0, how), factor, 1, how)
                          for r in range(0, arr.shape[0], step)]).astype(np.float64, copy=False)
    return _per_value(out, arr.shape[:2], factor) if how == "mean" else out


def _per_value(sums: np.ndarray, shape: tuple[int, ...], factor: int) -> np.ndarray:
    """Block sums divided by how many values each block holds (the edge blocks fewer)."""
    h, w = shape[:2]
    nr = np.minimum(factor, h - np.arange(0, h, factor)).astype(np.float64)
    nc = np.minimum(factor, w - np.arange(0, w, factor)).astype(np.float64)
    counts = np.multiply.outer(nr, nc)
    return sums / (counts if sums.ndim == 2 else counts[..., None])


def band_blocks(arr: np.ndarray, y0: int, factor: int, how: str) -> tuple[int, np.ndarray]:
    """A band's share of ``block_reduce``: the block rows that sensor rows ``y0``.. of ``arr``
    touch (the first index, and their maxima or sums, float64), which ``join_blocks`` joins
    with the other bands' into the whole map."""
    arr = np.asarray(arr)
    first = y0 // factor
    cut = min(arr.shape[0], (first + 1) * factor - y0)  # the rows of the first block (maybe partial)
    parts = [arr[:cut]] + [arr[r : r + factor] for r in range(cut, arr.shape[0], factor)]
    rows = [_reduce_axis(_reduce_axis(p, len(p), 0, how), factor, 1, how) for p in parts if len(p)]
    return first, np.concatenate(rows).astype(np.float64, copy=False)


def join_blocks(parts: Sequence[tuple[int, np.ndarray]], shape: tuple[int, ...], factor: int, how: str) -> np.ndarray:
    """The block-reduced map (as ``block_reduce`` gives it) of a sensor of ``shape`` from every
    band's ``band_blocks``: maxima of maxima, sums of sums (then per value)."""
    rows = math.ceil(shape[0] / factor)
    out = np.full((rows, *parts[0][1].shape[1:]), np.nan if how == "max" else 0.0)
    for first, block in parts:
        where = slice(first, first + len(block))
        out[where] = np.fmax(out[where], block) if how == "max" else out[where] + block
    return _per_value(out, shape, factor) if how == "mean" else out


def map_for_display(arr: np.ndarray, factor: int, how: str, divisor: float | None = None) -> np.ndarray:
    """Block-reduced 2-D map: RGB becomes max over channels ('max') or their mean ('mean').

    ``divisor`` (with 'max' only): the map of ``arr / divisor``, divided after the reduction
    (float64 division by a positive number is monotonic: the same maxima, bit for bit).
    """
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) map, got shape {arr.shape}")
    return display(block_reduce(arr, factor, how), how, divisor)


def display(small: np.ndarray, how: str, divisor: float | None = None) -> np.ndarray:
    """A block-reduced map (``block_reduce``, ``join_blocks``) as drawn: channels reduced, divided."""
    if small.ndim == 3:
        small = np.fmax.reduce(small, axis=2) if how == "max" else small.mean(axis=2)
    if divisor is not None:
        if how != "max" or not divisor > 0:
            raise ValueError(f"a divisor needs 'max' and a positive value, got {how!r} and {divisor!r}")
        small = small / divisor  # float64, as M2/n is
    return np.ascontiguousarray(small, dtype=np.float32)


# --------------------------------------------------------------------------- histograms


def _finite_sample(flat: np.ndarray) -> np.ndarray:
    step = max(1, flat.size // SAMPLE)
    s = flat[::step]
    return s[np.isfinite(s)]


def _histogram_range(sample: np.ndarray, marks: Sequence[float]) -> tuple[float, float]:
    """The 0.01-99.99 % quantiles of ``sample``, widened to every finite mark, plus a 5 % margin."""
    lo, hi = (float(v) for v in np.percentile(sample, [0.01, 99.99]))
    for m in marks:
        if math.isfinite(m):
            lo, hi = min(lo, m), max(hi, m)
    span = hi - lo
    return (lo - 0.05 * span, hi + 0.05 * span) if span > 0 else (lo - 0.5, hi + 0.5)


def _histogram_chunk(chunk: np.ndarray, lo: float, hi: float):
    """One chunk's share of ``histogram``: bin counts, outliers below and above (count, extreme), finite values.

    The bins are ``np.histogram``'s own, and it bins each value on its own: the chunks' counts
    add up to those of the whole array.
    """
    if chunk.dtype == np.float32 and chunk.ndim == 1:
        return _histogram_chunk_fast(chunk, lo, hi)
    counts, _ = np.histogram(chunk, bins=HIST_BINS, range=(lo, hi))
    low = chunk[chunk < lo]
    low = low[np.isfinite(low)]  # the outliers only: small, whatever the sensor size
    high = chunk[chunk > hi]
    high = high[np.isfinite(high)]
    return (counts, (low.size, float(low.min()) if low.size else math.inf),
            (high.size, float(high.max()) if high.size else -math.inf), int(np.count_nonzero(np.isfinite(chunk))))


def _histogram_chunk_fast(chunk: np.ndarray, lo: float, hi: float):
    """``_histogram_chunk`` of float32 values in one compiled pass (numpy's takes a dozen: the
    report's histograms of a 45 MP RGB sensor took 7 s), with ``np.histogram``'s own arithmetic,
    step for step, so the counts are the same: the edges are float32, the offset from the first
    edge float32, its bin float64 (``_histograms_impl``, uniform bins)."""
    edges = np.histogram_bin_edges(np.zeros(0, np.float32), bins=HIST_BINS, range=(lo, hi))
    counts = np.zeros(HIST_BINS, np.intp)
    out = np.array([0.0, math.inf, 0.0, -math.inf, 0.0])
    denom = np.subtract(hi, lo, dtype=np.float64)
    _histogram_kernel()(chunk, np.float32(lo), np.float32(hi), float(denom), edges, counts, out)
    return counts, (int(out[0]), float(out[1])), (int(out[2]), float(out[3])), int(out[4])


def _histogram_rows(values, lo, hi, denom, edges, counts, out):
    # the tallies are locals, written back once: kept in ``out`` they cost a store per value
    bins = len(counts)
    finite, below, above = 0, 0, 0
    low, high = out[1], out[3]
    for k in range(len(values)):
        v = values[k]
        if not np.isfinite(v):
            continue
        finite += 1
        if v < lo:
            below += 1
            low = min(low, v)
        elif v > hi:
            above += 1
            high = max(high, v)
        else:
            i = int(np.float64(v - lo) / denom * bins)
            if i == bins:
                i -= 1
            if v < edges[i]:
                i -= 1
            if v >= edges[i + 1] and i != bins - 1:
                i += 1
            counts[i] += 1
    out[0] += below
    out[1] = low
    out[2] += above
    out[3] = high
    out[4] += finite


_KERNEL = None


def _histogram_kernel():
    """``_histogram_rows`` compiled on first use (importing the report must not load numba)."""
    global _KERNEL
    if _KERNEL is None:
        from ..stats.numba_cache import jit

        _KERNEL = jit(nogil=True)(_histogram_rows)
    return _KERNEL


def sample_at(flat_start: int, values: np.ndarray, total: int) -> np.ndarray:
    """A band's share of ``histogram``'s sample (every ``total // SAMPLE``-th value of the whole
    flattened map): its values (``values``, flattened from ``flat_start`` on) at those places."""
    step = max(1, total // SAMPLE)
    flat = np.asarray(values).reshape(-1)
    first = -(-flat_start // step) * step - flat_start
    return flat[first::step]


def histogram_range(sample: np.ndarray, marks: Sequence[float]) -> tuple[float, float] | None:
    """The counts' range from the sample (``sample_at`` of every band, joined in order), or None
    without a finite value."""
    finite = sample[np.isfinite(sample)]
    return None if finite.size == 0 else _histogram_range(finite, marks)


def count_range(values: np.ndarray, lo: float, hi: float):
    """A band's share of ``histogram``'s counts over the range (``histogram_range``)."""
    flat = np.asarray(values).reshape(-1)
    return [_histogram_chunk(flat[i : i + CHUNK], lo, hi) for i in range(0, flat.size, CHUNK)]


def histogram(values: np.ndarray, marks: Sequence[float], pool=None) -> dict[str, Any] | None:
    """Counts over a range that holds the bulk and the thresholds; outliers go to the edges.

    The range is the 0.01-99.99 % quantiles of a sample, widened to include every mark
    (with a margin); values beyond it are added to the first/last bin so that nothing is
    hidden, and the note says how many there are and how far they reach. The values are
    counted in chunks of ``CHUNK`` (``pool``: in threads), so that the temporaries stay a few
    MB, with exactly the counts of one ``np.histogram`` over them all. None without any
    finite value.
    """
    flat = np.asarray(values).reshape(-1)
    sample = _finite_sample(flat)
    if sample.size == 0:
        return None
    lo, hi = _histogram_range(sample, marks)
    chunks = [flat[i : i + CHUNK] for i in range(0, flat.size, CHUNK)]
    shares = (pool.map if pool is not None and len(chunks) > 1 else map)(lambda c: _histogram_chunk(c, lo, hi), chunks)
    return histogram_of(list(shares), lo, hi, flat.dtype)


def histogram_of(shares: list, lo: float, hi: float, dtype: np.dtype | type = np.float32) -> dict[str, Any]:
    """``histogram``'s result from every chunk's counts (``count_range`` of every band) of
    values of ``dtype`` (the edges take it)."""
    counts, edges = np.histogram(np.zeros(0, dtype), bins=HIST_BINS, range=(lo, hi))  # the edges, and zero counts
    n_low, low_min, n_high, high_max, n = 0, math.inf, 0, -math.inf, 0
    for c, (nl, mn), (nh, mx), nf in shares:
        counts += c
        n_low, low_min, n_high, high_max, n = n_low + nl, min(low_min, mn), n_high + nh, max(high_max, mx), n + nf
    counts[0] += n_low
    counts[-1] += n_high
    parts = []
    if n_low:
        parts.append(f"{n_low:,} below {lo:.3g} (min {low_min:.3g}) in the first bin")
    if n_high:
        parts.append(f"{n_high:,} above {hi:.3g} (max {high_max:.3g}) in the last bin")
    note = "; ".join(parts)
    return {"counts": counts, "edges": edges, "note": note, "n": n}


def related_thresholds(name: str, thresholds: Mapping[str, float]) -> dict[str, float]:
    """Thresholds named like the score: equal, or the score name plus a '_', '.' or ':' suffix."""
    out = {}
    for key, val in thresholds.items():
        k = str(key)
        if k == name or (k.startswith(name) and k[len(name)] in "_.:"):
            try:
                out[k] = float(val)
            except (TypeError, ValueError):
                continue
    return out
