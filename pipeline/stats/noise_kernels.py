"""Numba kernels of the noise bars (``noise_bars.py``): each frame's bar per block and colour, from
a median found by selection. Private: call them through ``noise_bars.bars``. Compiled lazily on
first use and cached on disk (``numba_cache.py``), like ``kernels.py``."""

from __future__ import annotations

import numpy as np

from .numba_cache import jit


@jit(nogil=True)
def noise_bars(lines, height, stride, channels, side, step, offset, floor, per_twice, scale, first, end, out):
    """Each frame's bar per block and colour into ``out`` (k, block rows, block columns, colours),
    int32: ``noise_bars.bar_of`` of the |4r| of the same-colour sensels every ``step`` pixels (from
    ``offset`` in: ``noise_bars.geometry``) of each block ``side`` pixels a side that have their 4 neighbours inside the
    frame (``noise_bars.bars_numpy``, to the bit): max(ceil(twice the median x ``per_twice`` /
    ``scale``), ``floor``). The constants come as arguments: numba bakes a global into the
    compiled code, and its disk cache would not see another module's constant change.
    ``lines`` is (k * height, W * channels). A block row's sample rows are read once each, left to
    right across every block (the samples gathered per block and colour), which streams memory.
    Only block rows ``first`` to ``end`` (exclusive) are computed: a task that adds some rows
    reads no other; the rest of ``out`` is left as it is."""
    k, rows_of_blocks, blocks, colours = out.shape
    length = lines.shape[1]
    width = length // channels
    flat_step = stride * channels
    per = (side // step + 1) ** 2
    buf = np.empty((blocks, colours, per), np.int64)
    held = np.zeros((blocks, colours), np.int64)
    for f in range(k):
        base = f * height
        for by in range(first, min(end, rows_of_blocks)):
            held[:, :] = 0
            y_end = min(height, (by + 1) * side)
            for py in range(stride):
                for y in range(by * side + py + offset, y_end, step):
                    if y < stride or y >= height - stride:
                        continue
                    row = lines[base + y]
                    up = lines[base + y - stride]
                    down = lines[base + y + stride]
                    for bx in range(blocks):
                        x_end = min(width, (bx + 1) * side)
                        for px in range(stride):
                            for x in range(bx * side + px + offset, x_end, step):
                                if x < stride or x >= width - stride:
                                    continue
                                for c in range(channels):
                                    j = x * channels + c
                                    r = (np.int64(4) * np.int64(row[j]) - np.int64(up[j]) - np.int64(down[j])
                                         - np.int64(row[j - flat_step]) - np.int64(row[j + flat_step]))
                                    colour = (py * stride + px) * channels + c
                                    m = held[bx, colour]
                                    buf[bx, colour, m] = r if r >= 0 else -r
                                    held[bx, colour] = m + 1
            for bx in range(blocks):
                for colour in range(colours):
                    m = held[bx, colour]
                    bar = np.int64(floor)
                    if m > 0:
                        twice = _twice_median(buf[bx, colour], m)
                        bar = np.int64(max((twice * per_twice + scale - 1) // scale, bar))
                    out[f, by, bx, colour] = np.int32(min(bar, np.int64(2**31 - 1)))


@jit(nogil=True)
def _select(a, lo, hi, k):
    """Reorder a[lo:hi] in place so that a[k] holds the value a sort would put there, smaller ones
    before it and larger after (Hoare's selection, median-of-3 pivot): linear on average, where
    a sort of every block's samples took 60 % of the bars' time."""
    hi -= 1
    while hi > lo:
        mid = (lo + hi) >> 1
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@jit(nogil=True)
def _twice_median(a, m):
    """Twice the median of a[:m] (the sum of its two middle values; one twice for odd m), exactly,
    reordering a[:m]."""
    k = (m - 1) // 2
    _select(a, 0, m, k)
    low = a[k]
    if m % 2:
        return low + low
    high = a[k + 1]
    for i in range(k + 2, m):  # the next larger: the least of the upper part
        if a[i] < high:
            high = a[i]
    return low + high
