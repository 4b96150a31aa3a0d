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
# rows sampled for the medians: a few hundred rows are plenty; and of each array at most about
# SAMPLE_VALUES values, every k-th pixel of those rows (a 45 MP RGB sensor's 256 rows hold 6 M)
SAMPLE_ROWS = 256
SAMPLE_VALUES = 1 << 18
SAMPLED = ("value_mean", "value_m2", "residual_m2")


def sample_rows(height: int) -> slice:
    """The rows whose statistics decide the stack kind."""
    return slice(None, None, max(1, height // SAMPLE_ROWS))


def sample_columns(shape: tuple[int, ...]) -> slice:
    """The pixels of those rows (every channel of each)."""
    rows = len(range(*sample_rows(shape[0]).indices(shape[0])))
    per_pixel = int(np.prod(shape[2:]))
    return slice(None, None, max(1, rows * shape[1] * per_pixel // SAMPLE_VALUES))


def stack_sample(stats: PixelStats, y0: int = 0, shape: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """The sampled values (``SAMPLED``) that ``stats`` hold: rows ``y0``.. of a sensor of
    ``shape`` (the whole sensor by default); the parts of a sensor's row tiles, joined in any
    order, are the whole sensor's sample."""
    shape = tuple(stats.pixel_shape) if shape is None else shape
    step = sample_rows(shape[0]).step or 1
    rows = slice(-(-y0 // step) * step - y0, None, step)
    cols = sample_columns(shape)
    pick = [stats.mean[0], stats.m2[0], stats.m2[1]]
    return {k: np.ascontiguousarray(a[rows, cols]).reshape(-1) for k, a in zip(SAMPLED, pick)}


def sample_of_rows(stats: PixelStats, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """``stack_sample`` of statistics that hold only the ``sample_rows`` of a sensor of ``shape``."""
    cols = sample_columns(shape)
    pick = [stats.mean[0], stats.m2[0], stats.m2[1]]
    return {k: np.ascontiguousarray(a[:, cols]).reshape(-1) for k, a in zip(SAMPLED, pick)}


def join_samples(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in SAMPLED}


def classify_stack(stats: PixelStats, ratio: float = DARKS_RATIO) -> tuple[str, str]:
    """("photos" or "darks", why), from the statistics' sample (``stack_sample``)."""
    return classify_sample(stats.n, stack_sample(stats), ratio)


def classify_sample(n: int, sample: dict[str, np.ndarray], ratio: float = DARKS_RATIO) -> tuple[str, str]:
    """("photos" or "darks", why), from a sensor's sample (``stack_sample``) over ``n`` frames."""
    n = max(n, 1)
    v = float(np.median(sample["value_m2"])) / n
    rv = float(np.median(sample["residual_m2"])) / n
    m = float(np.median(sample["value_mean"]))
    if not np.isfinite(v) or v <= 0:
        return "darks", f"median frame-to-frame variance of the values is {v:.3g} (mean {m:.3g}): no scene changes"
    rr = v / max(rv, QUANT_VAR)
    if rr > ratio:
        return "photos", (f"median frame-to-frame variance of the values ({v:.3g}, mean {m:.3g}) is {rr:.3g}x that "
                          f"of the neighbour residual ({rv:.3g}) > {ratio:g}: the scene changes between frames")
    return "darks", (f"median frame-to-frame variance of the values ({v:.3g}, mean {m:.3g}) is only {rr:.3g}x that "
                     f"of the neighbour residual ({rv:.3g}) <= {ratio:g}: spatially white noise, no scene")
