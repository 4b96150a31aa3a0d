"""Per-pixel moments (n, mean, M2) and their exact parallel merge.

Pure numpy: nothing here knows about dask, files or formats. Two streams are carried
through the same arithmetic:

- ``value``: the pixel value itself;
- ``residual``: the pixel minus the mean of its 4 same-colour neighbours (distance 1 for
  RGB and grayscale, 2 for a 2x2 CFA mosaic), reflected at the image edges. Scene texture
  mostly cancels in it, so weak hot pixels and flicker stand out (see detect.py).

Within a partition everything is accumulated in exact integers; the float64 (n, mean, M2)
form appears only at partition boundaries and is merged with Chan, Golub & LeVeque (1979).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STREAMS = ("value", "residual")
# residual * RESIDUAL_SCALE is an exact integer: 4*v - (sum of 4 neighbours)
RESIDUAL_SCALE = 4


@dataclass(frozen=True)
class PixelStats:
    """Moments of every (sub)pixel over ``n`` frames, one plane per stream.

    ``mean`` and ``m2`` have shape ``(len(STREAMS), *pixel_shape)``. ``n`` is one number:
    every frame covers every pixel, so a per-pixel count array would only waste memory.
    """

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, pixel_shape: tuple[int, ...]) -> PixelStats:
        shape = (len(STREAMS), *pixel_shape)
        return cls(0, np.zeros(shape), np.zeros(shape))

    @property
    def pixel_shape(self) -> tuple[int, ...]:
        return self.mean.shape[1:]

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
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + delta * delta * (self.n * other.n / n)
        return PixelStats(n, mean, m2)

    @classmethod
    def merge_all(cls, parts: list[PixelStats]) -> PixelStats:
        """Merge a list pairwise (a balanced tree keeps rounding error at O(log n))."""
        parts = [p for p in parts if p.n] or parts[:1]
        while len(parts) > 1:
            parts = [a.merge(b) if b is not None else a for a, b in zip(parts[::2], parts[1::2] + [None])]
        return parts[0]


@dataclass
class IntegerSums:
    """Exact integer accumulators of one partition: sum and sum of squares per stream."""

    n: int
    s1: np.ndarray  # (S, *pixel_shape) int64
    s2: np.ndarray

    @classmethod
    def zeros(cls, pixel_shape: tuple[int, ...]) -> IntegerSums:
        shape = (len(STREAMS), *pixel_shape)
        return cls(0, np.zeros(shape, np.int64), np.zeros(shape, np.int64))

    def to_stats(self) -> PixelStats:
        """Convert to float64 moments with one rounding: M2 = (n*s2 - s1^2) / n exactly."""
        if self.n == 0:
            return PixelStats.empty(self.s1.shape[1:])
        scale = np.array([1, RESIDUAL_SCALE], dtype=np.float64).reshape((-1,) + (1,) * (self.s1.ndim - 1))
        numerator = self.n * self.s2 - self.s1 * self.s1  # exact in int64 (see max_batch_frames)
        mean = self.s1 / (self.n * scale)
        m2 = numerator / (self.n * scale * scale)
        return PixelStats(self.n, mean, m2)


def max_batch_frames(dtype: np.dtype) -> int:
    """Largest partition for which n*s2 of the residual stream stays exact in int64."""
    peak = RESIDUAL_SCALE * int(np.iinfo(dtype).max)
    return int(np.sqrt((2**63 - 1) / (peak * peak)))


def neighbour_stride(cfa: bool) -> int:
    """Distance to the nearest same-colour neighbour: 2 in a 2x2 CFA mosaic, else 1."""
    return 2 if cfa else 1


def residual_x4(frame: np.ndarray, stride: int, pad_rows: int) -> np.ndarray:
    """4*v - (up + down + left + right) in int32, for the rows below ``pad_rows``.

    ``frame`` is (rows, W[, C]) with ``pad_rows`` extra rows above and below the core that
    serve only as neighbours (a tile's halo, or a reflection at the image edge). Columns
    reflect at the image edge.
    """
    f = frame.astype(np.int32)
    core = f[pad_rows : f.shape[0] - pad_rows]
    rows = core.shape[0]
    up = f[pad_rows - stride : pad_rows - stride + rows]
    down = f[pad_rows + stride : pad_rows + stride + rows]
    width = core.shape[1]
    left_idx = np.abs(np.arange(width) - stride)
    right_idx = (width - 1) - np.abs((width - 1) - (np.arange(width) + stride))
    if width <= stride:  # too narrow to have a same-colour neighbour: compare with itself
        left_idx = right_idx = np.arange(width)
    return 4 * core - up - down - core[:, left_idx] - core[:, right_idx]


def accumulate(sums: IntegerSums, frames: np.ndarray, stride: int, pad_rows: int) -> IntegerSums:
    """Add a block of frames (k, rows + 2*pad_rows, W[, C]) to the integer sums in place."""
    if pad_rows < stride:
        raise ValueError(f"need at least {stride} halo rows for stride {stride}, got {pad_rows}")
    for frame in frames:
        core = frame[pad_rows : frame.shape[0] - pad_rows].astype(np.int64)
        r4 = residual_x4(frame, stride, pad_rows).astype(np.int64)
        sums.s1[0] += core
        sums.s2[0] += core * core
        sums.s1[1] += r4
        sums.s2[1] += r4 * r4
    sums.n += len(frames)
    return sums


def pad_rows_reflect(frames: np.ndarray, top: int, bottom: int) -> np.ndarray:
    """Reflect rows at the image edge (row -1 -> row 1), which keeps CFA row parity."""
    if top == 0 and bottom == 0:
        return frames
    width = [(0, 0), (top, bottom)] + [(0, 0)] * (frames.ndim - 2)
    return np.pad(frames, width, mode="reflect" if frames.shape[1] > 1 else "edge")


def stats_of_stack(stack: np.ndarray, cfa: bool = False) -> PixelStats:
    """Reference: moments of a whole in-memory stack (N, H, W[, C]). For tests and tools."""
    stride = neighbour_stride(cfa)
    sums = IntegerSums.zeros(stack.shape[1:])
    return accumulate(sums, pad_rows_reflect(stack, stride, stride), stride, stride).to_stats()
