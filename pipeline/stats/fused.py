"""Where the numba kernels (``kernels.py``) are loaded, and when they are worth loading.

Every fused kernel has a numpy reference that gives the same bits; the choice between them is
made here, once: numba is loaded on first use (about a second, which a client merging
thumbnails' segments should not pay), and a machine without numba takes the numpy path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# accumulator types the fused kernels are compiled for
SUM_DTYPES = frozenset(np.dtype(t) for t in (np.int32, np.uint32, np.int64))

# below this many values numpy's temporaries are small, and loading numba (about a second, in a
# client that merges thumbnails' segments) would cost more than the fused kernels save
FUSED_MIN_VALUES = 1 << 20

# the kernels module once loaded; False where numba is missing (tests set it to take the numpy path)
KERNELS: Any = None


def kernels():
    """The numba module, or None where numba is not installed (the numpy path then serves)."""
    global KERNELS
    if KERNELS is None:
        module: Any
        try:
            from . import kernels as module
        except ImportError:  # pragma: no cover - numba is a dependency; this keeps the stats usable without it
            module = False
        KERNELS = module
    return KERNELS or None


def fused_pays(values: int) -> bool:
    """Whether to take a fused kernel for ``values`` values: for large arrays, or anywhere numba
    is loaded already (a worker). Both paths give the same bits."""
    return values >= FUSED_MIN_VALUES or bool(KERNELS)


def read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view: numba types read-only arrays separately, so inputs always are (one specialisation)."""
    view = array.view()
    view.flags.writeable = False
    return view
