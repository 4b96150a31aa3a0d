"""Tail thresholds: the configured thresholds, raised where a score map's own tail is heavy.

JPEG artefacts, scene events in photos or a skewed dark-current spread would otherwise pass a
fixed z. The tail is measured on an even sample of each map (taken band by band), leaving out
the surroundings of strong defects, whose rings and JPEG ringing are accounted for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .filters import divmod_int, values_at

# maps with a tail guard: stuck needs none (its side conditions are strict); in raw darks the
# bright tail of the level map is the dark current itself, whose far end is what darks are
# taken to find, so there the physical floor (``dark_min_sigmas``) replaces the hot guard
TAIL_KINDS = ("hot", "dead", "noisy", "dark_current")
# maps whose null is symmetric while their defects lie on one side: the tail guard measures the
# null on the other side. A dark-current t statistic at a healthy sensel is a slope drawn by scene
# events and noise, falling as often as rising; a hot sensel only rises. Measured on the rising
# side, a population of weak hot sensels (a few per cent of a sensor, design notes section 3)
# is the tail, and raised the threshold over itself (7 -> 211 on a 2 % population)
MIRRORED = ("dark_current",)
# the tails leave out sensels around level peaks this strong (their rings are explained)
EXCLUDE_STRENGTH = 14.0
# sensels sampled (evenly, over all planes) to measure the tails of the score maps
SAMPLES = 400_000


@dataclass
class TailSample:
    """An even sample of the score maps of one plane's band: values per map (NaN where a map's
    tail leaves the sensel out), the sensor positions they come from, and the plane's size (once
    per plane, in its first band)."""

    values: dict[str, np.ndarray]
    y: np.ndarray
    x: np.ndarray
    plane_size: int


Positions = Callable[[np.ndarray, np.ndarray], np.ndarray]


def sample_band(maps: dict[str, np.ndarray], shape: tuple[int, int], y0: int, y1: int, planes: int,
                to_image, first: bool, left_out: dict[str, Positions] | None = None) -> TailSample:
    """The sample positions of a plane of ``shape`` (every ``step``-th sensel, row-major over
    the whole plane) that fall in the core rows y0:y1, with the maps' values there; ``maps``
    hold the core rows. ``left_out``: per map, which of the positions (plane rows and columns)
    its tail leaves out (NaN)."""
    h, w = shape
    step = max(1, h * w * planes // SAMPLES)
    dtype = np.int32 if h * w < 2**31 else np.int64
    start = -(-(y0 * w) // step) * step
    at = np.arange(start, y1 * w, step, dtype=dtype)
    ty, tx = divmod_int(at, w)
    iy, ix = to_image(ty, tx)
    values = {k: values_at(m, ty - y0, tx) for k, m in maps.items()}
    for k, which in (left_out or {}).items():
        values[k][which(ty, tx)] = np.nan
    return TailSample(values, iy, ix, h * w if first else 0)


def near_points(ys: np.ndarray, xs: np.ndarray, py: np.ndarray, px: np.ndarray, radius: int) -> np.ndarray:
    """Whether each point (ys, xs) lies within ``radius`` (Chebyshev) of one of (py, px), without
    a sensor-sized mask: points are bucketed in cells of the radius, and only those in a cell
    next to a peak's are measured."""
    near = np.zeros(len(ys), bool)
    if not len(py) or not len(ys):
        return near
    cell = radius + 1
    width = int(max(xs.max(), px.max())) // cell + 3
    peaks: dict[int, list[int]] = {}
    for i, key in enumerate(((py // cell + 1) * width + px // cell + 1).tolist()):
        peaks.setdefault(key, []).append(i)
    keys = (ys // cell + 1) * width + xs // cell + 1
    around = np.unique(np.concatenate([np.fromiter(peaks, np.int64) + dy * width + dx
                                       for dy in (-1, 0, 1) for dx in (-1, 0, 1)]))
    for j in np.flatnonzero(np.isin(keys, around)).tolist():
        y, x, k = int(ys[j]), int(xs[j]), int(keys[j])
        near[j] = any(abs(int(py[i]) - y) <= radius and abs(int(px[i]) - x) <= radius
                      for dy in (-1, 0, 1) for dx in (-1, 0, 1) for i in peaks.get(k + dy * width + dx, ()))
    return near


def tail_threshold(sample: np.ndarray, size: int, false_alarms: float, p1: float = 1e-2, p2: float = 1e-3) -> float:
    """The score that clean pixels would pass ``false_alarms`` times in ``size`` pixels, by their own tail.

    ``sample`` is an even subsample of a score map of ``size`` pixels, without the
    surroundings of strong defects. The tail between its 1-p1 and 1-p2 quantiles (defects,
    even smeared by JPEG, are far rarer than p2) is fitted with an exponential and
    extrapolated to ``size``. A Gaussian tail falls faster than that, so on a well-behaved
    sensor this stays below the configured thresholds; it rises where the data are
    heavy-tailed: the lognormal dark current of darks, JPEG artefacts, or scene edges and
    specular highlights of single frames in photos.
    """
    if sample.size < 20 / p2:
        return 0.0
    q1, q2 = np.quantile(sample, [1 - p1, 1 - p2])
    slope = max(float(q2 - q1), 0.0) / math.log(p1 / p2)
    return float(q2 + slope * math.log(max(size * p2 / false_alarms, 1.0)))


def raised(configured: dict[str, float], samples: list[TailSample], strong_y: np.ndarray, strong_x: np.ndarray,
           radius: int, false_alarms: float, raw_darks: bool) -> dict[str, float]:
    """The thresholds after the tail guard: no lower than configured, raised by each map's tail."""
    thresholds = dict(configured)
    if not samples:
        return thresholds
    ys = np.concatenate([s.y for s in samples])
    xs = np.concatenate([s.x for s in samples])
    far = ~near_points(ys, xs, strong_y, strong_x, radius)
    plane_sizes = sum(s.plane_size for s in samples)
    for k, v in configured.items():
        if k not in TAIL_KINDS or (raw_darks and k in ("hot", "dark_current")):
            continue
        values = np.concatenate([s.values[k] for s in samples])
        if k in MIRRORED:
            values = -values
        kept = far & ~np.isnan(values)
        size = plane_sizes * (kept.mean() if kept.size else 1.0)
        thresholds[k] = max(v, tail_threshold(values[kept], int(size), false_alarms))
    return thresholds
