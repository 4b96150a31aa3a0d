"""A frame's values in the dtype it is scanned in, exactly, or the reason it cannot be.

Astronomy formats (FITS, XISF) and TIFFs (Siril's and PixInsight's 32-bit float ones) store
frames as 8 or 16-bit integers, as wider integers, or as floats: normalised to 0..1 by Siril and
PixInsight, or holding whole numbers. A scan reads them as uint8 or uint16 only where that loses
nothing; anything else (negative values, fractions of a DN after calibration, NaN) is refused
with the reason, never rounded.
"""

from __future__ import annotations

import numpy as np


def scanned_dtype(stored: np.dtype | str) -> str:
    """The dtype a frame stored as ``stored`` is scanned in: 8-bit stays 8-bit; wider integers
    and floats are read as uint16 where exact (``as_stored``)."""
    return "uint8" if np.dtype(stored) == np.uint8 else "uint16"


def as_scanned(data: np.ndarray) -> np.ndarray:
    """``data`` as it is, where it already is 8 or 16-bit (in any byte order); else in 16 bits,
    exactly (``as_stored``), or a ValueError with the reason."""
    return data if data.dtype.newbyteorder("=").name == scanned_dtype(data.dtype) else as_stored(data, "uint16")


def as_stored(data: np.ndarray, dtype: str) -> np.ndarray:
    """A frame's values in ``dtype`` ("uint8" for 8-bit data, else "uint16"), exactly, or a ValueError."""
    if dtype == "uint8":
        if data.dtype != np.uint8:
            raise ValueError(f"8-bit data scaled to {data.dtype} (BZERO/BSCALE): not a camera's 8-bit frame")
        return np.ascontiguousarray(data)
    if data.dtype in (np.uint8, np.uint16):
        return np.ascontiguousarray(data, dtype=np.uint16)  # native byte order
    if data.dtype.kind in "iu":
        lo, hi = int(data.min()), int(data.max())
        if lo < 0 or hi > 65535:
            raise ValueError(f"integer values {lo}..{hi} do not fit 16 bits unsigned")
        return np.ascontiguousarray(data, dtype=np.uint16)
    if data.dtype.kind == "f":
        values = data.astype(np.float64)
        if not np.isfinite(values).all():
            raise ValueError("the frame has NaN or infinite values")
        low, high = float(values.min()), float(values.max())
        if low >= 0.0 and high <= 1.0:  # normalised (Siril, PixInsight): back to the 16-bit values
            return np.ascontiguousarray(np.rint(values * 65535.0), dtype=np.uint16)
        if low >= 0.0 and high <= 65535.0 and bool((values == np.rint(values)).all()):
            return np.ascontiguousarray(values, dtype=np.uint16)
        raise ValueError(f"float values {low:g}..{high:g} are neither whole numbers of 0..65535 nor normalised to "
                         f"0..1 (a calibrated frame?); hot pixels are found in uncalibrated frames")
    raise ValueError(f"unsupported data type {data.dtype}")
