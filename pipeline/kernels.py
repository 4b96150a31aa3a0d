"""Numba kernels for the hot loops of ``stats.py``. Private: call them through ``stats.accumulate``.

``accumulate_rows`` adds a block of k frames to the exact integer sums of both streams (the
value and ``residual_x4`` = 4*v - up - down - left - right at distance ``stride``) in one pass
over the accumulators. The work is memory-bandwidth bound, so the loop order is chosen for
memory traffic, not arithmetic:

- for every output row, and every cache-sized chunk of that row, the k frames are summed into
  small row-local buffers (L1-resident), then added once to the int64 accumulators. A block of
  k frames costs one read-modify-write pass over the accumulators instead of k passes, and
  no int64 temporaries of frame size are ever made;
- rows are processed as flat ``W*C`` runs (interleaved channels stay interleaved), so the
  interior of every row is a unit-stride loop LLVM vectorises; only the ``stride`` columns at
  each edge take the reflected-index path;
- the row-local buffers have the narrowest exact type chosen by the caller (int32 where k
  frames of the dtype cannot overflow it, see ``stats._buffer_types``), which halves their
  footprint and doubles the SIMD width; the accumulators stay int64.

Compiled lazily on first use for each (frame dtype, buffer dtypes, layout) and cached on disk
(``cache=True``), so only the first run on a machine pays the compile time.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# values per row chunk: 4 buffers of CHUNK elements (int32: 16 KiB, int64: 32 KiB) stay in L1/L2
CHUNK = 1024


@njit(cache=True, nogil=True, inline="always")
def _residual(v, up, down, left, right):
    """4*v - up - down - left - right in int32 (|result| <= 4*65535 for uint16 input)."""
    i32 = np.int32
    return i32(i32(i32(i32(i32(v << 2) - i32(up)) - i32(down)) - i32(left)) - i32(right))


@njit(cache=True, nogil=True)
def accumulate_rows(lines, frame_step, k, s1, s2, stride, pad, channels, left, right, bv1, bv2, br1, br2):
    """Add k frames to ``s1``/``s2`` (2, rows, W*C) int64, in place.

    ``lines`` is a 2D C-contiguous array of image rows (each W*C values, channels interleaved):
    row ``y`` (0 <= y < rows + 2*pad, halo included) of frame ``f`` is ``lines[f*frame_step + y]``.
    Passing every block as one 2D C array (see ``stats._as_lines``) keeps to one compiled
    specialisation per dtype and lets LLVM assume unit stride.

    ``left``/``right`` are the reflected neighbour columns (length W) for the edge columns,
    exactly as ``stats.residual_x4`` builds them; interior columns use x -/+ stride.
    ``bv1, bv2, br1, br2`` are scratch buffers of length >= CHUNK: the row-local sums of v,
    v*v, r and r*r over the k frames, in a type wide enough for k frames.
    """
    rows = s1.shape[1]
    length = lines.shape[1]
    step = stride * channels
    # flat positions [lo, hi) have both neighbours in the row at j -/+ step
    lo = step
    hi = length - step
    if hi < lo:
        hi = lo
    if lo > length:
        lo = length
    if hi > length:
        hi = length
    t1 = bv1.dtype.type
    t2 = bv2.dtype.type
    u1 = br1.dtype.type
    u2 = br2.dtype.type
    for r in range(rows):
        for j0 in range(0, length, CHUNK):
            j1 = min(length, j0 + CHUNK)
            n = j1 - j0
            for i in range(n):
                bv1[i] = 0
                bv2[i] = 0
                br1[i] = 0
                br2[i] = 0
            a = max(j0, lo)
            b = min(j1, hi)
            for f in range(k):
                y = f * frame_step + r + pad
                cen = lines[y]
                up = lines[y - stride]
                down = lines[y + stride]
                if b > a:
                    # interior: unit-stride views indexed from 0, so numba emits no negative-index
                    # wraparound and LLVM vectorises the loop
                    m = b - a
                    c0 = cen[a:b]
                    cl = cen[a - step : b - step]
                    cr = cen[a + step : b + step]
                    u0 = up[a:b]
                    d0 = down[a:b]
                    o1 = bv1[a - j0 : b - j0]
                    o2 = bv2[a - j0 : b - j0]
                    o3 = br1[a - j0 : b - j0]
                    o4 = br2[a - j0 : b - j0]
                    for i in range(m):
                        v = np.int32(c0[i])
                        res = _residual(v, u0[i], d0[i], cl[i], cr[i])
                        # numba widens integer arithmetic to int64; casting every result back to
                        # the buffer's type lets LLVM keep int32 lanes (twice the SIMD width)
                        o1[i] = t1(o1[i] + t1(v))
                        o2[i] = t2(o2[i] + t2(t2(v) * t2(v)))
                        o3[i] = u1(o3[i] + u1(res))
                        o4[i] = u2(o4[i] + u2(u2(res) * u2(res)))
                # edge columns (reflected): at most `stride` columns on each side of the row
                for e in range(2):
                    ea = j0 if e == 0 else max(j0, hi)
                    eb = min(j1, lo) if e == 0 else j1
                    for j in range(ea, eb):
                        x = j // channels
                        c = j - x * channels
                        v = np.int32(cen[j])
                        res = _residual(v, up[j], down[j], cen[left[x] * channels + c], cen[right[x] * channels + c])
                        i = j - j0
                        bv1[i] = t1(bv1[i] + t1(v))
                        bv2[i] = t2(bv2[i] + t2(t2(v) * t2(v)))
                        br1[i] = u1(br1[i] + u1(res))
                        br2[i] = u2(br2[i] + u2(u2(res) * u2(res)))
            a1 = s1[0, r, j0:j1]
            a2 = s2[0, r, j0:j1]
            a3 = s1[1, r, j0:j1]
            a4 = s2[1, r, j0:j1]
            for i in range(n):
                a1[i] += bv1[i]
                a2[i] += bv2[i]
                a3[i] += br1[i]
                a4[i] += br2[i]
