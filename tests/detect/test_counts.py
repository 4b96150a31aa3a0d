"""The range counts' null: the beta-binomial tail, computed far into the tail without underflow."""

from __future__ import annotations

import numpy as np

from pipeline.detect.criteria.counts import count_tail


def test_count_tail_is_the_beta_binomial_tail():
    """-log10 P(K >= k) from the probability ratios equals the direct lgamma sum, far into the tail."""
    import math

    def direct(n, p, phi):
        if phi <= 1:
            lp = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p)
                  + (n - k) * math.log1p(-p) for k in range(n + 1)]
        else:
            s = 1 / ((phi - 1) / (n - 1)) - 1
            a, b = p * s, (1 - p) * s
            lb = lambda x, y: math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)
            lp = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + lb(k + a, n - k + b) - lb(a, b)
                  for k in range(n + 1)]
        lp = np.array(lp)
        return -np.logaddexp.accumulate(lp[::-1])[::-1] / math.log(10)

    for n, p, phi in [(40, 0.02, 1.0), (40, 0.02, 1.8), (400, 0.005, 3.0), (12, 0.3, 1.2)]:
        np.testing.assert_allclose(count_tail(n, p, phi), np.maximum(direct(n, p, phi), 0), rtol=1e-9, atol=1e-9)
    assert count_tail(3000, 0.01, 2.0)[-1] > 300  # no underflow at the far end


