"""Bands: detection cut into row bands (as the workers will run it) gives the very numbers of one
band: every defect, threshold and score map, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.detect import DetectConfig, detect
from pipeline.detect.bands import band_rows, halo_rows
from pipeline.detect.planes import planes
from pipeline.layout import SensorLayout
from pipeline.stats import IntegerSums, accumulate, stats_of_stack
from pipeline.stats.model import FrameTerms, ModelSpec

from .stacks import FLICKER, MOSAIC, PLANTED, make_stack


def assert_same(one, many):
    assert one.defects == many.defects
    assert one.thresholds == many.thresholds and one.stack_kind == many.stack_kind
    assert set(one.scores) == set(many.scores)
    for k in one.scores:
        np.testing.assert_array_equal(one.scores[k], many.scores[k], err_msg=k)


def with_across_sums(stack: np.ndarray) -> object:
    """The stack's statistics with range counts and the across sums (a mosaic's lines), and a
    column of the mosaic's R plane raised 30 DN in every frame (rows 20-178): a line of them."""
    stack = stack.copy()
    stack[:, 20:180:2, 40] += 30
    sums = IntegerSums.zeros(stack.shape[1:], stack.dtype, True, ModelSpec(counts=True, lines=True))
    n = len(stack)
    return accumulate(sums, stack, 2, terms=FrameTerms(np.ones(n, np.int64), np.zeros(n, np.int64), 65535)).to_stats()


def test_the_across_case_has_its_line():
    """The case below reports its column from the across maps (the stronger of the two maps that
    find it), so the bands' test covers them."""
    stats = with_across_sums(make_stack([*PLANTED, FLICKER], h=200, w=128))
    found = detect(stats, DetectConfig(threads=1), layout=MOSAIC)
    (line,) = [d for d in found.defects if d.kind == "column"]
    assert line.x == 40 and abs(line.y - 20) <= 2 and abs(line.length - 80) <= 2, (line.y, line.length)


CASES = {
    "mosaic photos, across sums": (lambda: with_across_sums(make_stack([*PLANTED, FLICKER], h=200, w=128)),
                                   MOSAIC),
    "mosaic photos, counts": (lambda: stats_of_stack(make_stack([*PLANTED, FLICKER], h=200, w=128), stride=2), MOSAIC),
    "mosaic darks": (lambda: stats_of_stack(make_stack(PLANTED, dark=True, h=200, w=128, seed=2), stride=2), MOSAIC),
    "rgb photos": (lambda: stats_of_stack(make_stack([("hot", 70, 30, 0, 1500.0), ("stuck", 33, 64, 2, 2500.0)],
                                                     mosaic=False, h=130, w=128)), None),
    "gray darks": (lambda: stats_of_stack(make_stack(PLANTED, dark=True, h=100, w=128, seed=3)), None),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("band_values", [1, 4000, 9000])
def test_bands_give_the_numbers_of_one_band(case, band_values):
    make, layout = CASES[case]
    stats = make()
    one = detect(stats, DetectConfig(threads=1), layout=layout, band_values=None)
    assert len(band_rows(stats.pixel_shape, planes(stats.pixel_shape, layout or SensorLayout())[0], 4,
                         band_values)) > 1
    assert_same(one, detect(stats, DetectConfig(threads=2), layout=layout, band_values=band_values))


def test_band_cores_start_on_block_boundaries_and_hold_their_halo():
    shape = (1000, 600)
    plane_list, _ = planes(shape, MOSAIC)
    halo = halo_rows(1)
    rows = band_rows(shape, plane_list, halo, 100_000)
    assert rows[0][0] == 0 and rows[-1][1] == shape[0]
    for (y0, y1, top, bottom), nxt in zip(rows, rows[1:] + [None]):
        assert y0 % 64 == 0 and (nxt is None or nxt[0] == y1)  # 32 plane rows of each colour
        assert top == max(0, y0 - 2 * halo) and bottom == min(shape[0], y1 + 2 * halo)
        assert y1 - y0 >= 64
    assert band_rows(shape, plane_list, halo, None) == [(0, 1000, 0, 1000)]
    # as many bands as the values ask, of even size: 4 of a 12 MP raw asked as 4 (the cut that
    # rounded each band down to whole blocks made 5, a third round on 2 worker threads)
    raw = band_rows((3000, 4000), planes((3000, 4000), MOSAIC)[0], halo, 3_000_000)
    assert len(raw) == 4 and max(b[1] - b[0] for b in raw) - min(b[1] - b[0] for b in raw) <= 128
    # a plane shorter than two blocks is one band
    assert len(band_rows((100, 600), plane_list, halo, 1000)) == 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_candidates_residual_variance_by_points_or_rows_is_the_same(case, monkeypatch):
    """``flicker.lrv_lookup`` computes the log residual variance at the candidates' sensels alone
    where they are few, else reads it from a band's rows: the same numbers either way."""
    import importlib

    flicker = importlib.import_module("pipeline.detect.criteria.flicker")
    make, layout = CASES[case]
    stats = make()
    found = []
    for cost in (0, 10**12):  # always the points, always the rows
        monkeypatch.setattr(flicker, "POINTS_PER_ROW_VALUE", cost)
        found.append(detect(stats, DetectConfig(threads=1), layout=layout))
    assert found[0].defects
    assert_same(*found)
