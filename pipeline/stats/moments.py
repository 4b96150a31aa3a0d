"""Per-pixel moments (n, mean, M2) of every stream, and Chan's exact parallel merge.

Two streams are carried through the same arithmetic:

- ``value``: the pixel value itself;
- ``residual``: the pixel minus the mean of its 4 same-colour neighbours (distance 1 for
  RGB and grayscale, 2 for a 2x2 CFA mosaic), reflected at the image edges. Scene texture
  mostly cancels in it, so weak hot pixels and flicker stand out (see ``pipeline.detect``).

Beside the moments, two counts per sensel (``COUNTS``) record how often it stood beyond the
range of its 4 same-colour neighbours; counts are exact and merge by adding.

Partitions are summed in exact integers (``sums.py``); the float64 (n, mean, M2) form appears
at partition boundaries and merges with Chan, Golub & LeVeque (1979).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .fused import fused_pays, kernels, read_only
from .packing import packed, unpacked

STREAMS = ("value", "residual")
# residual * RESIDUAL_SCALE is an exact integer: 4*v - (sum of 4 neighbours)
RESIDUAL_SCALE = 4
# per sensel, the frames in which it lay above / below all 4 same-colour neighbours (the
# residual's) by more than its frame's noise bar (``noise_bars``): robust to scene texture, so
# warm and flickering sensels show in photos (see detect.py). Exact counts that merge by adding.
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
    # the physics model's per-sensel sums (``model.EXTRA``), where the scan kept them; they add exactly
    extra: dict[str, np.ndarray] = field(default_factory=dict)

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
        return object.__sizeof__(self) + nbytes(self.mean, self.m2, self.counts, *self.extra.values())

    def __reduce__(self):
        """Pickled with the model's mostly-empty sums as their set entries (``packing``)."""
        return _unpickle_stats, (self.n, self.mean, self.m2, self.counts, packed(self.extra))

    @property
    def var(self) -> np.ndarray:
        """Population variance M2/n (NaN where n == 0)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.m2 / self.n if self.n else np.full_like(self.m2, np.nan)

    def rows(self, y0: int, y1: int) -> PixelStats:
        """Sensor rows ``y0:y1`` of these statistics (views, no copy)."""
        counts = None if self.counts is None else self.counts[:, y0:y1]
        return PixelStats(self.n, self.mean[:, y0:y1], self.m2[:, y0:y1], counts,
                          {k: v[y0:y1] for k, v in self.extra.items()})

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
        fused = merge_fused(self, other) if fused_pays(self.mean.size) else None
        merged = fused if fused is not None else merge_numpy(self, other)
        return replace(merged, counts=merge_counts(self, other), extra=add_extra(self.extra, other.extra, merged.n))

    @classmethod
    def merge_all(cls, parts: list[PixelStats]) -> PixelStats:
        """Merge a list pairwise (a balanced tree keeps rounding error at O(log n))."""
        parts = [p for p in parts if p.n] or parts[:1]
        while len(parts) > 1:
            parts = [a.merge(b) if b is not None else a for a, b in zip(parts[::2], parts[1::2] + [None])]
        return parts[0]


def _unpickle_stats(n, mean, m2, counts, extra) -> PixelStats:
    return PixelStats(n, mean, m2, counts, unpacked(extra))


def nbytes(*arrays) -> int:
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


def count_dtype(n: int) -> type:
    """The narrowest type for counts of up to n frames (2 bytes per count up to 65,535 frames)."""
    return np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32


def add_extra(a: dict[str, np.ndarray], b: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The model's sums of both sides, in the types of a total of ``n`` frames; a sum that one
    side did not keep has no total."""
    from .model import add

    return add(a, b, n) if a and b else {}


def merge_counts(a: PixelStats, b: PixelStats) -> np.ndarray | None:
    """Counts add exactly; stats saved before counts existed have none, and neither has the sum."""
    if a.counts is None or b.counts is None:
        return None
    dtype = count_dtype(a.n + b.n)
    return np.add(a.counts, b.counts, dtype=dtype)



def merge_numpy(a: PixelStats, b: PixelStats) -> PixelStats:
    """Reference for ``PixelStats.merge`` (numpy temporaries); ``kernels.merge_flat`` matches it bit for bit.

    The arithmetic only: ``merge`` has checked the shapes and handled an empty side.
    """
    n = a.n + b.n
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.n / n)
    m2 = a.m2 + b.m2 + delta * delta * (a.n * b.n / n)
    return PixelStats(n, mean, m2)


def merge_fused(a: PixelStats, b: PixelStats) -> PixelStats | None:
    """Chan's merge of two non-empty stats in one numba pass, or None where it does not apply."""
    arrays = (a.mean, a.m2, b.mean, b.m2)
    shape = a.mean.shape if isinstance(a.mean, np.ndarray) else None
    if not all(isinstance(x, np.ndarray) and x.dtype == np.float64 and x.shape == shape and x.flags.c_contiguous
               for x in arrays):
        return None
    numba_kernels = kernels()
    if numba_kernels is None:
        return None
    n = a.n + b.n
    # the reference's scalar factors, by the same Python expressions
    weight_b = float(b.n / n)
    weight_ab = float(a.n * b.n / n)
    mean, m2 = np.empty(shape), np.empty(shape)
    numba_kernels.merge_flat(*(read_only(x.reshape(-1)) for x in arrays), weight_b, weight_ab,
                       mean.reshape(-1), m2.reshape(-1))
    return PixelStats(n, mean, m2)


