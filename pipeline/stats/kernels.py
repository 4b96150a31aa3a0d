"""Numba kernels for the hot loops of ``stats.py``. Private: call them through ``stats.accumulate``.

``accumulate_rows`` adds a block of k frames to the exact integer sums of both streams (the
value and its residual 4*v - up - down - left - right at distance ``stride``) and to the
counts of frames in which a sensel lies beyond its 4 same-colour neighbours and its frame's
noise (``noise_bars``), in one pass over the accumulators. The work is memory-bandwidth bound,
so the loop order is chosen for memory traffic, not arithmetic:

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
- the physics model's sums (``model.py``) are taken from per-sensel event bits of each frame in
  loops of their own, each writing a few arrays: one loop writing twenty kept LLVM from
  vectorising (it gives up on the runtime alias checks), and so did any data-dependent branch.
  Those loops are branch-free (choices are 0/1 factors, the earliest days a min/max network),
  and a loop whose event no sensel of the run had is skipped. The helpers are plain numba
  functions, inlined by LLVM: numba's own ``inline="always"`` kept the loops scalar. On 12 MP
  14-bit frames with every model sum, 165 ms per frame became about 40 (17 without the model),
  with the same sums to the bit.

The float64 steps at partition boundaries (``to_stats_rows``, ``merge_flat``) and the merge of
the earliest days live in ``fold_kernels``; this module re-exports them, so ``fused.kernels()``
is the one handle to every kernel.

Compiled lazily on first use for each (frame dtype, buffer dtypes, layout) and cached on disk
(``numba_cache.py`` says where).
"""

from __future__ import annotations

import numpy as np

from .fold_kernels import earliest_of_both, keep_first, merge_flat, to_stats_rows
from .model import COARSE_HALF, COARSE_SHIFT, NO_DAY, SKETCH_LOG2, SKETCH_MULTIPLIER
from .numba_cache import jit

__all__ = ["CHUNK", "accumulate_rows", "earliest_of_both", "merge_flat", "to_stats_rows"]

# values per row chunk: 4 buffers of CHUNK elements (int32: 16 KiB, int64: 32 KiB) stay in L1/L2
CHUNK = 1024



@jit(nogil=True)
def _residual(v, up, down, left, right, t):
    """4*v - up - down - left - right in the work type ``t``: int16 for uint8 input (|result| <=
    1020), int32 for uint16 (<= 4*65535). Every step is cast back to ``t``, because numba widens
    integer arithmetic to int64, and narrow lanes are what LLVM vectorises widest."""
    return t(t(t(t(t(v << 2) - t(up)) - t(down)) - t(left)) - t(right))


@jit(nogil=True)
def _ring(v, res, up, down, left, right, t):
    """The 4 same-colour neighbours' max and min, and 4 (v - the mean of the middle two), in the
    work type ``t``: from ``res`` = 4v - the 4, 4v - 2 (middle two) = 2 res + 2 max + 2 min - 4v."""
    a, b, c, d = t(up), t(down), t(left), t(right)
    mx = max(max(a, b), max(c, d))
    mn = min(min(a, b), min(c, d))
    return mx, mn, t(t(t(t(res << 1) + t(mx << 1)) + t(mn << 1)) - t(v << 2))


@jit(nogil=True)
def _beyond_bar(v, res, bar, up, down, left, right, t):
    """(1, 0) if v lies above all 4 same-colour neighbours, and 4 (v - the mean of the middle two)
    above ``bar`` (the frame's local noise, ``noise_bars``); (0, 1) if below all and under -bar;
    else (0, 0); in the work type ``t``. The middle two: a defect next to the sensel (a dead one
    reads black, a hot one white) is the minimum or the maximum, and does not lift it past the bar
    (``_ring``). A clipped area, where all five are equal, never counts."""
    mx, mn, mid = _ring(v, res, up, down, left, right, t)
    return t((v > mx) & (mid > bar)), t((v < mn) & (mid < t(-bar)))


@jit(nogil=True)
def _far_beyond(v, res, high, apart, up, down, left, right, t):
    """The strong counts' test (``model.STRONG_COUNTS``), as ``_beyond_bar``'s with ``high`` (the
    bar times ``model.STRONG_BARS``) for the bar, and beyond the nearest neighbour by ``apart``
    times the 4's range: a sensel apart from a flat neighbourhood, not the peak of the scene's
    texture. Tested only where the main loop found a sensel beyond the bar (``_count_far``), which
    every strong one is."""
    mx, mn, mid = _ring(v, res, up, down, left, right, t)
    spread = t(t(mx - mn) * t(apart))
    return (t((v > mx) & (mid > high) & (t(v - mx) > spread)),
            t((v < mn) & (mid < t(-high)) & (t(mn - v) > spread)))


@jit(nogil=True)
def _inverse_lines(bbar, scale, out):
    """``scale`` over each bar of ``bbar`` (``_bar_lines``), in float32, into ``out``: the across
    sums' factor (``model.across_terms`` divides the same way)."""
    for f in range(out.shape[0]):
        for p in range(out.shape[1]):
            for j in range(out.shape[2]):
                out[f, p, j] = np.float32(scale) / np.float32(bbar[f, p, j])


@jit(nogil=True)
def _across(a, inverse, limit):
    """One frame's term of an across sum (``model.across_terms``): ``a`` times ``inverse`` (the
    scale over the bar) in float32, rounded to the nearest even, clipped at +-``limit``."""
    q = np.rint(np.float32(a) * inverse)
    return np.int32(min(max(q, np.float32(-limit)), np.float32(limit)))


EVENT_BYTES = np.uint64(0x0101010101010101)  # bit 0 of each of 8 event flags read as one word


@jit(nogil=True)
def _events_of(flags, m):
    """The events of any of ``flags[:m]`` (OR of their bits), 8 flags at a time: an OR kept in
    the main loop stopped LLVM vectorising it (8-bit RGB: 49 -> 40 ms per 6 MP frame)."""
    words = m // 8
    packed = flags[: words * 8].view(np.uint64)
    acc = np.uint64(0)
    for w in range(words):
        acc |= packed[w]
    for i in range(words * 8, m):
        acc |= np.uint64(flags[i])
    acc |= acc >> np.uint64(32)
    acc |= acc >> np.uint64(16)
    acc |= acc >> np.uint64(8)
    return np.uint8(acc & np.uint64(0xFF))


@jit(nogil=True)
def _count_far(above, below, i, c0, u0, d0, cl, cr, bl, strong, apart, u1, tc):
    """Add sensel ``i``'s strong events of this frame (``_far_beyond``) to its strong counts."""
    v = u1(c0[i])
    res = _residual(v, u0[i], d0[i], cl[i], cr[i], u1)
    far_above, far_below = _far_beyond(v, res, u1(bl[i] * u1(strong)), apart, u0[i], d0[i], cl[i], cr[i], u1)
    above[i] = tc(above[i] + tc(far_above))
    below[i] = tc(below[i] + tc(far_below))


@jit(nogil=True)
def _bar_lines(bars, rb, block, stride, channels, width, out):
    """The bars of block row ``rb`` laid out along image rows: ``out[f, p, j]`` is frame f's bar
    for flat position j (channels interleaved) of a row of parity p (its colour row)."""
    for f in range(out.shape[0]):
        for p in range(stride):
            for x in range(width):
                bx = x // block
                colour = (p * stride + x % stride) * channels
                for c in range(channels):
                    out[f, p, x * channels + c] = bars[f, rb, bx, colour + c]


@jit(nogil=True)
def _spike(v, up, down, left, right, floor, t):
    """True if v stands above its 4 same-colour neighbours' maximum by at least ``floor`` and by
    more than 3 times their range (a lit hot sensel; noise and scene edges almost never do)."""
    mx = max(max(t(up), t(down)), max(t(left), t(right)))
    mn = min(min(t(up), t(down)), min(t(left), t(right)))
    d = t(t(v) - mx)
    return (d >= floor) & (d > t(t(mx - mn) * t(3)))


@jit(nogil=True)
def _hole(v, up, down, left, right, black, floor, t):
    """True if v reads at or below ``black`` while all 4 same-colour neighbours stand at least
    ``floor`` above it: a sensel that clipped at the black level, as a hot one that saturated
    does in a dark-subtracted frame (a scene's own dark detail is wider than one sensel)."""
    mn = min(min(t(up), t(down)), min(t(left), t(right)))
    return (t(v) <= black) & (t(mn - t(v)) >= floor)


@jit(nogil=True)
def _day_if(event, day):
    """``day`` where ``event`` is 1, ``NO_DAY`` (all ones) where 0, without a branch."""
    return np.uint16(day | np.uint16(np.int32(event) - np.int32(1)))


@jit(nogil=True)
def _fit_step(xr, exc, exs, exx, exq, hol, hos, i, v, res, clip_at, xf, xq, hole, t):
    """One sensel's exposure-fit sums of one frame, at index i: a sensel at or above ``clip_at``
    is left out of the fit (counted in ``exc``, with its 4r, x and coarse x^2), one that reads
    black among brighter neighbours (``hole``, unless clipped) too (``hol``, ``hos``); the rest
    add x*4r to ``xr``. Branch-free: the choices are 0/1 factors."""
    cl_ = t(v >= clip_at)
    ho_ = t(t(1 - cl_) & t(hole))
    xr[i] = xr[i] + np.int64(1 - cl_ - ho_) * xf * np.int64(res)
    exc[i] = np.int16(exc[i] + np.int16(cl_))
    exs[i] = np.int32(exs[i] + np.int32(cl_) * np.int32(res))
    exx[i] = exx[i] + np.int64(cl_) * xf
    exq[i] = exq[i] + np.int64(cl_) * xq
    hol[i] = np.int16(hol[i] + np.int16(ho_))
    hos[i] = np.int32(hos[i] + np.int32(ho_) * np.int32(res))


@jit(nogil=True)
def _add_pair(a, b, buf_a, buf_b, n):
    """Add a chunk's row-local buffers to two accumulators of the same type (a pair of counts or sums)."""
    w = a.dtype.type
    for i in range(n):
        a[i] = w(a[i] + w(buf_a[i]))
        b[i] = w(b[i] + w(buf_b[i]))


@jit(nogil=True)
def _mark(bits, f, position):
    """Set the sketch bit of flat sensel ``position`` in frame ``f``'s row of ``bits`` (``model.sketch_bit``)."""
    b = ((np.uint64(position) * np.uint64(SKETCH_MULTIPLIER)) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - SKETCH_LOG2)
    bits[f, b >> np.uint64(6)] |= np.uint64(1) << (b & np.uint64(63))


@jit(nogil=True)
def accumulate_rows(lines, frame_step, k, rows_c, rows_u, rows_d, s1, s2, counts, stride, channels, left, right,
                    bv1, bv2, br1, br2, bhi, blo, factors, days, logx, logg, white, black, mxr, mexc, mexs, mexx,
                    mexq, mhol, mhos, mlx, mlg, mf0, mf1, mf2, mf3, msa, msb, sketch, spike_floor, hole_floor, bxr,
                    bexc, bexs, bexx, bexq, bhol, bhos, blx, blg, bf0, bf1, bf2, bf3, bsa, bsb, bfl, bres, bars, block,
                    row0, bbar, strong, apart, mcx, mcy, bcx, bcy, across_scale, across_limit, binv):
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
    counts of frames beyond the 4 same-colour neighbours and the frame's local noise
    (``_beyond_bar``: ``bars`` (k, block rows, block columns, colours) int32 from
    ``noise_bars``, blocks ``block`` pixels a side; ``row0`` the image row of ``lines``' row 0,
    -pad rows for a block with halo rows; ``bbar`` (k, stride, W*C) in ``br1``'s type, scratch:
    the bars of the current block row along the row). ``br1``'s
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
    neighbours (they need ``counts``): ``mlx`` and ``mlg`` the sums of ``logx[f]`` and
    ``logg[f]`` (the frame's log exposure factor and log gain, ``model.log_factor``), and
    ``mf0..mf3`` (uint16) the 4 earliest ``days[f]``, in order (``model.NO_DAY`` for none);
    ``msa``, ``msb`` the counts of frames beyond ``strong`` times the bar above and below, and
    ``apart`` times the neighbours' range (``model.STRONG_COUNTS``; they need ``counts`` too).
    ``bxr, bexc, bexs, bexx, bexq, bhol, bhos, blx, blg, bf0..bf3, bsa, bsb`` are their row-local
    buffers (int64, int16, int32, int64, int64, int16, int32, int32, int32, uint16 x 4, int16 x 2;
    always given, used only with their sum); ``bfl`` (uint8) and ``bres`` (``br1``'s type) the chunk's events
    and residuals of one frame, for the model's loops. ``sketch`` (k, words) uint64, or None, gains per frame the bits
    of its sensels that stand out as a lit hot sensel does (``_spike``, by at least
    ``spike_floor``; ``_mark``): where the hot sensels of a stack do not, the camera subtracted
    a dark frame (``dark_subtraction``). ``mcx``, ``mcy`` (rows, W*C) int32, or None (they need
    ``counts``), take the across sums (``model.ACROSS_SUMS``): per frame, 2v minus the left and right
    (``mcx``) or the upper and lower (``mcy``) same-colour neighbours, times ``across_scale`` over
    the bar, rounded and clipped at +-``across_limit`` (``_across``); ``bcx``, ``bcy`` (int32) their
    row-local buffers, ``binv`` (float32, ``bbar``'s shape) scratch: that scale over the bars of the
    current block row (one division per sensel and block row, not per frame).
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
    width = length // channels
    lined = -1  # the block row whose bars ``bbar`` holds
    for r in range(rows):
        y_img = rows_c[r] + row0
        parity = y_img % stride
        if counts is not None and y_img // block != lined:
            lined = y_img // block
            _bar_lines(bars, lined, block, stride, channels, width, bbar)
            if mcx is not None:
                _inverse_lines(bbar, across_scale, binv)
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
            if msa is not None:
                for i in range(n):
                    bsa[i] = 0
                    bsb[i] = 0
            if mcx is not None:
                for i in range(n):
                    bcx[i] = 0
                    bcy[i] = 0
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
                    o17 = bf0[a - j0 : b - j0]
                    o18 = bf1[a - j0 : b - j0]
                    o19 = bf2[a - j0 : b - j0]
                    o20 = bf3[a - j0 : b - j0]
                    o21 = bsa[a - j0 : b - j0]
                    o22 = bsb[a - j0 : b - j0]
                    o23 = bcx[a - j0 : b - j0]
                    o24 = bcy[a - j0 : b - j0]
                    fl = bfl[a - j0 : b - j0]
                    rr = bres[a - j0 : b - j0]
                    bl = bbar[f, parity, a:b]
                    bi = binv[f, parity, a:b]
                    for i in range(m):
                        v = u1(c0[i])
                        res = _residual(v, u0[i], d0[i], cl[i], cr[i], u1)
                        # numba widens integer arithmetic to int64; casting every result back to
                        # the buffer's type lets LLVM keep narrow lanes (16 or 32 bits, not 64)
                        o1[i] = t1(o1[i] + t1(v))
                        o2[i] = t2(o2[i] + t2(t2(v) * t2(v)))
                        o3[i] = u1(o3[i] + u1(res))
                        o4[i] = u2(o4[i] + u2(u2(res) * u2(res)))
                        # the model's per-sensel events of this frame, as bits of ``fl`` for the
                        # loops below (no branch here but those numba resolves at compile time)
                        bits = np.uint8(0)
                        if counts is not None:
                            above, below = _beyond_bar(v, res, bl[i], u0[i], d0[i], cl[i], cr[i], u1)
                            o5[i] = tc(o5[i] + tc(above))
                            o6[i] = tc(o6[i] + tc(below))
                            bits = np.uint8(above | below)
                        if mxr is not None:
                            clipped = np.uint8(v >= clip_at)
                            hole = np.uint8(_hole(v, u0[i], d0[i], cl[i], cr[i], black, hole_floor, u1))
                            bits = np.uint8(bits | (clipped << 1) | ((hole & (1 - clipped)) << 2))
                            rr[i] = res
                        if sketch is not None:
                            lit = np.uint8(_spike(v, u0[i], d0[i], cl[i], cr[i], spike_floor, u1))
                            bits = np.uint8(bits | (lit << 3))
                        fl[i] = bits
                    seen = _events_of(fl, m)  # of any sensel of the run: a loop for none is skipped
                    # each model sum in a loop of its own: a loop that writes few arrays is one
                    # LLVM vectorises (it gives up on the runtime alias checks of many)
                    if msa is not None and seen & 1:  # a strong frame is one beyond the bar
                        # a few sensels in ten thousand are: found 8 flags at a time, tested where they are
                        words = m // 8
                        packed = fl[: words * 8].view(np.uint64)
                        for w in range(words):
                            if packed[w] & EVENT_BYTES:
                                for i in range(w * 8, w * 8 + 8):
                                    if fl[i] & 1:
                                        _count_far(o21, o22, i, c0, u0, d0, cl, cr, bl, strong, apart, u1, tc)
                        for i in range(words * 8, m):
                            if fl[i] & 1:
                                _count_far(o21, o22, i, c0, u0, d0, cl, cr, bl, strong, apart, u1, tc)
                    if mcx is not None:  # every sensel, every frame: a loop of its own, float32 lanes
                        for i in range(m):
                            two = u1(u1(c0[i]) << 1)
                            o23[i] = np.int32(o23[i] + _across(u1(u1(two - u1(cl[i])) - u1(cr[i])), bi[i],
                                                               across_limit))
                            o24[i] = np.int32(o24[i] + _across(u1(u1(two - u1(u0[i])) - u1(d0[i])), bi[i],
                                                               across_limit))
                    if mf0 is not None and seen & 1:
                        for i in range(m):
                            keep_first(o17, o18, o19, o20, i, _day_if(fl[i] & 1, dayf))
                    if mlx is not None and seen & 1:
                        for i in range(m):
                            ab = np.int32(fl[i] & 1)
                            o15[i] = np.int32(o15[i] + ab * lxf)
                            o16[i] = np.int32(o16[i] + ab * lgf)
                    if mxr is not None and seen & 6 == 0:
                        for i in range(m):
                            o7[i] = o7[i] + xf * np.int64(rr[i])
                    elif mxr is not None:
                        for i in range(m):
                            o7[i] = o7[i] + np.int64(1 - ((fl[i] >> 1) & 1) - ((fl[i] >> 2) & 1)) * xf * np.int64(rr[i])
                    if mxr is not None and seen & 2:
                        for i in range(m):
                            c_ = (fl[i] >> 1) & 1
                            o8[i] = np.int16(o8[i] + np.int16(c_))
                            o9[i] = np.int32(o9[i] + np.int32(c_) * np.int32(rr[i]))
                            o11[i] = o11[i] + np.int64(c_) * xf
                            o12[i] = o12[i] + np.int64(c_) * xq
                    if mxr is not None and seen & 4:
                        for i in range(m):
                            h_ = (fl[i] >> 2) & 1
                            o13[i] = np.int16(o13[i] + np.int16(h_))
                            o14[i] = np.int32(o14[i] + np.int32(h_) * np.int32(rr[i]))
                    if sketch is not None and seen & 8:  # the rare lit hot sensels, outside the vector loops
                        for i in range(m):
                            if fl[i] & 8:
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
                            above, below = _beyond_bar(v, res, bbar[f, parity, j], up[j], down[j], cen[jl], cen[jr],
                                                       u1)
                            bhi[i] = tc(bhi[i] + tc(above))
                            blo[i] = tc(blo[i] + tc(below))
                            if msa is not None:
                                far_above, far_below = _far_beyond(v, res, u1(bbar[f, parity, j] * u1(strong)), apart,
                                                                   up[j], down[j], cen[jl], cen[jr], u1)
                                bsa[i] = tc(bsa[i] + tc(far_above))
                                bsb[i] = tc(bsb[i] + tc(far_below))
                            if mf0 is not None:
                                keep_first(bf0, bf1, bf2, bf3, i, _day_if(above | below, dayf))
                            if mlx is not None:
                                blx[i] = np.int32(blx[i] + np.int32(above | below) * lxf)
                                blg[i] = np.int32(blg[i] + np.int32(above | below) * lgf)
                            if mcx is not None:
                                inverse = binv[f, parity, j]
                                two = u1(v << 1)
                                bcx[i] = np.int32(bcx[i] + _across(u1(u1(two - u1(cen[jl])) - u1(cen[jr])), inverse,
                                                                   across_limit))
                                bcy[i] = np.int32(bcy[i] + _across(u1(u1(two - u1(up[j])) - u1(down[j])), inverse,
                                                                   across_limit))
                        if mxr is not None:
                            _fit_step(bxr, bexc, bexs, bexx, bexq, bhol, bhos, i, v, res, clip_at, xf, xq,
                                      _hole(v, up[j], down[j], cen[jl], cen[jr], black, hole_floor, u1), u1)
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
                _add_pair(counts[0, r, j0:j1], counts[1, r, j0:j1], bhi, blo, n)
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
                        keep_first(a17, a18, a19, a20, i, bf0[i])
                        keep_first(a17, a18, a19, a20, i, bf1[i])
                        keep_first(a17, a18, a19, a20, i, bf2[i])
                        keep_first(a17, a18, a19, a20, i, bf3[i])
            if mlx is not None:
                _add_pair(mlx[r, j0:j1], mlg[r, j0:j1], blx, blg, n)
            if msa is not None:
                _add_pair(msa[r, j0:j1], msb[r, j0:j1], bsa, bsb, n)
            if mcx is not None:
                _add_pair(mcx[r, j0:j1], mcy[r, j0:j1], bcx, bcy, n)
