"""Mostly-empty per-sensel sums, sent between processes as their set entries only.

Several of the physics model's sums (``model.EXTRA``) are empty in nearly every sensel: the
frames a sensel clipped in (about 1 % of a lit raw stack's sensels ever clip), the frames it read
black among brighter neighbours (0.1 %), the days and exposures of the frames it stood beyond its
neighbours (a fifth at most). Dense, they tripled the bytes that a 12 MP raw scan's
workers sent each other and the client (60 bytes per value beside the moments' 28). Pickled
through ``packed``/``unpacked`` (as dask pickles a partition's sums or a tile's stats), such an
array travels as the positions and values of its set entries, and comes back equal to the bit.
Arrays in memory stay dense: the kernels stream through them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import empty_value

# an array travels sparse when its set entries (a position and a value each) take at most this
# share of its dense bytes: the packing costs a pass over it, which must buy a real saving
SPARSE_SHARE = 0.5


@dataclass(frozen=True)
class Sparse:
    """An array as its ``fill`` and its other entries: flat ``positions`` (ascending) and ``values``."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fill: int
    positions: np.ndarray
    values: np.ndarray

    def dense(self) -> np.ndarray:
        out = np.full(self.shape, self.fill, self.dtype)
        out.reshape(-1)[self.positions] = self.values
        return out


def pack(array: np.ndarray, fill: int) -> np.ndarray | Sparse:
    """``array`` as a ``Sparse`` where that is at most ``SPARSE_SHARE`` of its bytes, else itself."""
    if not isinstance(array, np.ndarray) or array.size == 0:
        return array
    flat = array.reshape(-1)
    set_mask = flat != fill
    count = int(np.count_nonzero(set_mask))
    position_type = np.int32 if flat.size <= np.iinfo(np.int32).max else np.int64
    if count * (np.dtype(position_type).itemsize + array.itemsize) > SPARSE_SHARE * array.nbytes:
        return array
    positions = np.flatnonzero(set_mask).astype(position_type, copy=False)
    return Sparse(array.shape, array.dtype, fill, positions, flat[positions])


def unpack(item: np.ndarray | Sparse) -> np.ndarray:
    return item.dense() if isinstance(item, Sparse) else item


def packed(extra: dict[str, np.ndarray]) -> dict[str, np.ndarray | Sparse]:
    """The model's sums as they travel (see the module's docstring)."""
    return {name: pack(array, empty_value(name)) for name, array in extra.items()}


def unpacked(extra: dict[str, np.ndarray | Sparse]) -> dict[str, np.ndarray]:
    """The model's sums as they were before ``packed``, equal to the bit."""
    return {name: unpack(item) for name, item in extra.items()}
