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


def cross_neighbours(flat: np.ndarray, h: int, w: int) -> np.ndarray:
    """The flat indices (sorted, unique) of the 4 neighbours (``CROSS``) of the pixels ``flat``
    that lie inside the (h, w) plane."""
    sy, sx = divmod_int(flat, w)
    qy = np.concatenate([sy + dy for dy, _ in CROSS])
    qx = np.concatenate([sx + dx for _, dx in CROSS])
    inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
    return unique_flat(qy[inside] * w + qx[inside], h * w)


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
    key = cross_neighbours(significant, h, w)
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



# a significant neighbour whose residual is at least this fraction of the pixel's own (either
# sign) is not background to it: a ring's source, a partner in a pair or a short column
PARTNER_RATIO = 0.5


def ring_rows(v, one_value: bool) -> tuple[int, int]:
    """The held plane rows a band's ring removal reads: the core and the rows whose rings reach
    it (two more each side for ``separate_adjacent``: its second pass reads the first's
    neighbours, which read theirs)."""
    reach = 3 if one_value else 1
    return max(v.top, v.y0 - reach), min(v.bottom, v.y1 + reach)


def separate_adjacent(rho: np.ndarray, se: np.ndarray, sources: np.ndarray, top: int, height: int,
                      values: np.ndarray | None = None, values_top: int = 0,
                      ratio: float = PARTNER_RATIO, ring_t: float = RING_T,
                      allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pixel next to a source, measured against its neighbours that are background, in place.

    For a mosaic or a monochrome sensor, where a defect is one sensel. A pixel's residual is its
    value minus the mean of its 4 same-colour neighbours; a neighbour that stands out itself
    (|rho| / se >= ring_t) by at least ``ratio`` of the pixel's own residual is not background:
    it is the defect whose ring the pixel is, or the pixel's partner in a pair, a cluster or a
    short column. With ``values`` (the plane's value means, rows ``values_top`` ..), the
    residual is rebuilt against the other neighbours exactly: a ring reads 0, a partner keeps
    its own excess, and the flat inside of a clipped area stays flat beside its bright edge.
    Without them (the dark-current rate: no value slope is kept) the excluded neighbours'
    excesses are added back by a quarter each, the leak's inverse to first order; so too where
    all 4 are excluded.

    Two passes: the middle one of three hot sensels can read 0 (the others' leak cancels its
    own excess), so it is no source, and its own rings read as cold ones; the first pass gives
    it its excess back, the second decides again on the first's residuals. ``sources``: flat
    indices where |rho| / se >= ring_t. ``rho`` and ``se`` hold plane rows ``top`` .. of a plane
    ``height`` rows high; pixels whose neighbours lie outside the rows held are left alone.
    Returns the pixels changed (flat indices into ``rho``, sorted), what was added to each, and
    how many neighbours each was measured against (the residual's noise grows as they are fewer).
    ``allow`` (flat indices into ``rho``, sorted), if given, are the only pixels changed.
    """
    key, new, _ = _rebuilt(rho, rho, se, sources, top, height, values, values_top, ratio, ring_t, allow)
    first = rho.copy()
    first.reshape(-1)[key] = new
    maybe = np.union1d(sources, key)
    at = divmod_int(maybe, rho.shape[1])
    again = maybe[np.abs(values_at(first, *at)) / values_at(se, *at) >= ring_t]
    key, new, kept = _rebuilt(first, rho, se, again, top, height, values, values_top, ratio, ring_t, allow)
    flat = rho.reshape(-1)
    add = (new - flat[key]).astype(rho.dtype)
    flat[key] += add
    return key, add, kept


def _rebuilt(decide: np.ndarray, rho: np.ndarray, se: np.ndarray, sources: np.ndarray, top: int, height: int,
             values: np.ndarray | None, values_top: int, ratio: float, ring_t: float,
             allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass of ``separate_adjacent``: the pixels next to ``sources`` with a neighbour that is
    not background (judged on ``decide``), their residual rebuilt from ``rho`` (or the values)
    without it, and how many neighbours each kept."""
    h, w = rho.shape
    key = cross_neighbours(sources, h, w)
    if allow is not None:
        key = np.intersect1d(key, allow, assume_unique=True)
    qy, qx = divmod_int(key, w)
    row = qy + top
    whole = ((qy >= 1) | (row == 0)) & ((qy < h - 1) | (row == height - 1))  # both row neighbours held
    key, qy, qx, row = key[whole], qy[whole], qx[whole], row[whole]
    d = values_at(decide, qy, qx)
    nb_d = gather(decide, row, qx, CROSS, top=top, height=height)
    nb_t = np.abs(nb_d) / gather(se, row, qx, CROSS, top=top, height=height)
    excluded = (nb_t >= ring_t) & (np.abs(nb_d) >= np.float32(ratio) * np.abs(d)[:, None])
    changed = np.flatnonzero(excluded.any(axis=1))
    key, qy, qx, row = key[changed], qy[changed], qx[changed], row[changed]
    excluded, nb_d = excluded[changed], nb_d[changed]
    kept = len(CROSS) - excluded.sum(axis=1)
    new = values_at(rho, qy, qx) + np.float32(0.25) * np.where(excluded, nb_d, 0).sum(axis=1, dtype=rho.dtype)
    if values is not None:
        exact = np.flatnonzero(kept > 0)
        own = values_at(values, row[exact] - values_top, qx[exact])
        nb_v = gather(values, row[exact], qx[exact], CROSS, top=values_top, height=height)
        new[exact] = own - np.where(excluded[exact], 0, nb_v).sum(axis=1) / kept[exact]
    return key, new.astype(rho.dtype), kept
