"""Adding frames to a partition's exact sums: the residual, the range counts, the edges.

The range counts count the frames in which a sensel stood beyond all its same-colour
neighbours and its frame's local noise (``noise_bars``).

``accumulate`` is the one entry point. uint8 and uint16 frames go through a fused numba kernel
(``kernels.accumulate_rows``): one pass over the accumulators per block of frames, no
temporaries. Other dtypes, or a machine without numba, take ``accumulate_numpy``, the
reference; both give bit-identical sums.
"""

from __future__ import annotations

import numpy as np

from . import noise_bars
from .fused import SUM_DTYPES, kernels, read_only
from .model import (
    ACROSS_LIMIT,
    ACROSS_SCALE,
    ACROSS_SUMS,
    FIRST_DAYS,
    NO_DAY,
    NO_FACTOR,
    STRONG_APART,
    STRONG_BARS,
    STRONG_COUNTS,
    FrameTerms,
    across_terms,
    coarse_square,
    hole_floor,
    log_factor,
    sketch_bit,
    spike_floor,
)
from .moments import STREAMS, PixelStats
from .sums import IntegerSums


def row_neighbours(height: int, stride: int, pad_rows: int = 0, rows: tuple[int, int] | None = None):
    """(centre, up, down) row indices of the output rows of a block ``height`` rows high.

    With ``pad_rows`` > 0 the block carries that many halo rows above and below its core;
    with 0 it is whole frames and the neighbours reflect at the edge (row -1 -> row 1, which
    keeps CFA row parity; a frame too short to have a same-colour neighbour uses the row
    itself). ``rows`` = (y0, y1) restricts the output to those rows of whole frames.
    """
    if pad_rows:
        if pad_rows < stride:
            raise ValueError(f"need at least {stride} halo rows for stride {stride}, got {pad_rows}")
        centre = np.arange(pad_rows, height - pad_rows)
        return centre, centre - stride, centre + stride
    y0, y1 = rows if rows is not None else (0, height)
    centre = np.arange(y0, y1)
    return (centre, *_reflected(centre, height, stride))


def _reflected(centre: np.ndarray, size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The neighbours at centre -/+ stride along an axis of ``size``; beyond an end, the one on
    the other side (the same colour's plane reflected about the sensel: in a mosaic, row 1's
    neighbour above is row 3, not itself); an axis too short to have one gives the centre
    itself. Rows and columns alike."""
    below, above = centre - stride, centre + stride
    up = np.where(below >= 0, below, np.where(above < size, above, centre))
    down = np.where(above < size, above, np.where(below >= 0, below, centre))
    return up, down


def accumulate(sums: IntegerSums, frames: np.ndarray, stride: int, pad_rows: int = 0,
               rows: tuple[int, int] | None = None, terms: FrameTerms | None = None,
               sketch: np.ndarray | None = None, bars: np.ndarray | None = None) -> IntegerSums:
    """Add a block of frames to the integer sums in place.

    ``frames`` is (k, rows + 2*pad_rows, W[, C]) with halo rows, or, with ``pad_rows`` 0,
    whole frames (k, H, W[, C]) of which ``rows`` = (y0, y1) (default: all) are added; their
    edge rows reflect without a padded copy (``row_neighbours``).

    uint8 and uint16 frames go through a fused numba kernel (``kernels.accumulate_rows``): one
    pass over the accumulators per block, no temporaries. Other dtypes, or a machine without
    numba, take ``accumulate_numpy``; both give bit-identical sums.

    Where ``sums`` keep the physics model's sums (``sums.extra``), ``terms`` gives each frame's
    exposure factor and capture day, and the level at which a sensel clips (``model.FrameTerms``).
    ``sketch`` ((k, ``model.SKETCH_WORDS``) uint64, whole frames only), if given, gains the bits
    of the rows' sensels that stand out of their neighbours as a lit hot sensel does
    (``model.spike_floor``, ``model.sketch_bit`` of the sensel's flat index in the frame).

    The range counts need each frame's noise bars (``noise_bars.bars`` of the whole frames):
    ``bars`` gives them, computed once for the tiles of a batch; without it they are computed
    here, from the frames (from a block's core rows, with ``pad_rows``).
    """
    if sums.extra and (terms is None or len(terms.factors) != len(frames)):
        raise ValueError("these sums keep the model's: give each frame's terms")
    index = row_neighbours(np.shape(frames)[1], stride, pad_rows, rows)
    if sketch is not None and (terms is None or len(sketch) != len(frames) or pad_rows):
        raise ValueError("a sketch needs one row per frame of whole frames, and the frames' terms (for the floor)")
    if sums.counts is not None and bars is None:
        bars = frame_bars(frames, stride, -pad_rows)
    if not accumulate_fused(sums, frames, stride, index, terms, sketch, bars, -pad_rows):
        accumulate_numpy(sums, frames, stride, index, terms, sketch, bars, -pad_rows)
    sums.n += len(frames)
    return sums


def accumulate_numpy(sums: IntegerSums, frames: np.ndarray, stride: int, index,
                     terms: FrameTerms | None = None, sketch: np.ndarray | None = None,
                     bars: np.ndarray | None = None, row0: int = 0) -> IntegerSums:
    """Reference implementation (frame by frame, int64 temporaries); does not touch ``sums.n``.

    ``index`` is ``row_neighbours``' (centre, up, down) rows; the sums keep their own dtype;
    ``bars`` the frames' noise bars (``noise_bars.bars``), where the sums keep range counts
    (computed here from the frames if not given), and ``row0`` the image row of the block's row 0.
    """
    rows_c, rows_u, rows_d = index
    width = np.shape(frames)[2]
    left, right = neighbour_columns(width, stride)
    extra = sums.extra
    bar_at = None
    if sums.counts is not None:
        if bars is None:
            bars = frame_bars(frames, stride, row0)
        channels = np.shape(frames)[3] if np.ndim(frames) == 4 else 1
        bar_at = noise_bars.bar_map(bars, np.asarray(rows_c) + row0, width, stride, channels)
    for i, frame in enumerate(frames):
        f = frame.astype(np.int64)
        v = f[rows_c]
        neighbours = (f[rows_u], f[rows_d], v[:, left], v[:, right])  # the same-colour 4, reflected at the edges
        r4 = 4 * v - neighbours[0] - neighbours[1] - neighbours[2] - neighbours[3]
        for s, x in enumerate((v, r4)):
            sums.s1[s] = (sums.s1[s] + x).astype(sums.s1.dtype)
            sums.s2[s] = (sums.s2[s] + x * x).astype(sums.s2.dtype)
        if sums.counts is not None and bar_at is not None:
            bar = bar_at[i].reshape(v.shape)
            above, below = _beyond(v, bar, neighbours)
            for s, beyond in enumerate((above, below)):
                sums.counts[s] += beyond.astype(sums.counts.dtype)
            if STRONG_COUNTS[0] in extra:
                top, bottom = np.max(neighbours, axis=0), np.min(neighbours, axis=0)
                spread = STRONG_APART * (top - bottom)
                far = _beyond(v, STRONG_BARS * bar, neighbours)
                for name, beyond, apart in zip(STRONG_COUNTS, far, (v - top > spread, bottom - v > spread)):
                    extra[name] += (beyond & apart).astype(extra[name].dtype)
            if ACROSS_SUMS[0] in extra:
                up, down, left_of, right_of = neighbours
                extra["across_x"] += across_terms(2 * v - left_of - right_of, bar)
                extra["across_y"] += across_terms(2 * v - up - down, bar)
            if FIRST_DAYS[0] in extra and terms is not None:
                day = np.where(above | below, int(terms.days[i]), NO_DAY).astype(np.uint16)
                first = np.sort(np.stack([extra[k] for k in FIRST_DAYS] + [day]), axis=0)
                for j, k in enumerate(FIRST_DAYS):
                    extra[k][...] = first[j]
            if "beyond_logx" in extra and terms is not None:
                extra["beyond_logx"] += ((above | below) * int(frame_logx(terms)[i])).astype(extra["beyond_logx"].dtype)
                extra["beyond_logg"] += ((above | below) * int(frame_logg(terms)[i])).astype(extra["beyond_logg"].dtype)
        if "xr" in extra and terms is not None:
            factor = int(terms.factors[i])
            out = np.ones(v.shape, bool) if factor == NO_FACTOR else v >= terms.white
            extra["xr"] += np.where(out, 0, max(factor, 0) * r4).astype(extra["xr"].dtype)
            extra["excluded"] += out.astype(extra["excluded"].dtype)
            extra["excluded_sum"] += np.where(out, r4, 0).astype(extra["excluded_sum"].dtype)
            x = max(factor, 0)
            extra["excluded_x"] += (out * x).astype(extra["excluded_x"].dtype)
            extra["excluded_xx"] += (out * int(coarse_square(x))).astype(extra["excluded_xx"].dtype)
            gap = np.min(neighbours, axis=0) - v
            hole = ~out & (v <= terms.black) & (gap >= hole_floor(terms.white))
            extra["xr"] -= np.where(hole, max(factor, 0) * r4, 0).astype(extra["xr"].dtype)
            extra["holes"] += hole.astype(extra["holes"].dtype)
            extra["holes_sum"] += np.where(hole, r4, 0).astype(extra["holes_sum"].dtype)
        if sketch is not None and terms is not None:
            top, bottom = np.max(neighbours, axis=0), np.min(neighbours, axis=0)
            d = v - top
            hit = (d >= spike_floor(terms.white)) & (d > 3 * (top - bottom))
            flat_rows = hit.reshape(len(rows_c), -1)
            rows_at, cols = np.nonzero(flat_rows)
            bits = sketch_bit(rows_c[rows_at].astype(np.int64) * flat_rows.shape[1] + cols)
            np.bitwise_or.at(sketch[i], (bits >> np.uint64(6)).astype(np.intp),
                             np.uint64(1) << (bits & np.uint64(63)))
    return sums


def frame_bars(frames: np.ndarray, stride: int, row0: int = 0) -> np.ndarray:
    """The noise bars of the frames of a block: of its rows from -``row0`` to as many from the end
    (a block with halo rows: its core), taken as whole frames."""
    return noise_bars.bars(frames[:, -row0 : np.shape(frames)[1] + row0] if row0 else frames, stride)


def frame_logx(terms: FrameTerms) -> np.ndarray:
    """The frames' log exposure factors (int32), as the terms give them or from their factors."""
    return np.asarray(terms.logx if terms.logx is not None else log_factor(terms.factors), np.int32)


def frame_logg(terms: FrameTerms) -> np.ndarray:
    """The frames' log gains (int32; 0, ISO 100, where the terms have none)."""
    return np.asarray(terms.logg if terms.logg is not None else np.zeros(len(terms.factors)), np.int32)


def _beyond(v: np.ndarray, bar: np.ndarray, neighbours) -> tuple[np.ndarray, np.ndarray]:
    """Whether each sensel lies above / below all 4 same-colour neighbours, with 4 (v - the mean of
    the middle two of them) beyond its frame's noise bar (``noise_bars``; ``kernels._beyond_bar``)."""
    top, bottom = np.max(neighbours, axis=0), np.min(neighbours, axis=0)
    mid = 4 * v - 2 * (sum(neighbours) - top - bottom)
    return (v > top) & (mid > bar), (v < bottom) & (mid < -bar)


# Row-local buffer types of the fused kernel, per frame dtype: (v, v*v, r, r*r, the two counts),
# and the most frames one kernel call may add before a buffer could overflow. r's type is also
# the kernel's work type for the residual and the range test. |r| <= 4*max, r*r <= 16*max^2.
#   uint8:  v <= 255 fits uint16 up to 257 frames, |r| <= 1020 int16 up to 32, the counts int16;
#           v*v <= 65025 and r*r <= 1040400 take uint32/int32. Narrow lanes vectorise widest.
#   uint16: v <= 65535 and |r| <= 262140 fit int32 up to 8191 frames; the squares need int64.
BUFFER_TYPES = {
    np.dtype(np.uint8): ((np.uint16, np.uint32, np.int16, np.int32, np.int16, np.int16), (2**15 - 1) // (4 * 255)),
    np.dtype(np.uint16): ((np.int32, np.int64, np.int32, np.int64, np.int16, np.int16), (2**31 - 1) // (4 * 65535)),
}




def as_lines(frames: np.ndarray) -> tuple[np.ndarray, int]:
    """(k, R, L) frames as one C-contiguous 2D array of rows and the row step between frames.

    A block is usually a row slice of a contiguous batch, (k, H, L)[:, y0:y1]: its rows are
    evenly spaced in the batch's buffer, so a 2D view over the span from its first row to its
    last addresses row y of frame f at ``f*step + y`` without a copy (the span lies inside the
    batch's buffer; rows between the frames are never read). Anything else is copied.
    """
    k, rows, length = frames.shape
    s0, s1, s2 = frames.strides
    if not frames.flags.c_contiguous and s2 == frames.itemsize and s1 == length * s2 and s0 > 0 and s0 % s1 == 0 \
            and s0 >= rows * s1:
        step = s0 // s1
        lines = np.lib.stride_tricks.as_strided(frames, shape=((k - 1) * step + rows, length), strides=(s1, s2),
                                                writeable=False)
    else:
        step = rows
        lines = np.ascontiguousarray(frames).reshape(k * rows, length)  # a view when already contiguous
    lines = lines.view()
    lines.flags.writeable = False  # one compiled type (numba types read-only arrays separately)
    return lines, step


def accumulate_fused(sums: IntegerSums, frames: np.ndarray, stride: int, index,
                     terms: FrameTerms | None = None, sketch: np.ndarray | None = None,
                     bars: np.ndarray | None = None, row0: int = 0) -> bool:
    """Run the numba kernel if it applies; False means "use the numpy reference"."""
    frames = np.asarray(frames)
    spec = BUFFER_TYPES.get(frames.dtype)
    if spec is None or frames.ndim not in (3, 4) or len(frames) == 0:
        return False
    rows_c, rows_u, rows_d = (np.ascontiguousarray(i, dtype=np.intp) for i in index)
    pixel_shape = (len(rows_c), *frames.shape[2:])
    s1, s2 = sums.s1, sums.s2
    expected = (len(STREAMS), *pixel_shape)
    if s1.shape != expected or s2.shape != expected or s1.dtype not in SUM_DTYPES or s2.dtype not in SUM_DTYPES:
        return False  # let numpy raise (or broadcast) exactly as the reference does
    counts = sums.counts
    if not all(a.flags.c_contiguous and a.flags.writeable for a in (s1, s2)):
        return False
    if counts is not None and (not (counts.flags.c_contiguous and counts.flags.writeable)
                               or counts.shape[1:] != s1.shape[1:] or counts.dtype not in (np.uint16, np.uint32)):
        return False
    numba_kernels = kernels()
    if numba_kernels is None:
        return False
    channels = frames.shape[3] if frames.ndim == 4 else 1
    width = frames.shape[2]
    flat = frames.reshape(*frames.shape[:2], width * channels) if frames.ndim == 4 else frames
    # views: all are C-contiguous
    a1, a2 = (x.reshape(*x.shape[:2], -1) for x in (s1, s2))
    a3 = None if counts is None else counts.reshape(*counts.shape[:2], -1)
    left, right = neighbour_columns(width, stride)
    extra = {k: v.reshape(v.shape[0], -1) for k, v in sums.extra.items()}  # (rows, W*C) views
    if not all(v.flags.c_contiguous and v.flags.writeable for v in extra.values()):
        return False
    types, max_frames = spec
    buffers = [np.empty(numba_kernels.CHUNK, t) for t in types]
    model_buffers = [np.empty(numba_kernels.CHUNK, t) for t in (np.int64, np.int16, np.int32, np.int64, np.int64,
                                                                 np.int16, np.int32, np.int32, np.int32,
                                                                 np.uint16, np.uint16, np.uint16, np.uint16,
                                                                 types[4], types[4], np.uint8, types[2])]
    across_buffers = [np.empty(numba_kernels.CHUNK, np.int32) for _ in ACROSS_SUMS]
    factors = read_only(np.zeros(len(flat), np.int64) if terms is None else np.asarray(terms.factors, np.int64))
    days = read_only(np.zeros(len(flat), np.int32) if terms is None else np.asarray(terms.days, np.int32))
    logx = read_only(np.zeros(len(flat), np.int32) if terms is None else frame_logx(terms))
    logg = read_only(np.zeros(len(flat), np.int32) if terms is None else frame_logg(terms))
    white = 0 if terms is None else int(terms.white)
    black = 0 if terms is None else int(terms.black)
    mxr, mexc, mexs, mexx, mexq, mhol, mhos, mlx, mlg, mf0, mf1, mf2, mf3, msa, msb = (
        extra.get(k) for k in ("xr", "excluded", "excluded_sum", "excluded_x", "excluded_xx", "holes", "holes_sum",
                               "beyond_logx", "beyond_logg", *FIRST_DAYS, *STRONG_COUNTS))
    if sketch is not None and not (sketch.dtype == np.uint64 and sketch.flags.c_contiguous and sketch.flags.writeable):
        return False
    floor = spike_floor(white)
    mcx, mcy = (extra.get(k) for k in ACROSS_SUMS)
    if (mf0 is not None or mlx is not None or msa is not None or mcx is not None) and a3 is None:
        return False  # the date sums and the strong counts come with the range counts
    if a3 is not None and bars is None:
        bars = frame_bars(frames, stride, row0)
    block = noise_bars.geometry(stride)[0]
    table = read_only(np.zeros((len(flat), 1, 1, 1), np.int32) if bars is None
                      else np.ascontiguousarray(bars, np.int32))
    for start in range(0, len(flat), max_frames):
        part = flat[start : start + max_frames]
        bbar = np.empty((len(part), stride, flat.shape[2] if a3 is not None else 0), types[2])
        binv = np.empty((len(part), stride, flat.shape[2] if mcx is not None else 0), np.float32)
        lines, step = as_lines(part)
        numba_kernels.accumulate_rows(lines, step, len(part), *(read_only(i) for i in (rows_c, rows_u, rows_d)),
                                      a1, a2, a3, stride, channels, left, right, *buffers,
                                      factors[start : start + max_frames], days[start : start + max_frames],
                                      logx[start : start + max_frames], logg[start : start + max_frames], white,
                                      black, mxr, mexc, mexs, mexx, mexq, mhol, mhos, mlx, mlg, mf0, mf1, mf2, mf3,
                                      msa, msb, None if sketch is None else sketch[start : start + max_frames], floor,
                                      hole_floor(white),
                                      *model_buffers, table[start : start + max_frames], block, row0, bbar,
                                      STRONG_BARS, STRONG_APART, mcx, mcy, *across_buffers, ACROSS_SCALE, ACROSS_LIMIT,
                                      binv)
    return True


def neighbour_columns(width: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Left and right same-colour neighbour columns, reflected at the edges (``_reflected``)."""
    left, right = _reflected(np.arange(width), width, stride)
    return read_only(left.astype(np.intp)), read_only(right.astype(np.intp))


def stats_of_stack(stack: np.ndarray, stride: int = 1) -> PixelStats:
    """Reference: moments of a whole in-memory stack (N, H, W[, C]), same-colour neighbours
    ``stride`` apart (``SensorLayout.stride``). For tests and tools."""
    return accumulate(IntegerSums.zeros(stack.shape[1:]), stack, stride).to_stats()

