"""Ring removal: the additions are the direct test's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.detect.filters import reflect
from pipeline.detect.rings import CROSS, remove_rings

from .stacks import views_of


def _remove_rings_reference(rho, se, sy, sx, ring_t, dominance):
    """The ring removal as first written: every visited pixel against its 4 reflected neighbours."""
    h, w = rho.shape
    qy = np.concatenate([sy + dy for dy, _ in CROSS])
    qx = np.concatenate([sx + dx for _, dx in CROSS])
    inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
    key = np.unique(qy[inside] * w + qx[inside])
    qy, qx = np.divmod(key, w)
    r = rho[qy, qx]
    ar = np.abs(r)
    nb_r = np.stack([rho[reflect(qy + dy, h), reflect(qx + dx, w)] for dy, dx in CROSS], axis=1)
    nb_se = np.stack([se[reflect(qy + dy, h), reflect(qx + dx, w)] for dy, dx in CROSS], axis=1)
    nb_t = np.abs(nb_r) / nb_se
    anb = np.abs(nb_r)
    ring = ((nb_r * r[:, None] < 0) & (anb >= dominance * ar[:, None])
            & (anb <= (16 / dominance) * ar[:, None]) & (nb_t >= ring_t))
    add = (np.where(ring, nb_r, 0).sum(axis=1) * 0.25).astype(rho.dtype)
    rho[qy, qx] += add
    return key, add


@pytest.mark.parametrize("shape", [(1, 7), (2, 3), (3, 3), (5, 2), (40, 57)])
@pytest.mark.parametrize("ring_t,dominance", [(4.0, 2.0), (4.1, 2.0), (3.3, 1.7)])
def test_remove_rings_is_the_direct_test(shape, ring_t, dominance):
    """The ring test runs from the leaking neighbours outwards, off the border: the same
    additions, bit for bit, as testing every visited pixel against its 4 neighbours, also where
    |rho| = ring_t * se to the last bit (the significant pixels and the sources round apart)."""
    rng = np.random.default_rng(sum(shape))
    se = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    rho = (rng.standard_t(2, shape) * 3 * se).astype(np.float32)
    for _ in range(rho.size // 10 + 1):  # defects and their rings, more or less exact
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        v = rng.choice([-1, 1]) * rng.uniform(5, 60) * se[y, x]
        rho[y, x] = v
        for dy, dx in CROSS:
            if 0 <= y + dy < shape[0] and 0 <= x + dx < shape[1]:
                rho[y + dy, x + dx] = -v / 4 * rng.uniform(0.3, 1.6)
    edge = np.float32(ring_t) * se  # on the threshold, and one ulp either side
    pick = rng.random(shape) < 0.2
    rho[pick] = np.nextafter(edge, rng.choice([-np.inf, 0, np.inf], shape).astype(np.float32))[pick] * rng.choice([-1, 1], shape)[pick]
    a = np.abs(rho)
    significant = np.flatnonzero(a >= np.float32(ring_t) * se)  # as the level criterion finds them
    sources = np.flatnonzero(a / se >= ring_t)
    ref_rho = rho.copy()
    ref = _remove_rings_reference(ref_rho, se, *np.divmod(significant, shape[1]), ring_t, dominance)
    for view in views_of(rho):
        got_rho = view.copy() if view.base is None else view
        got = remove_rings(got_rho, se, significant, sources, ring_t, dominance)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1].view(np.uint32), ref[1].view(np.uint32))
        np.testing.assert_array_equal(got_rho.view(np.uint32) if got_rho.flags.c_contiguous else got_rho.copy().view(np.uint32),
                                      ref_rho.view(np.uint32))


