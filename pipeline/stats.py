"""Per-pixel moments (n, mean, M2) and their exact parallel merge.

Nothing here knows about dask, files or formats. The arithmetic is numpy; the hot loops run
as numba kernels (kernels.py) that match the numpy references kept here bit for bit, and the
numpy code runs wherever numba is missing. Two streams are carried through the same arithmetic:

- ``value``: the pixel value itself;
- ``residual``: the pixel minus the mean of its 4 same-colour neighbours (distance 1 for
  RGB and grayscale, 2 for a 2x2 CFA mosaic), reflected at the image edges. Scene texture
  mostly cancels in it, so weak hot pixels and flicker stand out (see detect.py).

Beside the moments, two counts per sensel (``COUNTS``) record how often it stood beyond the
range of its 4 same-colour neighbours; counts are exact and merge by adding.

Within a partition everything is accumulated in exact integers; the float64 (n, mean, M2)
form appears only at partition boundaries and is merged with Chan, Golub & LeVeque (1979).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

STREAMS = ("value", "residual")
# residual * RESIDUAL_SCALE is an exact integer: 4*v - (sum of 4 neighbours)
RESIDUAL_SCALE = 4
# per sensel, the frames in which it lay above / below its 4 same-colour neighbours (the
# residual's) by more than their own range (v > 2*max - min, v < 2*min - max): robust to scene
# texture, so warm and flickering sensels show in photos (see detect.py). Exact counts that
# merge by adding.
COUNTS = ("above", "below")


@dataclass(frozen=True)
class PixelStats:
    """Moments of every (sub)pixel over ``n`` frames, one plane per stream.

    ``mean`` and ``m2`` have shape ``(len(STREAMS), *pixel_shape)``. ``n`` is one number:
    every frame covers every pixel, so a per-pixel count array would only waste memory.
    """

    n: int
    mean: np.ndarray
    m2: np.ndarray
    counts: np.ndarray | None = None  # (len(COUNTS), *pixel_shape), or None where not recorded (older stats)

    @classmethod
    def empty(cls, pixel_shape: tuple[int, ...]) -> PixelStats:
        shape = (len(STREAMS), *pixel_shape)
        return cls(0, np.zeros(shape), np.zeros(shape), np.zeros((len(COUNTS), *pixel_shape), count_dtype(0)))

    @property
    def pixel_shape(self) -> tuple[int, ...]:
        return self.mean.shape[1:]

    def __sizeof__(self) -> int:
        """Bytes held, which is what dask's sizeof (and so its scheduler) sees: a partial is
        hundreds of MB, not the size of a small object, when it decides where work goes."""
        return object.__sizeof__(self) + _nbytes(self.mean, self.m2, self.counts)

    @property
    def var(self) -> np.ndarray:
        """Population variance M2/n (NaN where n == 0)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.m2 / self.n if self.n else np.full_like(self.m2, np.nan)

    def stream(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, m2) of one stream by name."""
        i = STREAMS.index(name)
        return self.mean[i], self.m2[i]

    def merge(self, other: PixelStats) -> PixelStats:
        """Chan's exact parallel merge: order-independent up to float rounding."""
        if self.pixel_shape != other.pixel_shape:
            raise ValueError(f"cannot merge stats of shape {self.pixel_shape} and {other.pixel_shape}")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        fused = _merge_fused(self, other) if _fused_pays(self.mean.size) else None
        merged = fused if fused is not None else _merge_numpy(self, other)
        return replace(merged, counts=merge_counts(self, other))

    @classmethod
    def merge_all(cls, parts: list[PixelStats]) -> PixelStats:
        """Merge a list pairwise (a balanced tree keeps rounding error at O(log n))."""
        parts = [p for p in parts if p.n] or parts[:1]
        while len(parts) > 1:
            parts = [a.merge(b) if b is not None else a for a, b in zip(parts[::2], parts[1::2] + [None])]
        return parts[0]


def _nbytes(*arrays) -> int:
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


def count_dtype(n: int) -> type:
    """The narrowest type for counts of up to n frames (2 bytes per count up to 65,535 frames)."""
    return np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32


def merge_counts(a: PixelStats, b: PixelStats) -> np.ndarray | None:
    """Counts add exactly; stats saved before counts existed have none, and neither has the sum."""
    if a.counts is None or b.counts is None:
        return None
    dtype = count_dtype(a.n + b.n)
    return np.add(a.counts, b.counts, dtype=dtype)


@dataclass
class IntegerSums:
    """Exact integer accumulators of one partition: sum and sum of squares per stream.

    ``s1``/``s2`` have shape ``(len(STREAMS), *pixel_shape)`` and the narrowest integer types
    that hold a whole partition exactly (``sum_types``), because the accumulators are what a
    scan task streams through memory for every block of frames.
    """

    n: int
    s1: np.ndarray
    s2: np.ndarray
    counts: np.ndarray | None = None  # (len(COUNTS), *pixel_shape) uint16, or None: not counted
    max_frames: int = 0  # the most frames these types hold exactly (``sum_types``); 0: unknown

    @classmethod
    def zeros(cls, pixel_shape: tuple[int, ...], frame_dtype=None, counts: bool = True) -> IntegerSums:
        """Empty sums; with ``frame_dtype``, in that dtype's narrow types (else int64).

        ``counts`` False leaves out the range counts (``COUNTS``): a third of the accumulation
        time, for scans that only want moments (``scan.range_counts``).
        """
        shape = (len(STREAMS), *pixel_shape)
        t1, t2, most = sum_types(frame_dtype) if frame_dtype is not None else (np.int64, np.int64, 0)
        tally = np.zeros((len(COUNTS), *pixel_shape), np.uint16) if counts else None
        return cls(0, np.zeros(shape, t1), np.zeros(shape, t2), tally, most)

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + _nbytes(self.s1, self.s2, self.counts)

    def can_add(self, other: IntegerSums) -> bool:
        """Whether ``self + other`` stays exact in these types: same types, and the frames of
        both within the limit that both were made for."""
        return (0 < self.max_frames == other.max_frames and self.n + other.n <= self.max_frames
                and self.s1.shape == other.s1.shape and (self.s1.dtype, self.s2.dtype) == (other.s1.dtype, other.s2.dtype)
                and (self.counts is None) == (other.counts is None))

    def __add__(self, other: IntegerSums) -> IntegerSums:
        """The sums of both sets of frames, in new arrays (dask's inputs are never changed):
        exact, so partitions merge with no rounding at all (see ``merge_partials``)."""
        if not self.can_add(other):
            raise ValueError(f"cannot add sums of {self.n} and {other.n} frames exactly (limit {self.max_frames})")
        counts = None if self.counts is None else self.counts + other.counts
        return IntegerSums(self.n + other.n, self.s1 + other.s1, self.s2 + other.s2, counts, self.max_frames)

    def to_stats(self) -> PixelStats:
        """Convert to float64 moments with one rounding: M2 = (n*s2 - s1^2) / n exactly."""
        if self.n == 0:
            return PixelStats.empty(self.s1.shape[1:])
        fused = _to_stats_fused(self) if _fused_pays(self.s1.size) else None
        stats = fused if fused is not None else _to_stats_numpy(self)
        counts = None if self.counts is None else self.counts.astype(count_dtype(self.n), copy=False)
        return replace(stats, counts=counts)


def merge_partials(parts: list[IntegerSums | PixelStats]) -> IntegerSums | PixelStats:
    """Merge partitions' partials: integer sums add exactly while their types hold the total
    (a whole checkpoint segment of 8- or 16-bit frames); what does not fit, and float partials
    (a resumed total, other segments), merge with Chan's formula after one conversion each.

    Adding the integers first is cheaper than converting every partition (sums are 20 bytes
    per value to send, float64 partials 36) and exact where Chan would round.
    """
    sums = [p for p in parts if isinstance(p, IntegerSums) and p.n]
    floats = [p for p in parts if isinstance(p, PixelStats) and p.n]
    added: list[IntegerSums] = []
    for part in sums:
        if added and added[-1].can_add(part):
            added[-1] = added[-1] + part
        else:
            added.append(part)
    if not floats and len(added) == 1:
        return added[0]
    if not floats and not added:
        return parts[0]
    return PixelStats.merge_all([s.to_stats() for s in added] + floats)


def sum_types(frame_dtype) -> tuple[type, type, int]:
    """(s1 type, s2 type, most frames) of a partition's exact sums for frames of this dtype.

    The residual is the widest stream: |4v - 4 neighbours| <= 4*max. For 8-bit frames s1 fits
    int32 and s2 uint32 up to 4,128 frames (16 bytes per value for both streams); for 16-bit,
    s1 fits int32 up to 8,191 frames and s2 needs int64. Other integer types keep int64, and
    every partition also keeps ``n*s2 - s1^2`` exact in int64 (``max_batch_frames``).
    """
    dtype = np.dtype(frame_dtype)
    limit = min(max_batch_frames(dtype), np.iinfo(np.uint16).max)  # and the counts' uint16
    peak = RESIDUAL_SCALE * int(np.iinfo(dtype).max) if dtype.kind in "ui" and dtype.itemsize <= 2 else None
    if dtype == np.uint8:
        return np.int32, np.uint32, min(limit, (2**32 - 1) // (peak * peak))
    if dtype == np.uint16:
        return np.int32, np.int64, min(limit, (2**31 - 1) // peak)
    return np.int64, np.int64, limit


def _stream_scale(ndim: int) -> np.ndarray:
    """Divisor of each stream's values (1 and RESIDUAL_SCALE), shaped to broadcast over (S, *pixel_shape)."""
    return np.array([1, RESIDUAL_SCALE], dtype=np.float64).reshape((-1,) + (1,) * (ndim - 1))


def _to_stats_numpy(sums: IntegerSums) -> PixelStats:
    """Reference for ``IntegerSums.to_stats`` (numpy temporaries); ``kernels.to_stats_rows`` matches it bit for bit."""
    if sums.n == 0:
        return PixelStats.empty(sums.s1.shape[1:])
    scale = _stream_scale(sums.s1.ndim)
    s1, s2 = sums.s1.astype(np.int64), sums.s2.astype(np.int64)
    numerator = sums.n * s2 - s1 * s1  # exact in int64 (see max_batch_frames)
    mean = s1 / (sums.n * scale)
    m2 = numerator / (sums.n * scale * scale)
    return PixelStats(sums.n, mean, m2)


def _to_stats_fused(sums: IntegerSums) -> PixelStats | None:
    """``to_stats`` in one numba pass, or None where it does not apply (then numpy serves)."""
    s1, s2 = sums.s1, sums.s2
    if not (isinstance(s1, np.ndarray) and isinstance(s2, np.ndarray)) or s1.dtype not in _SUM_DTYPES \
            or s2.dtype not in _SUM_DTYPES or s1.shape != s2.shape or s1.ndim < 1 or s1.shape[0] != len(STREAMS) \
            or not (s1.flags.c_contiguous and s2.flags.c_contiguous):
        return None
    kernels = _kernels()
    if kernels is None:
        return None
    # the reference's divisors, by the same numpy expressions: n*scale and n*scale*scale
    scale = _stream_scale(1)
    mean_div = sums.n * scale
    m2_div = sums.n * scale * scale
    mean, m2 = np.empty(s1.shape), np.empty(s1.shape)
    rows = (s1.shape[0], -1)
    kernels.to_stats_rows(int(sums.n), _read_only(s1.reshape(rows)), _read_only(s2.reshape(rows)),
                          _read_only(mean_div), _read_only(m2_div), mean.reshape(rows), m2.reshape(rows))
    return PixelStats(sums.n, mean, m2)


_SUM_DTYPES = frozenset(np.dtype(t) for t in (np.int32, np.uint32, np.int64))

# below this many values numpy's temporaries are small, and loading numba (about a second, in a
# client that merges thumbnails' segments) would cost more than the fused kernels save
FUSED_MIN_VALUES = 1 << 20


def _fused_pays(values: int) -> bool:
    """Whether to take a fused kernel for ``values`` values: for large arrays, or anywhere numba
    is loaded already (a worker). Both paths give the same bits."""
    return values >= FUSED_MIN_VALUES or bool(_KERNELS)


def _merge_numpy(a: PixelStats, b: PixelStats) -> PixelStats:
    """Reference for ``PixelStats.merge`` (numpy temporaries); ``kernels.merge_flat`` matches it bit for bit.

    The arithmetic only: ``merge`` has checked the shapes and handled an empty side.
    """
    n = a.n + b.n
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.n / n)
    m2 = a.m2 + b.m2 + delta * delta * (a.n * b.n / n)
    return PixelStats(n, mean, m2)


def _merge_fused(a: PixelStats, b: PixelStats) -> PixelStats | None:
    """Chan's merge of two non-empty stats in one numba pass, or None where it does not apply."""
    arrays = (a.mean, a.m2, b.mean, b.m2)
    shape = a.mean.shape if isinstance(a.mean, np.ndarray) else None
    if not all(isinstance(x, np.ndarray) and x.dtype == np.float64 and x.shape == shape and x.flags.c_contiguous
               for x in arrays):
        return None
    kernels = _kernels()
    if kernels is None:
        return None
    n = a.n + b.n
    # the reference's scalar factors, by the same Python expressions
    weight_b = float(b.n / n)
    weight_ab = float(a.n * b.n / n)
    mean, m2 = np.empty(shape), np.empty(shape)
    kernels.merge_flat(*(_read_only(x.reshape(-1)) for x in arrays), weight_b, weight_ab,
                       mean.reshape(-1), m2.reshape(-1))
    return PixelStats(n, mean, m2)


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view: numba types read-only arrays separately, so inputs always are (one specialisation)."""
    view = array.view()
    view.flags.writeable = False
    return view


def max_batch_frames(dtype: np.dtype) -> int:
    """Largest partition for which n*s2 of the residual stream stays exact in int64.

    ``sum_types`` gives the (possibly smaller) limit of the narrow accumulators.
    """
    info = np.iinfo(dtype)
    peak = RESIDUAL_SCALE * (int(info.max) - int(info.min))  # |4v - 4 neighbours| <= 4 * (max - min)
    return int(np.sqrt((2**63 - 1) / (peak * peak)))


def neighbour_stride(cfa: bool) -> int:
    """Distance to the nearest same-colour neighbour: 2 in a 2x2 CFA mosaic, else 1."""
    return 2 if cfa else 1


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
    """The neighbours at centre -/+ stride along an axis of ``size``, reflected at its ends
    (-1 -> 1, which keeps CFA parity); an axis too short to have one gives the centre itself.
    Rows and columns reflect alike."""
    if size <= stride:
        return centre, centre
    return np.abs(centre - stride), (size - 1) - np.abs((size - 1) - (centre + stride))


def accumulate(sums: IntegerSums, frames: np.ndarray, stride: int, pad_rows: int = 0,
               rows: tuple[int, int] | None = None) -> IntegerSums:
    """Add a block of frames to the integer sums in place.

    ``frames`` is (k, rows + 2*pad_rows, W[, C]) with halo rows, or, with ``pad_rows`` 0,
    whole frames (k, H, W[, C]) of which ``rows`` = (y0, y1) (default: all) are added; their
    edge rows reflect without a padded copy (``row_neighbours``).

    uint8 and uint16 frames go through a fused numba kernel (``kernels.accumulate_rows``): one
    pass over the accumulators per block, no temporaries. Other dtypes, or a machine without
    numba, take ``_accumulate_numpy``; both give bit-identical sums.
    """
    index = row_neighbours(np.shape(frames)[1], stride, pad_rows, rows)
    if not _accumulate_fused(sums, frames, stride, index):
        _accumulate_numpy(sums, frames, stride, index)
    sums.n += len(frames)
    return sums


def _accumulate_numpy(sums: IntegerSums, frames: np.ndarray, stride: int, index) -> IntegerSums:
    """Reference implementation (frame by frame, int64 temporaries); does not touch ``sums.n``.

    ``index`` is ``row_neighbours``' (centre, up, down) rows; the sums keep their own dtype.
    """
    rows_c, rows_u, rows_d = index
    left, right = _neighbour_columns(np.shape(frames)[2], stride)
    for frame in frames:
        f = frame.astype(np.int64)
        v = f[rows_c]
        neighbours = (f[rows_u], f[rows_d], v[:, left], v[:, right])  # the same-colour 4, reflected at the edges
        r4 = 4 * v - neighbours[0] - neighbours[1] - neighbours[2] - neighbours[3]
        for s, x in enumerate((v, r4)):
            sums.s1[s] = (sums.s1[s] + x).astype(sums.s1.dtype)
            sums.s2[s] = (sums.s2[s] + x * x).astype(sums.s2.dtype)
        if sums.counts is not None:
            for s, beyond in enumerate(_beyond(v, neighbours)):
                sums.counts[s] += beyond.astype(sums.counts.dtype)
    return sums


def _beyond(v: np.ndarray, neighbours) -> tuple[np.ndarray, np.ndarray]:
    """Whether each sensel lies above / below the range of its 4 same-colour neighbours by more
    than that range (v > 2*max - min, v < 2*min - max)."""
    top, bottom = np.max(neighbours, axis=0), np.min(neighbours, axis=0)
    return v > 2 * top - bottom, v < 2 * bottom - top


# Row-local buffer types of the fused kernel, per frame dtype: (v, v*v, r, r*r, the two counts),
# and the most frames one kernel call may add before a buffer could overflow. r's type is also
# the kernel's work type for the residual and the range test. |r| <= 4*max, r*r <= 16*max^2.
#   uint8:  v <= 255 fits uint16 up to 257 frames, |r| <= 1020 int16 up to 32, the counts int16;
#           v*v <= 65025 and r*r <= 1040400 take uint32/int32. Narrow lanes vectorise widest.
#   uint16: v <= 65535 and |r| <= 262140 fit int32 up to 8191 frames; the squares need int64.
_BUFFER_TYPES = {
    np.dtype(np.uint8): ((np.uint16, np.uint32, np.int16, np.int32, np.int16, np.int16), (2**15 - 1) // (4 * 255)),
    np.dtype(np.uint16): ((np.int32, np.int64, np.int32, np.int64, np.int16, np.int16), (2**31 - 1) // (4 * 65535)),
}


def _kernels():
    """The numba module, or None where numba is not installed (the numpy path then serves)."""
    global _KERNELS
    if _KERNELS is None:
        try:
            from . import kernels
        except ImportError:  # pragma: no cover - numba is a dependency; this keeps stats.py usable without it
            kernels = False
        _KERNELS = kernels
    return _KERNELS or None


_KERNELS = None


def _as_lines(frames: np.ndarray) -> tuple[np.ndarray, int]:
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


def _accumulate_fused(sums: IntegerSums, frames: np.ndarray, stride: int, index) -> bool:
    """Run the numba kernel if it applies; False means "use the numpy reference"."""
    frames = np.asarray(frames)
    spec = _BUFFER_TYPES.get(frames.dtype)
    if spec is None or frames.ndim not in (3, 4) or len(frames) == 0:
        return False
    rows_c, rows_u, rows_d = (np.ascontiguousarray(i, dtype=np.intp) for i in index)
    pixel_shape = (len(rows_c), *frames.shape[2:])
    s1, s2 = sums.s1, sums.s2
    expected = (len(STREAMS), *pixel_shape)
    if s1.shape != expected or s2.shape != expected or s1.dtype not in _SUM_DTYPES or s2.dtype not in _SUM_DTYPES:
        return False  # let numpy raise (or broadcast) exactly as the reference does
    counts = sums.counts
    if not all(a.flags.c_contiguous and a.flags.writeable for a in (s1, s2)):
        return False
    if counts is not None and (not (counts.flags.c_contiguous and counts.flags.writeable)
                               or counts.shape[1:] != s1.shape[1:] or counts.dtype not in (np.uint16, np.uint32)):
        return False
    kernels = _kernels()
    if kernels is None:
        return False
    channels = frames.shape[3] if frames.ndim == 4 else 1
    width = frames.shape[2]
    flat = frames.reshape(*frames.shape[:2], width * channels) if frames.ndim == 4 else frames
    # views: all are C-contiguous
    a1, a2 = (x.reshape(*x.shape[:2], -1) for x in (s1, s2))
    a3 = None if counts is None else counts.reshape(*counts.shape[:2], -1)
    left, right = _neighbour_columns(width, stride)
    types, max_frames = spec
    buffers = [np.empty(kernels.CHUNK, t) for t in types]
    for start in range(0, len(flat), max_frames):
        part = flat[start : start + max_frames]
        lines, step = _as_lines(part)
        kernels.accumulate_rows(lines, step, len(part), *(_read_only(i) for i in (rows_c, rows_u, rows_d)),
                                a1, a2, a3, stride, channels, left, right, *buffers)
    return True


def _neighbour_columns(width: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Left and right same-colour neighbour columns, reflected at the edges (``_reflected``)."""
    left, right = _reflected(np.arange(width), width, stride)
    return _read_only(left.astype(np.intp)), _read_only(right.astype(np.intp))


def stats_of_stack(stack: np.ndarray, cfa: bool = False) -> PixelStats:
    """Reference: moments of a whole in-memory stack (N, H, W[, C]). For tests and tools."""
    stride = neighbour_stride(cfa)
    return accumulate(IntegerSums.zeros(stack.shape[1:]), stack, stride).to_stats()
