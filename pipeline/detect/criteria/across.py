"""Across: the lines' own maps, from the scan's across sums (``stats.model.ACROSS_SUMS``).

A partial column or row lifts (or lowers) its sensels together. Against its 4 same-colour
neighbours a sensel on it keeps only half of that (two of them share it), and over a lit collection
its plain mean is the bright frames' noise: a 13-32 DN offset on a line read 0.3 level sigmas per
sensel. The scan keeps, per sensel, the sum over the frames of its residual against the two
neighbours across a column (``across_x``) and across a row (``across_y``), each frame in its own
sigmas: the quiet frames count as much as the bright ones. Over the plane's blocks, that sum's MAD
makes it a z, as the level's t is made one; the line search (``line_bands``) scans the columns of
``across_x``'s z and the rows of ``across_y``'s.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ...stats.model import ACROSS_LIMIT, ACROSS_SUMS
from ..bands import PlaneView
from ..scale import BlockScale, block_mads
from ..stripes import each_stripe

# the scale is never below this fraction of the plane's median MAD: a clipped or perfectly flat
# area sums to 0 in every sensel
SCALE_FLOOR = 0.25


@dataclass
class AcrossMeasures:
    """What pass 1 leaves of a band: the block MADs of both sums."""

    mads: tuple[np.ndarray, np.ndarray]


def measure(v: PlaneView, outs: tuple[np.ndarray, np.ndarray],
            pool: ThreadPoolExecutor | None = None) -> AcrossMeasures:
    """Both sums of the core rows into ``outs`` (core rows, float32), and their blocks' MADs."""
    mads = []
    for name, out in zip(ACROSS_SUMS, outs):
        src = v.extra[name]
        each_stripe(pool, v.y0, v.y1, v.width,
                    lambda r0, r1, s=src, o=out: np.copyto(o[r0 - v.y0 : r1 - v.y0], s[r0 - v.top : r1 - v.top],
                                                           casting="unsafe"))
        mads.append(block_mads(out, v.y0, v.y1, v.shape, pool=pool, top=v.y0))
    return AcrossMeasures((mads[0], mads[1]))


def scales(measures: list[AcrossMeasures], shape: tuple[int, int]) -> tuple[BlockScale, BlockScale]:
    """The plane's scale of each sum, from every band's blocks (in row order)."""
    x, y = (BlockScale(np.concatenate([m.mads[i] for m in measures]), shape, floor_frac=SCALE_FLOOR) for i in (0, 1))
    return x, y


def one_frame_z(scale: tuple[BlockScale, BlockScale]) -> tuple[float, float]:
    """The most one frame adds to a sensel's z in each map: its largest term (``ACROSS_LIMIT``)
    over the plane's median scale. A straight scene edge along a line in one frame adds that to
    every sensel of the line, whatever the defects: a line must stand out beyond it."""
    x, y = (ACROSS_LIMIT / float(np.median(s.grid)) for s in scale)
    return x, y


def score(v: PlaneView, outs: tuple[np.ndarray, np.ndarray], scale: tuple[BlockScale, BlockScale],
          pool: ThreadPoolExecutor | None = None) -> None:
    """The core rows' sums (``outs``) become z's, in place; 0 on the plane's first and last column
    (``across_x``) and row (``across_y``): there the scan's neighbour across is the one inside,
    taken twice, and 2 (v - n) is the scene's gradient across the edge (vignetting), not a
    line's excess: the edge columns of the benchmark collections read as dark lines of 1 sigma per
    sensel. Lines there are found by the level, as elsewhere."""
    for out, s in zip(outs, scale):
        def rows(r0: int, r1: int, o=out, sc=s) -> None:
            z = o[r0 - v.y0 : r1 - v.y0]
            z /= sc.rows(r0, r1)
        each_stripe(pool, v.y0, v.y1, v.width, rows)
    outs[0][:, [0, v.width - 1]] = 0.0
    if v.y0 == 0:
        outs[1][0] = 0.0
    if v.y1 == v.height:
        outs[1][-1] = 0.0
