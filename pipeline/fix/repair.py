"""Bad sensels replaced from their same-colour neighbours, as dcraw's ``bad_pixels()`` does.

dcraw (and LibRaw) replace a bad sensel by the mean of the sensels of its colour among the eight
at distance ``rad`` (``r = row-rad..row+rad``, ``c = col-rad..col+rad`` in steps of ``rad``),
for ``rad`` = 1, then 2, until one is found. In a Bayer mosaic that is the diagonal greens for a
green sensel and the sensels 2 apart for red and blue. Here the same walk goes on to
``2 * period`` (so an X-Trans sensel finds its colour), and the other bad sensels of the map are
never sources, so a column or a cluster is filled from the good sensels beside it, not from
itself. In an RGB or gray image each channel is its own colour: the eight neighbours.
"""

from __future__ import annotations

import numpy as np

from ..layout import SensorLayout


def colour_plane(layout: SensorLayout, height: int, width: int) -> np.ndarray | None:
    """Each sensel's colour name as a small int (both greens of RGBG are one colour, as dcraw's
    ``fcol``), or None for an image whose channels are its colours."""
    if layout.cfa is None:
        return None
    pattern = np.asarray(layout.cfa)
    names = layout.colors or "RGBG"
    ids = {name: i for i, name in enumerate(dict.fromkeys(names))}
    by_index = np.array([ids[names[v]] if v < len(names) else v for v in range(int(pattern.max()) + 1)])
    p, q = pattern.shape
    tiled = np.tile(by_index[pattern], (-(-height // p), -(-width // q)))
    return tiled[:height, :width]


def repair(pixels: np.ndarray, bad: np.ndarray, colours: np.ndarray | None, period: int = 1) -> tuple[np.ndarray, int]:
    """A copy of ``pixels`` (H, W[, C]) with every ``bad`` (H, W) sensel replaced, and how many
    found no good neighbour of their colour (left as they were).

    ``colours`` (H, W): each sensel's colour (``colour_plane``), None when every channel is
    one colour; ``period``: the CFA's period (1 for RGB or gray). Integer images are rounded
    to the nearest value of their type."""
    out = pixels.copy()
    height, width = bad.shape
    reach = 2 * max(1, period)
    unfixed = 0
    for y, x in zip(*np.nonzero(bad), strict=True):
        for rad in range(1, reach + 1):
            ys, xs = _ring(int(y), int(x), rad, height, width)
            keep = ~bad[ys, xs]
            if colours is not None:
                keep &= colours[ys, xs] == colours[y, x]
            if keep.any():
                values = pixels[ys[keep], xs[keep]].astype(np.float64)
                out[y, x] = _cast(values.mean(axis=0), pixels.dtype)
                break
        else:
            unfixed += 1
    return out, unfixed


def _ring(y: int, x: int, rad: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """dcraw's eight positions at distance ``rad`` around (y, x) that lie in the image."""
    dy, dx = np.mgrid[-1:2, -1:2]
    ys, xs = (y + rad * dy).ravel(), (x + rad * dx).ravel()
    inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width) & ((ys != y) | (xs != x))
    return ys[inside], xs[inside]


def _cast(value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(value), info.min, info.max).astype(dtype)
    return value.astype(dtype)
