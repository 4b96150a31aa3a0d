"""The camera body's fixed pattern: the healthy dark current stays clear of the warm criterion."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.synth.sensor import SENSOR, WARM_SIGMAS, build_camera


def test_healthy_dark_current_stays_clear_of_the_warm_criterion():
    """The dark-current body is a log-normal cut at 1 noise sigma above its median: warm (3 sigma) is planted only."""
    sensor = SENSOR
    cam = build_camera(np.random.default_rng(5), 480, 640, sensor)
    sigma = sensor.noise_sigma(0.0)
    assert cam.dark.max() <= sensor.healthy_dark_max() == pytest.approx(sensor.dark_median() + sigma)
    assert sensor.healthy_dark_max() < sensor.dark_median() + WARM_SIGMAS[0] * sigma
    assert np.median(cam.dark) == pytest.approx(sensor.dark_median(), rel=0.03)  # the body is the log-normal's
    assert cam.dark.min() > 0 and cam.dark.max() > 0.95 * sensor.healthy_dark_max()
