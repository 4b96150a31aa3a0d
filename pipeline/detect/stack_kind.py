"""Photos or darks: from how much of the frame-to-frame variance is spatially coherent.

Scene changes move whole neighbourhoods together, so they inflate the value variance but cancel
in the residual; sensor noise is spatially white and shows in both alike.
"""

from __future__ import annotations

import numpy as np

from ..stats import PixelStats
from .noise import QUANT_VAR

# photos when the median value variance is more than this many times the residual's: a scene
# (even a dim one) puts tens to thousands of times more variance in the values; a dark's white
# noise gives the residual 1.25x the value variance
DARKS_RATIO = 20.0
# rows sampled for the medians: a few hundred rows are plenty
SAMPLE_ROWS = 256


def sample_rows(height: int) -> slice:
    """The rows whose statistics decide the stack kind."""
    return slice(None, None, max(1, height // SAMPLE_ROWS))


def classify_stack(stats: PixelStats, ratio: float = DARKS_RATIO) -> tuple[str, str]:
    """("photos" or "darks", why), from the statistics of ``sample_rows`` (``stats`` may hold
    only those rows: pass them as they are)."""
    rows = sample_rows(stats.pixel_shape[0])
    n = max(stats.n, 1)
    v = float(np.median(stats.m2[0][rows])) / n
    rv = float(np.median(stats.m2[1][rows])) / n
    m = float(np.median(stats.mean[0][rows]))
    if not np.isfinite(v) or v <= 0:
        return "darks", f"median frame-to-frame variance of the values is {v:.3g} (mean {m:.3g}): no scene changes"
    rr = v / max(rv, QUANT_VAR)
    if rr > ratio:
        return "photos", (f"median frame-to-frame variance of the values ({v:.3g}, mean {m:.3g}) is {rr:.3g}x that "
                          f"of the neighbour residual ({rv:.3g}) > {ratio:g}: the scene changes between frames")
    return "darks", (f"median frame-to-frame variance of the values ({v:.3g}, mean {m:.3g}) is only {rr:.3g}x that "
                     f"of the neighbour residual ({rv:.3g}) <= {ratio:g}: spatially white noise, no scene")
