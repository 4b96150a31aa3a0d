"""One raw frame: the scene through the camera body, with the planted defects and temporal noise.

This is where the scene (``scene``), the fixed pattern (``sensor.build_camera``) and the defect
plan (``plan``) meet, so that none of those modules needs the others. Shot noise is a Gaussian
with Poisson's variance (4x cheaper than ``rng.poisson``); read noise is Gaussian.
"""

from __future__ import annotations

import numpy as np

from .plan import DefectPlan
from .scene import render_scene
from .sensor import BLACK_LEVEL, WHITE_LEVEL, Camera, SensorModel


def expose(
    rng: np.random.Generator, cam: Camera, plan: DefectPlan, frame: int, dark: bool, sensor: SensorModel
) -> tuple[np.ndarray, float, np.ndarray]:
    """One raw frame: (uint16 mosaic, exposure, DN that each dead sensel lost in this frame)."""
    h, w = cam.cidx.shape
    if dark:
        exposure = 0.0
        signal = cam.dark.copy()
    else:
        scene = render_scene(rng, cam.cidx)
        # auto-exposure to mid-grey, then a random +1/-2 EV bias: some frames dark, some clipped
        exposure = float(0.18 / max(float(scene.mean()), 1e-3) * 2.0 ** rng.uniform(-2.0, 1.0))
        signal = scene * (np.float32(exposure) * cam.response)
        signal += cam.dark
    flat = signal.reshape(-1)
    # defects acting on the expected signal (so they carry shot noise like real charge)
    flat[plan.hot_idx] += plan.hot_amp
    healthy_dead = flat[plan.dead_idx].copy()
    flat[plan.dead_idx] *= plan.dead_gain
    span = np.float32(WHITE_LEVEL - BLACK_LEVEL)  # only signal below clipping can be lost visibly
    lost = np.minimum(healthy_dead, span) - np.minimum(flat[plan.dead_idx], span)
    # shot noise (variance = gain * signal, as Poisson) and read noise, as one Gaussian draw
    sd = np.sqrt(signal * np.float32(sensor.gain) + np.float32(sensor.read_noise**2))
    value = signal + sd * rng.standard_normal((h, w), dtype=np.float32)
    value += np.float32(BLACK_LEVEL)
    vflat = value.reshape(-1)
    # defects acting on the read-out value
    vflat[plan.rts_idx] += np.where(plan.rts_state[frame], 0.5, -0.5).astype(np.float32) * plan.rts_step
    vflat[plan.gauss_idx] += plan.gauss_sigma * rng.standard_normal(len(plan.gauss_idx), dtype=np.float32)
    np.rint(value, out=value)
    np.clip(value, 0, WHITE_LEVEL, out=value)
    vflat[plan.stuck_idx] = plan.stuck_val
    return value.astype(np.uint16), exposure, lost
