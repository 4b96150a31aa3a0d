"""The defect plan: how many defects of each kind, and where (spaced, away from the border)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.synth import synthesize
from pipeline.synth.plan import MIN_SPACING, default_defects_per_kind
from pipeline.synth.sensor import cfa_colour_index

from .conftest import KINDS


def test_default_defect_count_scales_with_area():
    assert 6 <= default_defects_per_kind(640, 480) <= 10
    assert default_defects_per_kind(32, 32) == 3
    assert default_defects_per_kind(6000, 4000) > 100


@pytest.mark.parametrize("size,seed", [((640, 480), 0), ((160, 120), 1), ((64, 48), 2), ((333, 101), 3)])
def test_every_kind_present_spaced_and_away_from_border(tmp_path, size, seed):
    truth = synthesize(tmp_path, frames=1, size=size, fmt="tiff16", seed=seed)
    defects = truth["defects"]
    per_kind = default_defects_per_kind(*size)
    kinds = [d["kind"] for d in defects]
    assert {k: kinds.count(k) for k in KINDS} == dict.fromkeys(KINDS, per_kind)
    hot = [d for d in defects if d["kind"] == "hot"]
    dead = [d for d in defects if d["kind"] == "dead"]
    assert any(d["warm"] for d in hot) and not all(d["warm"] for d in hot)
    assert any(d["cold"] for d in dead) and not all(d["cold"] for d in dead)
    w, h = size
    xy = np.array([(d["x"], d["y"]) for d in defects])
    assert xy[:, 0].min() >= MIN_SPACING and xy[:, 0].max() <= w - 1 - MIN_SPACING
    assert xy[:, 1].min() >= MIN_SPACING and xy[:, 1].max() <= h - 1 - MIN_SPACING
    cheb = np.abs(xy[:, None, :] - xy[None, :, :]).max(axis=2)
    np.fill_diagonal(cheb, 10**9)
    assert cheb.min() >= MIN_SPACING
    cfa = cfa_colour_index(h, w)
    assert all(d["color"] == "RGB"[cfa[d["y"], d["x"]]] for d in defects)
