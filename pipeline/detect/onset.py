"""When did a defect appear? From two exact sums, without reading a frame twice.

Per sensel the scan keeps how many frames it stood beyond its neighbours' range (the range
counts) and the sum of those frames' capture days (``stats.model``). A healthy sensel is beyond
by chance, at its plane's null rate, in any frame; a defect that appeared on day T is beyond
in the frames after T where it shows (a dark-current pixel in long exposures, a warm one in
most). The mean capture day of its beyond frames then sits between the mean day of the frames
after T and the whole stack's; it grows with T. So T is found where the expected mean day,
under "chance before T, visible after", equals the observed one, by bisection over the frames'
days. The defect is said to appear during the collection only when that mean day lies
clearly (``ONSET_SIGMAS`` standard errors) after the one it would have had from the start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# how many standard errors of the mean capture day after "there from the start" make an onset
ONSET_SIGMAS = 4.0
# a frame shows a defect when its predicted excess stands this many temporal sigmas out of the
# noise (the range test needs about 2-3); the logistic's width, in sigmas
VISIBLE_SIGMAS = 2.0
VISIBLE_WIDTH = 0.5


@dataclass(frozen=True)
class Frames:
    """The capture day of every frame the statistics hold (days since 1970), and its exposure
    factor's step in seconds at ISO 100 times its factor (``exposure``: 0 where unknown)."""

    days: np.ndarray
    exposure: np.ndarray


def visibility(frames: Frames, offset: float, rate: float, sigma: float) -> np.ndarray:
    """How likely each frame shows the defect beyond its neighbours' range (0..1), from its
    predicted excess (offset + rate x exposure, DN) against the temporal noise ``sigma``; a
    defect with no fit (or a stuck one) shows in every frame alike."""
    if not (math.isfinite(offset) and math.isfinite(rate)) or sigma <= 0:
        return np.ones(len(frames.days))
    excess = np.abs(offset + rate * frames.exposure)
    z = (excess / sigma - VISIBLE_SIGMAS) / VISIBLE_WIDTH
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def onset_day(beyond: int, day_sum: float, chance: float, frames: Frames,
              seen: np.ndarray | None = None) -> int | None:
    """The capture day the defect appeared, or None when it was there from the first frame
    (or the data cannot tell). ``beyond``/``day_sum``: its count of beyond frames and the sum of
    their days; ``chance``: the rate at which a healthy sensel of its plane is beyond, per frame;
    ``seen``: each frame's visibility (``visibility``)."""
    days = frames.days.astype(np.float64)
    if beyond < 3 or len(days) < 3 or np.ptp(days) <= 0:
        return None
    seen = np.ones(len(days)) if seen is None else seen
    shown = chance + (1.0 - chance) * seen
    order = np.argsort(days, kind="stable")
    d, p = days[order], shown[order]
    q = np.full(len(d), chance)
    # expected beyond frames and day sum with onset at frame i: chance before, shown from i on
    k_after = np.cumsum((p * 1.0)[::-1])[::-1]
    s_after = np.cumsum((p * d)[::-1])[::-1]
    k_before = np.concatenate([[0.0], np.cumsum(q)[:-1]])
    s_before = np.concatenate([[0.0], np.cumsum(q * d)[:-1]])
    mean_day = np.maximum.accumulate((s_before + s_after) / np.maximum(k_before + k_after, 1e-12))
    observed = day_sum / beyond
    start = mean_day[0]
    spread = math.sqrt(max(float(np.average((d - start) ** 2, weights=p)), 1.0))
    if observed - start <= ONSET_SIGMAS * spread / math.sqrt(beyond):
        return None
    # the mean day grows with the onset: the last frame whose expected mean day is still <= observed
    i = int(np.searchsorted(mean_day, observed, side="right")) - 1
    i = min(max(i, 1), len(d) - 1)
    return int(d[i])
