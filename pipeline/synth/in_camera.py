"""In-camera processing of a raw mosaic into 8-bit sRGB, as a camera writing a JPEG does.

Bilinear demosaic, white balance and the sRGB tone curve, deliberately simple: a defective
sensel must stay in its own CFA channel at its own position, as in a real camera. Used by
the 8-bit formats (``writers``); the mosaic formats skip it.
"""

from __future__ import annotations

import numpy as np

from .sensor import BLACK_LEVEL, SENSOR, WHITE_LEVEL, SensorModel, cfa_colour_index


def demosaic_bilinear(mosaic: np.ndarray) -> np.ndarray:
    """Bilinear demosaic of an RGGB mosaic (H, W) -> (H, W, 3) float32.

    A sensel's own colour is kept exactly at its own position, so a defective sensel shows
    at (x, y) in its own channel and bleeds only into the interpolated channels of its 8
    neighbours, as in a real camera. Edges reflect (which keeps CFA parity). Works on the
    four colour sub-planes, where reflecting the mosaic is replicating each sub-plane's edge,
    so only the values each site needs are computed.
    """
    m = np.asarray(mosaic, dtype=np.float32)
    h, w = m.shape
    if h < 2 or w < 2:
        raise ValueError(f"a Bayer mosaic needs at least 2x2 sensels, got {w}x{h}")
    if h % 2 or w % 2:  # odd size: reflect one more row/column, demosaic, crop
        m = np.pad(m, ((0, h % 2), (0, w % 2)), mode="reflect")
    hh, ww = m.shape[0] // 2, m.shape[1] // 2
    planes = [np.pad(m[r::2, c::2], 1, mode="edge") for r, c in ((0, 0), (0, 1), (1, 0), (1, 1))]
    r_, g1, g2, b_ = ((lambda dy, dx, p=p: p[1 + dy : 1 + dy + hh, 1 + dx : 1 + dx + ww]) for p in planes)
    q, half = np.float32(0.25), np.float32(0.5)
    out = np.empty((2 * hh, 2 * ww, 3), dtype=np.float32)
    # R sites (even row, even col): G from the 4 crosses, B from the 4 diagonals
    out[0::2, 0::2, 0] = r_(0, 0)
    out[0::2, 0::2, 1] = (g2(-1, 0) + g2(0, 0) + g1(0, -1) + g1(0, 0)) * q
    out[0::2, 0::2, 2] = (b_(-1, -1) + b_(-1, 0) + b_(0, -1) + b_(0, 0)) * q
    # G in red rows: R left/right, B up/down
    out[0::2, 1::2, 0] = (r_(0, 0) + r_(0, 1)) * half
    out[0::2, 1::2, 1] = g1(0, 0)
    out[0::2, 1::2, 2] = (b_(-1, 0) + b_(0, 0)) * half
    # G in blue rows: R up/down, B left/right
    out[1::2, 0::2, 0] = (r_(0, 0) + r_(1, 0)) * half
    out[1::2, 0::2, 1] = g2(0, 0)
    out[1::2, 0::2, 2] = (b_(0, -1) + b_(0, 0)) * half
    # B sites: R from the 4 diagonals, G from the 4 crosses
    out[1::2, 1::2, 0] = (r_(0, 0) + r_(0, 1) + r_(1, 0) + r_(1, 1)) * q
    out[1::2, 1::2, 1] = (g1(0, 0) + g1(1, 0) + g2(0, 0) + g2(0, 1)) * q
    out[1::2, 1::2, 2] = b_(0, 0)
    return out[:h, :w]


_LUT_SIZE = 16384


def _srgb_lut() -> np.ndarray:
    """Linear [0, 1] -> 8-bit sRGB, sampled at _LUT_SIZE points."""
    x = np.linspace(0.0, 1.0, _LUT_SIZE)
    y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(y * 255).astype(np.uint8)


_SRGB = _srgb_lut()


def develop(mosaic: np.ndarray, sensor: SensorModel = SENSOR) -> np.ndarray:
    """In-camera processing of a raw mosaic into an 8-bit sRGB image (H, W, 3) uint8.

    Black subtraction, bilinear demosaic, white balance, clip, sRGB tone curve. No colour
    matrix, denoising or sharpening: they would move a defect out of its CFA channel.
    """
    return develop_levels(mosaic, sensor.wb, BLACK_LEVEL, WHITE_LEVEL)


def develop_levels(
    mosaic: np.ndarray, wb: tuple[float, float, float], black: int, white: int, gain: float = 1.0
) -> np.ndarray:
    """``develop`` for any black and white level, with a digital ``gain`` (a camera's JPEG engine
    brightens an under-exposed frame): (raw - black) / (white - black) * wb * gain, then as ``develop``.
    """
    m = np.asarray(mosaic)
    # white balance per sensel before demosaicing: same result (demosaic is linear), 3x less work
    gains = np.asarray(wb, dtype=np.float32) / np.float32(white - black)
    if gain != 1.0:
        gains = gains * np.float32(gain)
    scale = gains[cfa_colour_index(*m.shape)]
    rgb = demosaic_bilinear((m.astype(np.float32) - np.float32(black)) * scale)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    return np.take(_SRGB, (rgb * np.float32(_LUT_SIZE - 1) + np.float32(0.5)).astype(np.uint16))
