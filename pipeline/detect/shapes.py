"""Defects that touch: each keeps its own report, and they share a cluster id.

Adjacent defects (8-neighbours on the sensor, whatever their colours: a pair of hot sensels, a
clump from one damaged spot) are found at their own sensels (``rings.remove_rings`` keeps each
one's excess in a mosaic); the cluster id says they belong together, so a user (or a tool that
interpolates from neighbours) knows that a neighbour is not a clean reference.
"""

from __future__ import annotations

import numpy as np


def clusters(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """A cluster id per point (1, 2, ... in order of first member), 0 for a point with no
    defect among its 8 neighbours; points at the same site are one member."""
    n = len(ys)
    ids = np.zeros(n, np.int64)
    if n == 0:
        return ids
    sites: dict[tuple[int, int], list[int]] = {}
    for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist())):
        sites.setdefault((y, x), []).append(i)
    parent = {s: s for s in sites}

    def root(s):
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for (y, x) in sites:
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                other = (y + dy, x + dx)
                if (dy or dx) and other in sites:
                    parent[root(other)] = root((y, x))
    members: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for s in sites:
        members.setdefault(root(s), []).append(s)
    next_id = 0
    for i in np.argsort(ys * (int(xs.max()) + 1) + xs, kind="stable").tolist():  # ids in row-major order
        group = members[root((int(ys[i]), int(xs[i])))]
        if len(group) < 2 or ids[i]:
            continue
        next_id += 1
        for s in group:
            ids[sites[s]] = next_id
    return ids
