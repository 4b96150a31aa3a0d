"""Robust local scale: 1.4826 x MAD per block of a score map, on a grid read back bilinearly.

Each block's MAD is taken around its own median from every other row and column (a quarter of
the samples: plenty for a scale, and 4x cheaper). A floor, a fraction of the plane's median
scale or an absolute value, keeps clipped or perfectly flat regions, where the MAD is 0, from
making every tiny difference infinitely significant.

Two steps, so that a plane can be measured band by band: ``block_mads`` measures the blocks of
some rows (a band's; bands start on block boundaries), and ``BlockScale`` joins the MADs of
the whole plane, applies the floor (the plane's median MAD is a global quantity) and reads the
scale back for rows or points. The interpolated scale is made only for the rows or points that
need it: never a full-size temporary.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .filters import median_last
from .stripes import each_stripe

# side, in same-colour samples, of the blocks whose MAD is the local scale: 32x32 (256 samples
# at every other row and column) measures a MAD to ~7 %, and follows vignetting and scene
# brightness across a frame
BLOCK = 32


def block_size(shape: tuple[int, int], block: int = BLOCK) -> tuple[int, int]:
    """Rows and columns of a block in a plane of ``shape`` (a plane smaller than a block is one block)."""
    return min(block, shape[0]), min(block, shape[1])


def block_count(shape: tuple[int, int], block: int = BLOCK) -> tuple[int, int]:
    bh, bw = block_size(shape, block)
    return max(1, shape[0] // bh), max(1, shape[1] // bw)


def sample_steps(shape: tuple[int, int], block: int = BLOCK) -> tuple[int, int]:
    """Where the MADs are taken: every other row and column of an even block, else every one."""
    bh, bw = block_size(shape, block)
    return 2 if bh % 2 == 0 else 1, 2 if bw % 2 == 0 else 1


def block_mads(dev: np.ndarray, r0: int, r1: int, shape: tuple[int, int], block: int = BLOCK,
               pool: ThreadPoolExecutor | None = None, top: int = 0) -> np.ndarray:
    """The MADs of the blocks in plane rows r0:r1, as grid rows (blocks x block columns, float32).

    r0 lies on a block boundary, and r1 too unless it is the plane's last row (rows past the
    last whole block belong to none). ``dev`` holds rows ``top`` .. of a plane of ``shape``.
    """
    h, w = shape
    bh, bw = block_size(shape, block)
    nby, nbx = block_count(shape, block)
    sy, sx = sample_steps(shape, block)
    b0, b1 = r0 // bh, nby if r1 >= h else min(r1 // bh, nby)
    mad = np.empty((max(b1 - b0, 0), nbx), np.result_type(dev.dtype, np.float32))

    def blocks(c0: int, c1: int) -> None:
        tiles = dev[c0 * bh - top : c1 * bh - top : sy, : nbx * bw : sx]
        tiles = tiles.reshape(c1 - c0, bh // sy, nbx, bw // sx).transpose(0, 2, 1, 3).reshape(c1 - c0, nbx, -1)
        med = median_last(tiles, keepdims=True)
        mad[c0 - b0 : c1 - b0] = np.float32(1.4826) * median_last(np.abs(tiles - med))

    each_stripe(pool, b0, b1, bh * w, blocks)
    return mad


class BlockScale:
    """The scale of a whole plane from its blocks' MADs (all grid rows, in order)."""

    def __init__(self, mads: np.ndarray, shape: tuple[int, int], block: int = BLOCK, floor_frac: float = 0.0,
                 floor_abs: float = 0.0):
        h, w = shape
        self.shape = (h, w)
        self.bh, self.bw = block_size(shape, block)
        floor = max(floor_abs, floor_frac * float(np.median(mads)), 1e-12)
        self.grid = np.maximum(mads, np.float32(floor)).astype(np.float32)
        # columns: x0 and x1 never decrease, so each grid column is repeated, not gathered (C order, ~4x faster)
        x0, x1, fx = self.axis(np.arange(w), self.bw, self.grid.shape[1])
        nb = self.grid.shape[1]
        self._x = (np.bincount(x0, minlength=nb), np.bincount(x1, minlength=nb), 1 - fx, fx)

    @classmethod
    def of_plane(cls, dev: np.ndarray, block: int = BLOCK, floor_frac: float = 0.0, floor_abs: float = 0.0,
                 pool: ThreadPoolExecutor | None = None) -> BlockScale:
        """The scale of a whole plane held in ``dev``."""
        shape = dev.shape
        return cls(block_mads(dev, 0, shape[0], shape, block, pool), shape, block, floor_frac, floor_abs)

    @staticmethod
    def axis(pos: np.ndarray, b: int, nb: int):
        pos = np.clip((pos + 0.5) / b - 0.5, 0, nb - 1)
        i0 = np.floor(pos).astype(np.intp)
        return i0, np.minimum(i0 + 1, nb - 1), (pos - i0).astype(np.float32)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """The scale of rows r0:r1 (bilinear: along the rows of the grid first, then the columns)."""
        y0, y1, fy = self.axis(np.arange(r0, r1), self.bh, self.grid.shape[0])
        n0, n1, gx, fx = self._x
        rows = self.grid[y0] * (1 - fy)[:, None] + self.grid[y1] * fy[:, None]
        out = np.repeat(rows, n0, axis=1)  # rows[:, x0]
        out *= gx
        right = np.repeat(rows, n1, axis=1)  # rows[:, x1]
        right *= fx
        out += right
        return out

    def points(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """``rows`` at single pixels, by the same float32 arithmetic in the same order (the same values)."""
        y0, y1, fy = self.axis(ys, self.bh, self.grid.shape[0])
        x0, x1, fx = self.axis(xs, self.bw, self.grid.shape[1])
        g = self.grid
        left = g[y0, x0] * (1 - fy) + g[y1, x0] * fy
        right = g[y0, x1] * (1 - fy) + g[y1, x1] * fy
        return left * (1 - fx) + right * fx

    def at(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """The scale at single pixels in float64 interpolation order (the amplitude and luma scores use this)."""
        y0, y1, fy = self.axis(ys.astype(np.float64), self.bh, self.grid.shape[0])
        x0, x1, fx = self.axis(xs.astype(np.float64), self.bw, self.grid.shape[1])
        g = self.grid
        return (g[y0, x0] * (1 - fx) + g[y0, x1] * fx) * (1 - fy) + (g[y1, x0] * (1 - fx) + g[y1, x1] * fx) * fy
