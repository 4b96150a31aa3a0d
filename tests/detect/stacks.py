"""Small in-memory stacks for detection tests: a simple sensor model (varied scenes, shot and
read noise, a Bayer mosaic or per-channel RGB) with planted defects, through ``stats_of_stack``,
exactly what the Dask pipeline produces."""

from __future__ import annotations

import numpy as np

from pipeline.defect import Defect
from pipeline.detect import Detection
from pipeline.layout import SensorLayout

RGGB = np.array([[0, 1], [3, 2]])
MOSAIC = SensorLayout.of_file(RGGB, "")  # colours named by detection's default for a CFA: "RGBG"
BLACK, WHITE = 64, 4095
DARK_SIGMA = float(np.sqrt(4 + 0.25 * 1.0))  # temporal noise (DN) of a sensel in make_stack's darks


def field(rng, h, w, cells):
    """A smooth random field in [0, 1]: a coarse grid, bilinearly upsampled."""
    g = rng.random((cells + 1, cells + 1))
    ys, xs = np.linspace(0, cells, h), np.linspace(0, cells, w)
    y0, x0 = np.minimum(ys.astype(int), cells - 1), np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a, b, c, d = g[y0][:, x0], g[y0][:, x0 + 1], g[y0 + 1][:, x0], g[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def random_scene(rng, h, w, channels):
    """One varied photo: shading, a few hard-edged shapes and fine texture, per colour."""
    base = 0.2 + 0.6 * field(rng, h, w, int(rng.integers(2, 8)))
    img = base[..., None] * rng.uniform(0.5, 1.2, channels)
    for _ in range(int(rng.integers(2, 6))):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        img[y0 : y0 + rng.integers(4, h // 2), x0 : x0 + rng.integers(4, w // 2)] = rng.uniform(0.05, 1.0, channels)
    img *= 1 + 0.1 * (field(rng, h, w, max(h, w) // 3)[..., None] - 0.5)
    return img * rng.uniform(0.4, 1.0)


def make_stack(defects=(), *, mosaic=True, dark=False, frames=40, h=96, w=128, seed=0, dark_spread=0.3):
    """(N, H, W) uint16 Bayer mosaic or (N, H, W, 3) uint16 RGB with planted defects.

    ``defects``: (kind, y, x, channel, amplitude) with kind hot (added DN), dead (no
    response), stuck (constant DN) or noisy (random telegraph noise of that step). The dark
    current is log-normal around 1 DN with ``dark_spread`` as the sigma of its log; the
    temporal noise of a sensel in the dark is then DARK_SIGMA.
    """
    rng = np.random.default_rng(seed)
    channels = 1 if mosaic else 3
    states = {i: rng.random(frames) < 0.5 for i, d in enumerate(defects) if d[0] == "noisy"}
    out = np.empty((frames, h, w, channels), np.uint16)
    cfa = RGGB.clip(max=2)[np.arange(h)[:, None] % 2, np.arange(w)[None, :] % 2]
    dark_current = rng.lognormal(0, dark_spread, (h, w, channels))
    for f in range(frames):
        if dark:
            signal = np.zeros((h, w, channels))
        else:
            scene = random_scene(rng, h, w, 3)
            signal = 3000 * (np.take_along_axis(scene, cfa[..., None], axis=2) if mosaic else scene)
        signal = signal + dark_current
        for kind, y, x, c, amp in defects:
            if kind == "hot":
                signal[y, x, c] += amp
            elif kind == "dead":
                signal[y, x, c] = 0
        value = BLACK + signal + np.sqrt(4 + 0.25 * signal) * rng.standard_normal(signal.shape)
        for i, (kind, y, x, c, amp) in enumerate(defects):
            if kind == "noisy":
                value[y, x, c] += amp * (states[i][f] - 0.5)
            elif kind == "stuck":
                value[y, x, c] = amp
        out[f] = np.clip(np.rint(value), 0, WHITE)
    return out[..., 0] if mosaic else out


PLANTED = [  # (kind, y, x, channel, amplitude): every class, both CFA parities, weak and strong
    ("hot", 20, 30, 0, 1500.0),
    ("hot", 41, 90, 0, 150.0),  # warm: a few times the shot noise of the scene
    ("dead", 60, 17, 0, 0.0),
    ("stuck", 75, 64, 0, 1800.0),
    ("stuck", 30, 111, 0, float(WHITE)),  # saturated
]
FLICKER = ("noisy", 50, 50, 0, 600.0)  # 30x the shot noise, but scene edges also flicker in 40 frames


def by_position(det: Detection) -> dict[tuple[int, int], Defect]:
    return {(d.y, d.x): d for d in det.defects}


def views_of(a):
    """``a`` as the detector meets it: contiguous, a channel of an RGB map, a CFA sub-plane, and
    reversed (no flat view: the fallback path)."""
    h, w = a.shape
    rgb = np.zeros((h, w, 3), a.dtype)
    rgb[..., 1] = a
    cfa = np.zeros((2 * h, 2 * w), a.dtype)
    cfa[::2, 1::2] = a
    rev = a[::-1].copy()[::-1]
    return [a, rgb[..., 1], cfa[::2, 1::2], rev]
