"""Ring removal: a defect leaks -1/4 of its offset into each same-colour neighbour's residual;
where that ring is recognised, the quarter is added back, so that the neighbours of a strong
hot pixel are not reported as cold ones (and the defect's own level is not diluted).

A neighbour has leaked a ring into a pixel when its residual mean has the opposite sign,
``RING_DOMINANCE`` .. 16/``RING_DOMINANCE`` times the pixel's magnitude (4x for an exact ring) and
its own t statistic is at least ``RING_T``. Works on a band of a plane: with one halo row above
and below the rows that matter, their numbers are those of the whole plane.
"""

from __future__ import annotations

import numpy as np

from .filters import divmod_int, flat_view, gather, unique_flat, values_at

# a neighbour with an opposite-sign residual mean 2..8x larger (4x is an exact ring) ...
RING_DOMINANCE = 2.0
# ... and at least 4 of its own standard errors from zero leaked it: weaker offsets leave rings
# too small to matter against the noise
RING_T = 4.0

CROSS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def remove_rings(rho: np.ndarray, se: np.ndarray, significant: np.ndarray, sources: np.ndarray,
                 ring_t: float = RING_T, dominance: float = RING_DOMINANCE) -> tuple[np.ndarray, np.ndarray]:
    """Add back the -1/4 that a significant neighbour's offset leaked into each residual, in place.

    Only pixels next to a significant one (``significant``: flat indices where |rho| >=
    ring_t * se) can carry a ring, so only they are visited. A neighbour counts when its
    residual mean has the opposite sign, ring_dominance..16/ring_dominance times the magnitude
    (4x for an exact ring) and |rho| / se >= ring_t (``sources``: flat indices of at least
    those pixels). Returns the visited pixels (flat indices, sorted) and what was added to each,
    so that the ring-free residual can be rebuilt at any pixel without keeping the map
    (``with_rings_removed``).

    The test runs from the sources outwards (``inner_ring_terms``: in a photo stack they are
    3 % of the plane, the visited pixels 10 %), and the visited pixels at the border, whose
    neighbours reflect, are tested directly (``ring_terms``). Either way each term lands in its
    place in the same (visited, 4 neighbours) table, summed row by row: the same numbers.
    """
    h, w = rho.shape
    sy, sx = divmod_int(significant, w)
    qy = np.concatenate([sy + dy for dy, _ in CROSS])
    qx = np.concatenate([sx + dx for _, dx in CROSS])
    inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
    key = unique_flat(qy[inside] * w + qx[inside], h * w)
    if len(key) == 0:
        return key.astype(np.intp), np.empty(0, rho.dtype)
    qy, qx = divmod_int(key, w)
    terms = np.zeros((len(key), len(CROSS)), rho.dtype)
    edge = np.flatnonzero((qy == 0) | (qy == h - 1) | (qx == 0) | (qx == w - 1))
    terms[edge] = ring_terms(rho, se, qy[edge], qx[edge], ring_t, dominance)
    q, k, v = inner_ring_terms(rho, se, *divmod_int(sources, w), ring_t, dominance)
    pos = np.minimum(np.searchsorted(key, q), len(key) - 1)
    visited = key[pos] == q  # next to a significant pixel (|t| >= ring_t by the other rounding)
    terms[pos[visited], k[visited]] = v[visited]
    rows = np.zeros(len(key), bool)  # the rows with a term: the others add 0 (+0.0, as their sum)
    rows[edge] = True
    rows[pos[visited]] = True
    rows = np.flatnonzero(rows)
    add = np.zeros(len(key), rho.dtype)
    add[rows] = terms[rows].sum(axis=1) * 0.25
    flat, rs = flat_view(rho)
    if flat is None:
        rho[qy, qx] += add
    else:
        flat[qy * rs + qx] += add
    return key, add


def ring_terms(rho: np.ndarray, se: np.ndarray, qy: np.ndarray, qx: np.ndarray, ring_t: float = RING_T,
               dominance: float = RING_DOMINANCE) -> np.ndarray:
    """The ring test at (qy, qx) against each of the 4 neighbours (reflected at the border):
    the neighbour's residual mean where it leaked a ring, else 0; shape (len(qy), 4)."""
    r = gather(rho, qy, qx, ((0, 0),))
    ar = np.abs(r)
    nb_r = gather(rho, qy, qx, CROSS)
    nb_t = np.abs(nb_r) / gather(se, qy, qx, CROSS)
    anb = np.abs(nb_r)
    ring = ((nb_r * r < 0) & (anb >= dominance * ar)
            & (anb <= (16 / dominance) * ar) & (nb_t >= ring_t))
    return np.where(ring, nb_r, 0)


def inner_ring_terms(rho: np.ndarray, se: np.ndarray, jy: np.ndarray, jx: np.ndarray, ring_t: float = RING_T,
                     dominance: float = RING_DOMINANCE):
    """``ring_terms`` of the pixels off the border, from the side of the neighbours that leak:
    each source (jy, jx) is tested against the 4 pixels it neighbours, by the same float32
    arithmetic. Returns the nonzero terms: the pixel (flat index), the neighbour's place in
    ``CROSS`` as seen from the pixel, and the neighbour's residual mean."""
    h, w = rho.shape
    flat, rs = flat_view(rho)
    if flat is None:  # not viewable flat (never, for the score maps): read a copy
        flat, rs = rho.ravel(), w
    jr = jy * rs + jx
    nb_r = flat[jr]
    anb = np.abs(nb_r)
    leaks = anb / values_at(se, jy, jx) >= ring_t
    jy, jx, jr, nb_r, anb = jy[leaks], jx[leaks], jr[leaks], nb_r[leaks], anb[leaks]
    jq = jy * w + jx
    y_in, x_in = (jy >= 1) & (jy < h - 1), (jx >= 1) & (jx < w - 1)
    q, k, v = [], [], []
    for i, (dy, dx) in enumerate(CROSS):  # the source is the pixel's neighbour at (dy, dx)
        inner = x_in & (jy - dy >= 1) & (jy - dy < h - 1) if dy else y_in & (jx - dx >= 1) & (jx - dx < w - 1)
        at = np.flatnonzero(inner)
        nb, a = nb_r[at], anb[at]
        r = flat[jr[at] - (dy * rs + dx)]
        ar = np.abs(r)
        ring = (nb * r < 0) & (a >= dominance * ar) & (a <= (16 / dominance) * ar)
        at = at[ring]
        q.append(jq[at] - (dy * w + dx))
        k.append(np.full(len(at), i))
        v.append(nb_r[at])
    return np.concatenate(q), np.concatenate(k), np.concatenate(v)


def with_rings_removed(rmean: np.ndarray, ys: np.ndarray, xs: np.ndarray, width: int, rings) -> np.ndarray:
    """The ring-free residual mean at (ys, xs), from the residual mean there and ``remove_rings``' additions."""
    key, add = rings
    rho = rmean.copy()
    if len(key):
        flat = ys * width + xs
        i = np.minimum(np.searchsorted(key, flat), len(key) - 1)
        hit = key[i] == flat
        rho[hit] += add[i[hit]]
    return rho
