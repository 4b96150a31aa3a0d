"""Exact integer sums of a partition's frames, and their conversion to float64 moments.

A partition's accumulators have the narrowest integer types that hold it exactly
(``sum_types``), because they are what a scan task streams through memory for every block of
frames. Partitions of a segment add as integers (no rounding at all) while the types hold the
total; each tile becomes float64 (n, mean, M2) once, with one rounding (``IntegerSums.to_stats``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import model
from .fused import SUM_DTYPES, fused_pays, kernels, read_only
from .moments import COUNTS, RESIDUAL_SCALE, STREAMS, PixelStats, count_dtype, nbytes
from .packing import packed, unpacked


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
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # the physics model's sums (``model.py``)

    @classmethod
    def zeros(cls, pixel_shape: tuple[int, ...], frame_dtype=None, counts: bool = True,
              spec: model.ModelSpec | None = None) -> IntegerSums:
        """Empty sums; with ``frame_dtype``, in that dtype's narrow types (else int64).

        ``counts`` False leaves out the range counts (``COUNTS``): a third of the accumulation
        time, for scans that only want moments (``scan.range_counts``). ``spec`` says which of
        the physics model's sums to keep (the date sums need the counts).
        """
        shape = (len(STREAMS), *pixel_shape)
        t1, t2, most = sum_types(frame_dtype) if frame_dtype is not None else (np.int64, np.int64, 0)
        tally = np.zeros((len(COUNTS), *pixel_shape), np.uint16) if counts else None
        extra = model.zeros(spec, pixel_shape, t1) if spec else {}
        return cls(0, np.zeros(shape, t1), np.zeros(shape, t2), tally, most, extra)

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + nbytes(self.s1, self.s2, self.counts, *self.extra.values())

    def __reduce__(self):
        """Pickled with the model's mostly-empty sums as their set entries (``packing``)."""
        return _unpickle_sums, (self.n, self.s1, self.s2, self.counts, self.max_frames, packed(self.extra))

    def can_add(self, other: IntegerSums) -> bool:
        """Whether ``self + other`` stays exact in these types: same types, and the frames of
        both within the limit that both were made for."""
        return (0 < self.max_frames == other.max_frames and self.n + other.n <= self.max_frames
                and self.s1.shape == other.s1.shape
                and (self.s1.dtype, self.s2.dtype) == (other.s1.dtype, other.s2.dtype)
                and (self.counts is None) == (other.counts is None) and set(self.extra) == set(other.extra))

    def __add__(self, other: IntegerSums) -> IntegerSums:
        """The sums of both sets of frames, in new arrays (dask's inputs are never changed):
        exact, so partitions merge with no rounding at all (see ``merge_partials``)."""
        if not self.can_add(other):
            raise ValueError(f"cannot add sums of {self.n} and {other.n} frames exactly (limit {self.max_frames})")
        counts = None if self.counts is None else self.counts + other.counts
        return IntegerSums(self.n + other.n, self.s1 + other.s1, self.s2 + other.s2, counts, self.max_frames,
                           model.add(self.extra, other.extra))

    def to_stats(self) -> PixelStats:
        """Convert to float64 moments with one rounding: M2 = (n*s2 - s1^2) / n exactly."""
        if self.n == 0:
            return replace(PixelStats.empty(self.s1.shape[1:]), extra=model.widen(self.extra, 0))
        fused = to_stats_fused(self) if fused_pays(self.s1.size) else None
        stats = fused if fused is not None else to_stats_numpy(self)
        counts: np.ndarray | None = None if self.counts is None else self.counts.astype(count_dtype(self.n), copy=False)
        return replace(stats, counts=counts, extra=model.widen(self.extra, self.n))


def _unpickle_sums(n, s1, s2, counts, max_frames, extra) -> IntegerSums:
    return IntegerSums(n, s1, s2, counts, max_frames, unpacked(extra))


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
    if dtype == np.uint8:
        peak = RESIDUAL_SCALE * 255
        return np.int32, np.uint32, min(limit, (2**32 - 1) // (peak * peak))
    if dtype == np.uint16:
        peak = RESIDUAL_SCALE * 65535
        return np.int32, np.int64, min(limit, (2**31 - 1) // peak)
    return np.int64, np.int64, limit



def stream_scale(ndim: int) -> np.ndarray:
    """Divisor of each stream's values (1 and RESIDUAL_SCALE), shaped to broadcast over (S, *pixel_shape)."""
    return np.array([1, RESIDUAL_SCALE], dtype=np.float64).reshape((-1,) + (1,) * (ndim - 1))


def to_stats_numpy(sums: IntegerSums) -> PixelStats:
    """Reference for ``IntegerSums.to_stats`` (numpy temporaries); ``kernels.to_stats_rows`` matches it bit for bit."""
    if sums.n == 0:
        return PixelStats.empty(sums.s1.shape[1:])
    scale = stream_scale(sums.s1.ndim)
    s1, s2 = sums.s1.astype(np.int64), sums.s2.astype(np.int64)
    numerator = sums.n * s2 - s1 * s1  # exact in int64 (see max_batch_frames)
    mean = s1 / (sums.n * scale)
    m2 = numerator / (sums.n * scale * scale)
    return PixelStats(sums.n, mean, m2)


def to_stats_fused(sums: IntegerSums) -> PixelStats | None:
    """``to_stats`` in one numba pass, or None where it does not apply (then numpy serves)."""
    s1, s2 = sums.s1, sums.s2
    if not (isinstance(s1, np.ndarray) and isinstance(s2, np.ndarray)) or s1.dtype not in SUM_DTYPES \
            or s2.dtype not in SUM_DTYPES or s1.shape != s2.shape or s1.ndim < 1 or s1.shape[0] != len(STREAMS) \
            or not (s1.flags.c_contiguous and s2.flags.c_contiguous):
        return None
    numba_kernels = kernels()
    if numba_kernels is None:
        return None
    # the reference's divisors, by the same numpy expressions: n*scale and n*scale*scale
    scale = stream_scale(1)
    mean_div = sums.n * scale
    m2_div = sums.n * scale * scale
    mean, m2 = np.empty(s1.shape), np.empty(s1.shape)
    rows = (s1.shape[0], -1)
    numba_kernels.to_stats_rows(int(sums.n), read_only(s1.reshape(rows)), read_only(s2.reshape(rows)),
                          read_only(mean_div), read_only(m2_div), mean.reshape(rows), m2.reshape(rows))
    return PixelStats(sums.n, mean, m2)




def max_batch_frames(dtype: np.dtype) -> int:
    """Largest partition for which n*s2 of the residual stream stays exact in int64.

    ``sum_types`` gives the (possibly smaller) limit of the narrow accumulators.
    """
    info = np.iinfo(dtype)
    peak = RESIDUAL_SCALE * (int(info.max) - int(info.min))  # |4v - 4 neighbours| <= 4 * (max - min)
    return int(np.sqrt((2**63 - 1) / (peak * peak)))


