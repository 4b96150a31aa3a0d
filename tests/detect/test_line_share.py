"""How much of a sensel's residual variance its exposure line explains (``detect.exposure.line_share``):
nearly all for dark current, little for telegraph flicker, whatever the gain (its step is charge)."""

from __future__ import annotations

import numpy as np

from pipeline.detect.exposure import candidate_fit, line_share
from pipeline.stats import IntegerSums, accumulate
from pipeline.stats.fit import FrameTable
from pipeline.stats.model import EXPOSURE_SUMS, FrameTerms, ModelSpec, exposure_factor


def test_dark_current_is_its_line_and_flicker_is_not():
    rng = np.random.default_rng(4)
    n, size = 60, 32
    t = np.exp(rng.uniform(np.log(1 / 1000), np.log(8), n))
    iso = rng.choice([100, 400, 1600], n).astype(float)
    gain = iso / 100
    frames = np.empty((n, size, size), np.uint16)
    high = rng.random(n) < 0.3
    for f in range(n):
        v = 1000 + 3 * np.sqrt(gain[f]) * rng.standard_normal((size, size))
        v[10, 10] += 40 * t[f] * gain[f]  # dark current, 40 DN/s at ISO 100
        v[20, 20] += 30 * gain[f] * high[f]  # one-sided telegraph, 30 DN x gain in 30 % of the frames
        frames[f] = np.clip(np.rint(v), 0, 65535)
    factors = np.array([exposure_factor(e, s, True) for e, s in zip(t, iso)])
    spec = ModelSpec(exposure=True, white=65535)
    sums = accumulate(IntegerSums.zeros((size, size), np.uint16, True, spec), frames, 2,
                      terms=FrameTerms(factors, np.zeros(n, np.int64), 65535))
    stats = sums.to_stats()
    at = [(10, 10), (20, 20), (15, 17)]
    model = np.array([[stats.mean[1][p], stats.m2[1][p], *(float(stats.extra[k][p]) for k in EXPOSURE_SUMS)]
                      for p in at])
    share = line_share(candidate_fit(model, n, FrameTable.of(factors)), model, n)
    assert share[0] > 0.95  # the hot sensel
    assert share[1] < 0.4  # the telegraph one, though its step grows with the gain
    assert abs(share[2]) < 0.2  # a healthy one: its line is noise
