"""Which pixel of a JPEG blob is the defect: the luma of the mean image against its local median.

In a demosaiced JPEG one sensel becomes a blob a few pixels wide, sharp in luma (kept at full
resolution) and blurred in chroma. Against a median taken around the blob, its centre stands
out most, while the residual's rings and the chroma smear, which carry the largest z at some
distance, lie inside the blob and stand out less. Used only to rank the candidates of one blob.

Pass 1 measures the blocks of the deviation's scale band by band (a stripe at a time: only the
blocks' MADs are kept); pass 2 rebuilds the deviation at the candidates, by the same arithmetic.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .bands import Band
from .criteria.level import AMP_SCALE_FLOOR
from .filters import WINDOW, grid_points, pseudo_median_points, pseudo_median_rows
from .planes import RGB_SPACING
from .scale import BlockScale, block_mads
from .stripes import each_stripe


def luma_of(mean: np.ndarray) -> np.ndarray:
    """0.299 R + 0.587 G + 0.114 B of (..., 3) float64 means, in float64, left to right, as float32."""
    y = np.float32(0.299) * mean[..., 0]
    t = np.float32(0.587) * mean[..., 1]
    y += t
    y += np.multiply(np.float32(0.114), mean[..., 2], out=t)
    return y.astype(np.float32)


def measure(band: Band, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """The blocks of the luma deviation's scale in the band's core rows."""
    dev = deviation(band, pool)  # the band's luma is freed before the scale's blocks
    return block_mads(dev, band.y0, band.y1, (band.height, dev.shape[1]), pool=pool, top=band.y0)


def deviation(band: Band, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """The luma minus its local median, for the band's core rows."""
    mean = band.stats.mean[0]
    height, w = band.height, mean.shape[1]
    p = (WINDOW // 2) * RGB_SPACING
    a, b = max(band.top, band.y0 - p), min(band.bottom, band.y1 + p)
    luma = np.empty((b - a, w), np.float32)
    each_stripe(pool, a, b, w, lambda r0, r1: luma.__setitem__(slice(r0 - a, r1 - a),
                                                               luma_of(mean[r0 - band.top : r1 - band.top])))
    dev = np.empty((band.y1 - band.y0, w), np.float32)

    def rows_dev(r0: int, r1: int) -> None:
        d = pseudo_median_rows(luma, r0, r1, WINDOW, RGB_SPACING, top=a, height=height)
        np.subtract(luma[r0 - a : r1 - a], d, out=dev[r0 - band.y0 : r1 - band.y0])

    each_stripe(pool, band.y0, band.y1, w, rows_dev)
    return dev


def scale(mads: list[np.ndarray], shape: tuple[int, int]) -> BlockScale:
    return BlockScale(np.concatenate(mads), shape, floor_frac=AMP_SCALE_FLOOR)


def amplitude(band: Band, ys: np.ndarray, xs: np.ndarray, luma_scale: BlockScale) -> np.ndarray:
    """|luma - its local median| over the local MAD, at sensor pixels of the band's core."""
    mean = band.stats.mean[0]
    shape = (band.height, mean.shape[1])
    vy, vx = grid_points(ys, xs, shape, WINDOW, RGB_SPACING)
    med = pseudo_median_points(luma_of(mean[vy - band.top, vx]))
    dev = luma_of(mean[ys - band.top, xs]) - med
    return np.abs(dev) / luma_scale.at(ys, xs)
