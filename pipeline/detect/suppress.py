"""One report per defect: one candidate per sensel across channels, then greedy non-maximum
suppression that also drops the rings a strong defect leaves around itself and, in JPEGs, its
chroma smear and block ringing.
"""

from __future__ import annotations

import numpy as np

from .candidates import Candidates

# px, any channel: one report per blob (demosaicing smears a sensel +-1 px, JPEG's 4:2:0 chroma +-3 px)
NMS_RADIUS = 3
# px: a candidate this close to a RING_RATIO x stronger one is its ring or JPEG ringing
RING_RADIUS = 8
RING_RATIO = 3.0
# px: JPEG ringing of a strong defect fills the (4:2:0 chroma) blocks its blob touches ...
JPEG_BLOCK = 16
# ... so candidates in those blocks this many times weaker than it are dropped
FAR_RING_RATIO = 8.0
# px in a mosaic, same colour only: 2 = the 8 nearest same-colour sensels; opposite-sign (ring)
# or RING_RATIO x weaker neighbours go
NMS_RADIUS_CFA = 2
# the same in a monochrome sensor: its 8 nearest sensels are its own colour
NMS_RADIUS_GRAY = 1


def one_per_pixel(c: Candidates) -> Candidates:
    """One candidate per pixel (x, y) across channels: a sensel is one defect, whatever the smear.

    Its class follows the same precedence as within a channel (no variance, then level, then
    flicker), its strength is the largest of its channels'.
    """
    if len(c) == 0:
        return c
    key = c.y * (int(c.x.max()) + 1) + c.x
    order = np.lexsort((-c.score, c.rank, key))
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    starts = np.flatnonzero(first)
    strength = np.maximum.reduceat(c.strength[order], starts)
    out = c.take(order[starts])
    out.strength = strength
    return out


def suppress(c: Candidates, one_value: bool, ring: int = NMS_RADIUS_CFA) -> np.ndarray:
    """Greedy non-maximum suppression, strongest first; returns the mask of kept candidates.

    Strength is a candidate's largest |z| of any kind, so that the true peak of a blob wins
    even when its class is decided by a smaller score (a clipped hot pixel is also less
    variable; a JPEG ring can be as dark as the hot pixel is bright).

    Demosaiced images: a candidate is dropped when a stronger kept one lies within
    ``NMS_RADIUS`` px in any channel (one sensel smears into a blob across channels), or a
    kept one ``RING_RATIO`` times stronger lies within ``RING_RADIUS`` px (the residual's
    opposite-sign ring, and JPEG's ringing over its 8x8 blocks), or one ``FAR_RING_RATIO``
    times stronger whose blob (+-nms_radius) touches the candidate's ``JPEG_BLOCK`` cell
    (ringing fills the 16x16 chroma blocks of a 4:2:0 JPEG, but does not leave them).
    Mosaics and monochrome sensors (``one_value``): sensels do not smear, so only the same CFA
    colour counts; a candidate is dropped next to a stronger one (within ``ring`` px: the 8 nearest
    same-colour sensels, ``NMS_RADIUS_CFA`` in a Bayer mosaic, ``NMS_RADIUS_GRAY`` in a gray one) only
    when its level has the opposite sign (the -1/4 ring a hot pixel leaves in its neighbours'
    residuals, or the +1/4 ring of a dead one), or the stronger one is ``RING_RATIO`` times
    stronger and the candidate is no level defect: the neighbours' residuals carry 1/16 of a
    flickering sensel's variance, but their levels are measured without it
    (``rings.separate_adjacent``), so a weaker hot sensel beside a strong one is its own; and so
    is one the range counts call hot or dead: its range is that of the middle two of its
    neighbours (``stats.kernels._beyond_bar``), which a defect among them does not move.
    """
    m = len(c.score)
    keep = np.zeros(m, bool)
    if m == 0:
        return keep
    order = np.argsort(-c.strength, kind="stable")
    block = 0
    if one_value:
        r_nms, r_ring = 0, ring
    else:
        r_nms, r_ring, block = NMS_RADIUS, RING_RADIUS, JPEG_BLOCK
    cell = max(r_nms, r_ring, block + r_nms, 1)
    # Python numbers for the loop (numpy scalars are ~10x slower in it); the ratio tests compare
    # with the products made in the strength's own dtype, as the scalar arithmetic made them
    sc = c.strength
    ring_at, far_at = (RING_RATIO * sc).tolist(), (FAR_RING_RATIO * sc).tolist()
    ys, xs, sc, sign, plane = (getattr(c, k).tolist() for k in ("y", "x", "strength", "sign", "plane"))
    own_level = ((c.rank == 1) & one_value).tolist()
    grid: dict[tuple[int, int], list[int]] = {}

    def dropped(i: int, y: int, x: int, cy: int, cx: int) -> bool:
        """Whether a kept candidate in the 3x3 cells around candidate i drops it (see above)."""
        for gy in (cy - 1, cy, cy + 1):
            for gx in (cx - 1, cx, cx + 1):
                for j in grid.get((gy, gx), ()):
                    if one_value and plane[j] != plane[i]:
                        continue
                    d = max(abs(ys[j] - y), abs(xs[j] - x))
                    if d <= r_nms:
                        return True
                    if d <= r_ring:
                        if (sc[j] >= ring_at[i] and not own_level[i]) or (one_value and sign[j] * sign[i] < 0):
                            return True
                    elif block and sc[j] >= far_at[i]:
                        # JPEG ringing stays in the blocks that the kept defect's blob touches
                        by, bx = ys[j] // block, xs[j] // block
                        if ((y // block == by or (y - r_nms) // block == by or (y + r_nms) // block == by)
                                and (x // block == bx or (x - r_nms) // block == bx or (x + r_nms) // block == bx)):
                            return True
        return False

    for i in order.tolist():
        y, x = ys[i], xs[i]
        cy, cx = y // cell, x // cell
        if not dropped(i, y, x, cy, cx):
            keep[i] = True
            grid.setdefault((cy, cx), []).append(i)
    return keep
