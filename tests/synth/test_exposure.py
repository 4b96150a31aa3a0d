"""Raw frames: black level and noise of darks, and planted defects visible in the mosaic stats."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.synth.sensor import BLACK_LEVEL, SENSOR, WARM_SIGMAS, WHITE_LEVEL

from .conftest import neighbours

# --------------------------------------------------------------------------- dark frames


def test_dark_mosaic_is_black_level_plus_small_noise(stacks):
    _, truth, stack = stacks("tiff16", dark=True)
    mask = np.ones(stack.shape[1:], bool)
    for d in truth["defects"]:
        mask[d["y"] - 2 : d["y"] + 3, d["x"] - 2 : d["x"] + 3] = False
    healthy = stack[:, mask]
    assert BLACK_LEVEL <= healthy.mean() < BLACK_LEVEL + 5
    assert 1.0 < np.median(healthy.std(axis=0)) < 4.0
    assert all(e == 0 for e in truth["exposures"])


def test_dark_truth_lists_every_warm_sensel(stacks):
    """Measured over the stack, no unlisted sensel is anywhere near warm; every planted warm one is."""
    out, truth, stack = stacks("png16", dark=True)
    ds = truth["dark_signal"]
    assert ds["warm_sigmas"] == WARM_SIGMAS[0] and ds["sigma"] == pytest.approx(SENSOR.noise_sigma(0.0), 1e-3)
    mean = stack.mean(axis=0)
    pad = np.pad(mean, 2, mode="reflect")
    h, w = mean.shape
    ring = np.stack([pad[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w] for dy in (-2, 0, 2) for dx in (-2, 0, 2) if dy or dx])
    offset = mean - np.median(ring, axis=0)
    healthy = np.ones(mean.shape, bool)
    for d in truth["defects"]:
        healthy[d["y"] - 2 : d["y"] + 3, d["x"] - 2 : d["x"] + 3] = False
    warm = ds["warm_sigmas"] * ds["sigma"]
    se = ds["sigma"] / np.sqrt(truth["frames"])
    assert offset[healthy].max() < warm - 4 * se  # the cut (1 sigma) plus the measurement noise
    for d in truth["defects"]:
        if d["kind"] == "hot":
            # on top of its own dark current, which may be under the median
            assert d["amplitude"] >= warm - 1e-6 and offset[d["y"], d["x"]] > warm - ds["median"] - 4 * se, d


# --------------------------------------------------------------------------- defects are visible


def test_mosaic_defects_visible_in_photo_stats(stacks):
    _, truth, stack = stacks("tiff16")
    mean, var = stack.mean(axis=0), stack.var(axis=0)
    for d in truth["defects"]:
        x, y, amp = d["x"], d["y"], d["amplitude"]
        nb_mean = neighbours(mean, x, y, 2)
        nb_var = neighbours(var, x, y, 2)
        excess = mean[y, x] - nb_mean.mean()
        if d["kind"] == "stuck":
            assert var[y, x] == 0 and mean[y, x] == amp
            assert nb_var.min() > 0
        elif d["kind"] == "hot" and not d["warm"]:
            assert excess > 0.5 * min(amp, WHITE_LEVEL - nb_mean.max()), d
        elif d["kind"] == "dead":
            assert excess < -0.5 * amp, d
            if not d["cold"]:
                assert abs(mean[y, x] - BLACK_LEVEL) < 3 and var[y, x] < 3 * SENSOR.read_noise**2
    # noisy: the residual against its neighbours flickers more than the residuals around it
    # (the scene varies a lot per frame, so compare residuals, not raw values)
    def resid_std(xx: int, yy: int) -> float:
        return float((stack[:, yy, xx] - neighbours(stack, xx, yy, 2).mean(axis=0)).std())

    ratios = []
    for d in (d for d in truth["defects"] if d["kind"] == "noisy"):
        x, y = d["x"], d["y"]
        ring = [resid_std(xx, yy) for yy in range(y - 4, y + 5, 2) for xx in range(x - 4, x + 5, 2)
                if max(abs(yy - y), abs(xx - x)) > 2]
        ratios.append(resid_std(x, y) / np.median(ring))
    assert np.median(ratios) > 1.5


def test_mosaic_defects_visible_in_dark_stats(stacks):
    _, truth, stack = stacks("png16", dark=True)
    mean, std = stack.mean(axis=0), stack.std(axis=0)
    for d in truth["defects"]:
        x, y, amp = d["x"], d["y"], d["amplitude"]
        nb_mean, nb_std = neighbours(mean, x, y, 2), neighbours(std, x, y, 2)
        if d["kind"] == "hot":  # warm ones too: a few sigma per frame is many sigma over the stack
            assert mean[y, x] - nb_mean.mean() > 0.5 * amp, d
        elif d["kind"] == "stuck":
            assert std[y, x] == 0 and nb_std.min() > 0.5
        elif d["kind"] == "noisy":
            assert std[y, x] > 2.5 * np.median(nb_std), d
