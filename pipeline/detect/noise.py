"""The noise floor every variance is compared above, and the float32 forms the criteria share.

Integer data carry a quantisation error, uniform over one step: its variance (1/12) is a floor
for every variance, so that a constant integer pixel is compared in a meaningful, finite way.
"""

from __future__ import annotations

import numpy as np

QUANT_VAR = 1.0 / 12.0


def residual_var(res_m2: np.ndarray, n: np.float32, out: np.ndarray) -> np.ndarray:
    """The residual's variance M2/n in float32, into ``out`` (rows of the same shape)."""
    out[...] = res_m2
    out /= n
    return np.maximum(out, 0, out=out)


def log_value_var(values: np.ndarray, n: np.float32) -> np.ndarray:
    """log(M2/n + 1/12) in float32: the variance on the log scale where ratios become differences."""
    v = values.astype(np.float32)
    v /= n
    np.maximum(v, 0, out=v)
    v += np.float32(QUANT_VAR)
    return np.log(v, out=v)
