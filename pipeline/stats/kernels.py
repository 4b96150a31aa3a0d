"""Numba kernels for the hot loops of ``stats.py``. Private: call them through ``stats.accumulate``.

``accumulate_rows`` adds a block of k frames to the exact integer sums of both streams (the
value and its residual 4*v - up - down - left - right at distance ``stride``) and to the
counts of frames in which a sensel lies beyond its 4 same-colour neighbours' range, in one
pass over the accumulators. The work is memory-bandwidth bound, so the loop order is chosen for
memory traffic, not arithmetic:

- for every output row, and every cache-sized chunk of that row, the k frames are summed into
  small row-local buffers (L1-resident), then added once to the partition's accumulators. A block of
  k frames costs one read-modify-write pass over the accumulators instead of k passes, and
  no int64 temporaries of frame size are ever made;
- rows are processed as flat ``W*C`` runs (interleaved channels stay interleaved), so the
  interior of every row is a unit-stride loop LLVM vectorises; only the ``stride`` columns at
  each edge take the reflected-index path;
- the row-local buffers have the narrowest exact type chosen by the caller (for 8-bit frames
  int16 and uint16 where up to 32 frames cannot overflow them, see ``stats._BUFFER_TYPES``),
  and the residual and the range test are computed in that width: narrow lanes halve the
  buffers' footprint and double the SIMD width (int16 rather than int32 lanes made the 8-bit
  kernel about 20% faster); the accumulators are the narrowest exact type for
  the partition (``stats.sum_types``: 16 bytes per value for 8-bit input, not 32);
- rows are addressed through index arrays (centre, up, down), so a whole frame reflects at
  its top and bottom edges without a padded copy.

``to_stats_rows`` and ``merge_flat`` are the float64 steps at partition boundaries
(``IntegerSums.to_stats`` and ``PixelStats.merge``): one pass, no temporaries, and exactly the
float operations of the numpy references in the same order (fastmath off, no FMA contraction),
so the results are bit-identical.

Compiled lazily on first use for each (frame dtype, buffer dtypes, layout) and cached on disk
(``numba_cache.py`` says where).
"""

from __future__ import annotations

import numpy as np

from .model import COARSE_HALF, COARSE_SHIFT, NO_DAY, SKETCH_LOG2, SKETCH_MULTIPLIER
from .numba_cache import jit

# values per row chunk: 4 buffers of CHUNK elements (int32: 16 KiB, int64: 32 KiB) stay in L1/L2
CHUNK = 1024



@jit(nogil=True, inline="always")
def _residual(v, up, down, left, right, t):
    """4*v - up - down - left - right in the work type ``t``: int16 for uint8 input (|result| <=
    1020), int32 for uint16 (<= 4*65535). Every step is cast back to ``t``, because numba widens
    integer arithmetic to int64, and narrow lanes are what LLVM vectorises widest."""
    return t(t(t(t(t(v << 2) - t(up)) - t(down)) - t(left)) - t(right))


@jit(nogil=True, inline="always")
def _beyond(v, up, down, left, right, t):
    """(1, 0) if v lies above its 4 same-colour neighbours by more than their own range,
    (0, 1) if below by more, else (0, 0): v > 2*max - min, v < 2*min - max, in the work type
    ``t`` (see ``_residual``; |2*max - min| <= 2*max).

    Scene texture widens the range along with the deviation, so a healthy sensel rarely
    passes in any frame, while a warm or flickering one does in many (``detect.py`` scores
    the counts); clipped areas, where all five are equal, never count. The 4 neighbours are
    the residual's, already loaded; the 3x3 window's 8 separated a little better on synthetic
    stacks but cost 3x the kernel's time, the 4 cost about half again.
    """
    a, b, c, d = t(up), t(down), t(left), t(right)
    mx = max(max(a, b), max(c, d))
    mn = min(min(a, b), min(c, d))
    return t(v > t(t(mx << 1) - mn)), t(v < t(t(mn << 1) - mx))


@jit(nogil=True, inline="always")
def _spike(v, up, down, left, right, floor, t):
    """True if v stands above its 4 same-colour neighbours' maximum by at least ``floor`` and by
    more than 3 times their range (a lit hot sensel; noise and scene edges almost never do)."""
    mx = max(max(t(up), t(down)), max(t(left), t(right)))
    mn = min(min(t(up), t(down)), min(t(left), t(right)))
    d = t(t(v) - mx)
    return (d >= floor) & (d > t(t(mx - mn) * t(3)))


@jit(nogil=True, inline="always")
def _hole(v, up, down, left, right, black, floor, t):
    """True if v reads at or below ``black`` while all 4 same-colour neighbours stand at least
    ``floor`` above it: a sensel that clipped at the black level, as a hot one that saturated
    does in a dark-subtracted frame (a scene's own dark detail is wider than one sensel)."""
    mn = min(min(t(up), t(down)), min(t(left), t(right)))
    return (t(v) <= black) & (t(mn - t(v)) >= floor)


@jit(nogil=True, inline="always")
def _keep_first(b0, b1, b2, b3, i, day):
    """Insert ``day`` into the 4 sorted earliest days at index i of b0..b3 (dropping the latest)."""
    d = day
    if d < b0[i]:
        d, b0[i] = b0[i], d
    if d < b1[i]:
        d, b1[i] = b1[i], d
    if d < b2[i]:
        d, b2[i] = b2[i], d
    if d < b3[i]:
        b3[i] = d


@jit(nogil=True, inline="always")
def _mark(bits, f, position):
    """Set the sketch bit of flat sensel ``position`` in frame ``f``'s row of ``bits`` (``model.sketch_bit``)."""
    b = ((np.uint64(position) * np.uint64(SKETCH_MULTIPLIER)) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - SKETCH_LOG2)
    bits[f, b >> np.uint64(6)] |= np.uint64(1) << (b & np.uint64(63))


@jit(nogil=True)
def accumulate_rows(lines, frame_step, k, rows_c, rows_u, rows_d, s1, s2, counts, stride, channels, left, right,
                    bv1, bv2, br1, br2, bhi, blo, factors, days, logx, logg, white, black, mxr, mexc, mexs, mexx,
                    mexq, mhol, mhos, mlx, mlg, mf0, mf1, mf2, mf3, sketch, spike_floor, hole_floor, bxr,
                    bexc, bexs, bexx, bexq, bhol, bhos, blx, blg, bf0, bf1, bf2, bf3):
    """Add k frames to ``s1``/``s2`` (2, rows, W*C), in place.

    ``lines`` is a 2D C-contiguous array of image rows (each W*C values, channels interleaved):
    row ``y`` of frame ``f`` is ``lines[f*frame_step + y]``. Passing every block as one 2D C
    array (see ``stats._as_lines``) keeps to one compiled specialisation per dtype and lets
    LLVM assume unit stride. Output row ``r`` is image row ``rows_c[r]``; its same-colour
    neighbours above and below are rows ``rows_u[r]`` and ``rows_d[r]`` (a halo row, or the
    reflection at the image edge: the caller decides, so whole frames need no padded copy).

    ``left``/``right`` are the reflected neighbour columns (length W) for the edge columns,
    exactly as ``stats._neighbour_columns`` builds them; interior columns use x -/+ stride.
    ``bv1, bv2, br1, br2, bhi, blo`` are scratch buffers of length >= CHUNK: the row-local
    sums of v, v*v, r and r*r over the k frames, in a type wide enough for k frames, and the
    counts of frames beyond the range of the 4 same-colour neighbours (``_beyond``). ``br1``'s
    type is also the work type of the residual and the range test (int16 for uint8 frames). The
    accumulators ``s1``/``s2`` may be of any integer type wide enough for the partition
    (``stats.sum_types``); ``counts`` (2, rows, W*C) holds the above/below counts, or is None
    to leave them out (numba compiles that case without their code).

    The physics model's sums (``stats.model``), each None to leave it out: ``mxr``, ``mexc``,
    ``mexs``, ``mexx``, ``mexq`` (rows, W*C) take, per sensel, the sum of x*4r over the frames in
    the exposure fit, the count of frames left out of it (the sensel at or above ``white``, or a
    frame whose ``factors[f]`` is negative: no exposure), their sum of 4r, of x and of the coarse
    x^2 (``model.coarse_square``); ``mhol``, ``mhos`` the count and sum of 4r of the frames in
    which it read at or below ``black`` where its neighbours did not (``_hole``, by at least
    ``hole_floor``: left out too, at no x). Over the frames in which the sensel lay beyond its
    neighbours' range (they need ``counts``): ``mlx`` and ``mlg`` the sums of ``logx[f]`` and
    ``logg[f]`` (the frame's log exposure factor and log gain, ``model.log_factor``), and
    ``mf0..mf3`` (uint16) the 4 earliest ``days[f]``, in order (``model.NO_DAY`` for none).
    ``bxr, bexc, bexs, bexx, bexq, bhol, bhos, blx, blg, bf0..bf3`` are their row-local buffers
    (int64, int16, int32, int64, int64, int16, int32, int32, int32, uint16 x 4; always given,
    used only with their sum). ``sketch`` (k, words) uint64, or None, gains per frame the bits
    of its sensels that stand out as a lit hot sensel does (``_spike``, by at least
    ``spike_floor``; ``_mark``): where the hot sensels of a stack do not, the camera subtracted
    a dark frame (``dark_subtraction``).
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
    tc = bhi.dtype.type
    w1 = s1.dtype.type
    w2 = s2.dtype.type
    for r in range(rows):
        for j0 in range(0, length, CHUNK):
            j1 = min(length, j0 + CHUNK)
            n = j1 - j0
            for i in range(n):
                bv1[i] = 0
                bv2[i] = 0
                br1[i] = 0
                br2[i] = 0
                bhi[i] = 0
                blo[i] = 0
            if mxr is not None:
                for i in range(n):
                    bxr[i] = 0
                    bexc[i] = 0
                    bexs[i] = 0
                    bexx[i] = 0
                    bexq[i] = 0
                    bhol[i] = 0
                    bhos[i] = 0
            if mf0 is not None:
                for i in range(n):
                    bf0[i] = NO_DAY
                    bf1[i] = NO_DAY
                    bf2[i] = NO_DAY
                    bf3[i] = NO_DAY
            if mlx is not None:
                for i in range(n):
                    blx[i] = 0
                    blg[i] = 0
            a = max(j0, lo)
            b = min(j1, hi)
            for f in range(k):
                base = f * frame_step
                cen = lines[base + rows_c[r]]
                up = lines[base + rows_u[r]]
                down = lines[base + rows_d[r]]
                # the frame's model terms: its exposure factor (none: every sensel is left out of
                # the fit, as a clipped one is) and the level a sensel clips at
                xf = np.int64(0)
                xq = np.int64(0)
                clip_at = u1(0)
                dayf = np.uint16(0)
                row_at = np.int64(rows_c[r]) * np.int64(length)
                if mxr is not None:
                    xf = np.int64(factors[f])
                    clip_at = u1(white) if xf >= 0 else u1(-1)
                    if xf < 0:
                        xf = np.int64(0)
                    xq = (xf + np.int64(COARSE_HALF)) >> np.int64(COARSE_SHIFT)
                    xq = xq * xq
                if mf0 is not None:
                    dayf = np.uint16(days[f])
                lxf = np.int32(0)
                lgf = np.int32(0)
                if mlx is not None:
                    lxf = np.int32(logx[f])
                    lgf = np.int32(logg[f])
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
                    o5 = bhi[a - j0 : b - j0]
                    o6 = blo[a - j0 : b - j0]
                    o7 = bxr[a - j0 : b - j0]
                    o8 = bexc[a - j0 : b - j0]
                    o9 = bexs[a - j0 : b - j0]
                    o11 = bexx[a - j0 : b - j0]
                    o12 = bexq[a - j0 : b - j0]
                    o13 = bhol[a - j0 : b - j0]
                    o14 = bhos[a - j0 : b - j0]
                    o15 = blx[a - j0 : b - j0]
                    o16 = blg[a - j0 : b - j0]
                    for i in range(m):
                        v = u1(c0[i])
                        res = _residual(v, u0[i], d0[i], cl[i], cr[i], u1)
                        # numba widens integer arithmetic to int64; casting every result back to
                        # the buffer's type lets LLVM keep narrow lanes (16 or 32 bits, not 64)
                        o1[i] = t1(o1[i] + t1(v))
                        o2[i] = t2(o2[i] + t2(t2(v) * t2(v)))
                        o3[i] = u1(o3[i] + u1(res))
                        o4[i] = u2(o4[i] + u2(u2(res) * u2(res)))
                        if counts is not None:  # resolved at compile time: no counts, no code
                            above, below = _beyond(v, u0[i], d0[i], cl[i], cr[i], u1)
                            o5[i] = tc(o5[i] + tc(above))
                            o6[i] = tc(o6[i] + tc(below))
                            if mf0 is not None and (above | below):
                                _keep_first(bf0, bf1, bf2, bf3, a - j0 + i, dayf)
                            if mlx is not None:
                                o15[i] = o15[i] + np.int32(above | below) * lxf
                                o16[i] = o16[i] + np.int32(above | below) * lgf
                        if mxr is not None:  # the exposure fit: a clipped sensel is left out
                            cl_ = u1(v >= clip_at)
                            ho_ = u1(0)
                            if cl_ == 0 and _hole(v, u0[i], d0[i], cl[i], cr[i], black, hole_floor, u1):
                                ho_ = u1(1)
                            o7[i] = o7[i] + np.int64(1 - cl_ - ho_) * xf * np.int64(res)
                            o8[i] = o8[i] + np.int16(cl_)
                            o9[i] = o9[i] + np.int32(cl_) * np.int32(res)
                            o11[i] = o11[i] + np.int64(cl_) * xf
                            o12[i] = o12[i] + np.int64(cl_) * xq
                            o13[i] = o13[i] + np.int16(ho_)
                            o14[i] = o14[i] + np.int32(ho_) * np.int32(res)
                        if sketch is not None:
                            if _spike(v, u0[i], d0[i], cl[i], cr[i], spike_floor, u1):
                                _mark(sketch, f, row_at + a + i)
                # edge columns (reflected): at most `stride` columns on each side of the row
                for e in range(2):
                    ea = j0 if e == 0 else max(j0, hi)
                    eb = min(j1, lo) if e == 0 else j1
                    for j in range(ea, eb):
                        x = j // channels
                        c = j - x * channels
                        v = u1(cen[j])
                        jl = left[x] * channels + c
                        jr = right[x] * channels + c
                        res = _residual(v, up[j], down[j], cen[jl], cen[jr], u1)
                        i = j - j0
                        bv1[i] = t1(bv1[i] + t1(v))
                        bv2[i] = t2(bv2[i] + t2(t2(v) * t2(v)))
                        br1[i] = u1(br1[i] + u1(res))
                        br2[i] = u2(br2[i] + u2(u2(res) * u2(res)))
                        if counts is not None:
                            above, below = _beyond(v, up[j], down[j], cen[jl], cen[jr], u1)
                            bhi[i] = tc(bhi[i] + tc(above))
                            blo[i] = tc(blo[i] + tc(below))
                            if mf0 is not None and (above | below):
                                _keep_first(bf0, bf1, bf2, bf3, i, dayf)
                            if mlx is not None:
                                blx[i] = blx[i] + np.int32(above | below) * lxf
                                blg[i] = blg[i] + np.int32(above | below) * lgf
                        if mxr is not None:
                            cl_ = u1(v >= clip_at)
                            ho_ = u1(0)
                            if cl_ == 0 and _hole(v, up[j], down[j], cen[jl], cen[jr], black, hole_floor, u1):
                                ho_ = u1(1)
                            bxr[i] = bxr[i] + np.int64(1 - cl_ - ho_) * xf * np.int64(res)
                            bexc[i] = bexc[i] + np.int16(cl_)
                            bexs[i] = bexs[i] + np.int32(cl_) * np.int32(res)
                            bexx[i] = bexx[i] + np.int64(cl_) * xf
                            bexq[i] = bexq[i] + np.int64(cl_) * xq
                            bhol[i] = bhol[i] + np.int16(ho_)
                            bhos[i] = bhos[i] + np.int32(ho_) * np.int32(res)
                        if sketch is not None:
                            if _spike(v, up[j], down[j], cen[jl], cen[jr], spike_floor, u1):
                                _mark(sketch, f, row_at + j)
            a1 = s1[0, r, j0:j1]
            a2 = s2[0, r, j0:j1]
            a3 = s1[1, r, j0:j1]
            a4 = s2[1, r, j0:j1]
            for i in range(n):
                a1[i] = w1(a1[i] + w1(bv1[i]))
                a2[i] = w2(a2[i] + w2(bv2[i]))
                a3[i] = w1(a3[i] + w1(br1[i]))
                a4[i] = w2(a4[i] + w2(br2[i]))
            if counts is not None:
                a5 = counts[0, r, j0:j1]
                a6 = counts[1, r, j0:j1]
                wc = counts.dtype.type
                for i in range(n):
                    a5[i] = wc(a5[i] + wc(bhi[i]))
                    a6[i] = wc(a6[i] + wc(blo[i]))
            if mxr is not None:
                a7 = mxr[r, j0:j1]
                a8 = mexc[r, j0:j1]
                a9 = mexs[r, j0:j1]
                a11 = mexx[r, j0:j1]
                a12 = mexq[r, j0:j1]
                a13 = mhol[r, j0:j1]
                a14 = mhos[r, j0:j1]
                w8 = mexc.dtype.type
                w9 = mexs.dtype.type
                for i in range(n):
                    a7[i] = a7[i] + bxr[i]
                    a8[i] = w8(a8[i] + w8(bexc[i]))
                    a9[i] = w9(a9[i] + w9(bexs[i]))
                    a11[i] = a11[i] + bexx[i]
                    a12[i] = a12[i] + bexq[i]
                    a13[i] = w8(a13[i] + w8(bhol[i]))
                    a14[i] = w9(a14[i] + w9(bhos[i]))
            if mf0 is not None:
                a17 = mf0[r, j0:j1]
                a18 = mf1[r, j0:j1]
                a19 = mf2[r, j0:j1]
                a20 = mf3[r, j0:j1]
                for i in range(n):
                    if bf0[i] < a20[i]:  # the chunk's earliest days into the partition's
                        _keep_first(a17, a18, a19, a20, i, bf0[i])
                        _keep_first(a17, a18, a19, a20, i, bf1[i])
                        _keep_first(a17, a18, a19, a20, i, bf2[i])
                        _keep_first(a17, a18, a19, a20, i, bf3[i])
            if mlx is not None:
                a15 = mlx[r, j0:j1]
                a16 = mlg[r, j0:j1]
                w15 = mlx.dtype.type
                for i in range(n):
                    a15[i] = w15(a15[i] + w15(blx[i]))
                    a16[i] = w15(a16[i] + w15(blg[i]))


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

