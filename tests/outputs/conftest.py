"""Shared by the export tests: a sensor size and defects that exercise every case the formats care about."""

from __future__ import annotations

import pytest

from pipeline.defect import Defect

H, W = 40, 60


def defect(x, y, kind="hot", channel=0, score=10.0, mean=100.0, neighbour_mean=float("nan"),
           residual_mean=float("nan")):
    return Defect(x=x, y=y, channel=channel, kind=kind, mean=mean, std=1.0, score=score,
                  neighbour_mean=neighbour_mean, residual_mean=residual_mean)


@pytest.fixture
def defects():
    return [
        defect(0, 0, "hot"),
        defect(W - 1, H - 1, "dead", mean=0.0, neighbour_mean=50.0),
        defect(5, 7, "hot", channel=0, score=30.0),
        defect(5, 7, "hot", channel=1, score=20.0),  # same site, other channel
        defect(5, 7, "noisy", channel=2, score=5.0),
        defect(12, 3, "stuck", mean=4000.0, neighbour_mean=100.0),  # stuck bright
        defect(13, 30, "stuck", mean=2.0, neighbour_mean=100.0),  # stuck dark
        defect(20, 10, "stuck", residual_mean=-40.0),  # no neighbour mean: residual decides
        defect(21, 11, "noisy"),
    ]


def distinct(defects):
    return {(d.x, d.y) for d in defects}
