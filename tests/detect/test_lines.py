"""Partial columns and rows (``pipeline.detect.lines``): runs of one colour found along lines by
the maximum-subarray scan, one report each (kind, first sensel, length), the point reports on
them dropped (``covered``), and the record that describes them (``describe.describe_line``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.detect import detect
from pipeline.detect.describe import describe_line
from pipeline.detect.lines import (
    CLIP,
    DRIFT,
    LINE_Z,
    MIN_MEAN,
    OWN_RATIO,
    Line,
    best_runs,
    covered,
    find_lines,
    one_sided_drift,
    plane_lines,
)
from pipeline.detect.planes import Plane
from pipeline.layout import SensorLayout
from pipeline.stats import stats_of_stack

from .stacks import DARK_SIGMA, MOSAIC, WHITE, make_stack

PLANE = Plane(0, "G", 0, 1, 2)  # a mosaic's plane: sensor row 2i, column 2j + 1
LENGTH = 40  # planted runs, in sensels of their plane


# --------------------------------------------------------------------------- the scan on score maps


def test_best_runs_is_the_maximum_sum_segment_above_the_drift_in_every_column():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, (60, 25))
    z[10:30, 3] += 3.0  # a run in one column; the others are noise
    start, end, total = best_runs(z)
    for c in range(z.shape[1]):
        col = z[:, c] - DRIFT
        sums = [col[a:b].sum() for a in range(len(col)) for b in range(a + 1, len(col) + 1)]
        best = max(0.0, max(sums))
        got = col[start[c] : end[c]].sum() if end[c] > start[c] else 0.0
        assert got == pytest.approx(best, abs=1e-9), c
        assert total[c] == pytest.approx(z[start[c] : end[c], c].sum(), abs=1e-9)
    assert len(set(range(start[3], end[3])) & set(range(10, 30))) >= 15  # the run, give or take its noise


def test_a_column_with_no_positive_segment_has_an_empty_run():
    z = np.full((20, 3), -1.0)
    z[5, 1] = 0.4  # still under the drift
    start, end, total = best_runs(z)
    assert (start == end).all() and (total == 0).all()


def _noise(seed: int, shape=(80, 60)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def test_find_lines_reports_a_planted_bright_column_with_its_start_and_length():
    z = _noise(1)
    z[12 : 12 + LENGTH, 7] += 3.0
    (line,) = find_lines(z, PLANE, LINE_Z, 1, "hot", vertical=True)
    assert (line.kind, line.px, line.sign, line.source) == ("column", 7, 1, "hot")
    assert line.py <= 12 and line.py + line.length >= 12 + LENGTH  # the whole run ...
    assert line.length <= 1.25 * LENGTH  # ... and a few healthy sensels past its ends at most
    assert line.z >= LINE_Z and line.mean_z > 2.0
    ys, xs = line.sensor_cells()  # plane (i, j) is sensor (2i, 2j + 1)
    assert xs.tolist() == [15] * line.length and ys.tolist() == list(range(2 * line.py, 2 * (line.py + line.length), 2))


def test_find_lines_reports_a_planted_dark_row():
    z = _noise(2)
    z[50, 5 : 5 + LENGTH] -= 3.0
    assert find_lines(z, PLANE, LINE_Z, 1, "hot", vertical=False) == []  # not bright
    (line,) = find_lines(z, PLANE, LINE_Z, -1, "dead", vertical=False)
    assert (line.kind, line.py, line.sign) == ("row", 50, -1)
    assert line.px <= 5 and line.px + line.length >= 5 + LENGTH and line.length <= 1.25 * LENGTH


@pytest.mark.parametrize("seed", range(4))
def test_noise_alone_draws_no_line(seed):
    z = _noise(10 + seed, (128, 128))
    for sign in (1, -1):
        for vertical in (True, False):
            assert find_lines(z, PLANE, LINE_Z, sign, "hot", vertical) == []


def test_a_few_strong_sensels_spaced_along_a_column_are_not_a_line():
    """One sensel in three at z 50 (clipped to CLIP), the others near 0: the run's sum passes, its
    mean too, but its median does not: not a run of sensels that are brighter together."""
    z = np.zeros((80, 5))
    z[0:72:3, 2] = 50.0
    z[1:72:3, 2] = z[2:72:3, 2] = 0.1
    clipped = np.minimum(z[:72, 2], CLIP)
    assert clipped.sum() / math.sqrt(72) >= LINE_Z  # the scan alone would take it
    assert find_lines(z, PLANE, LINE_Z, 1, "hot", vertical=True) == []
    z[1:72:3, 2] = z[2:72:3, 2] = 1.0  # the same column with every sensel raised is one
    (line,) = find_lines(z, PLANE, LINE_Z, 1, "hot", vertical=True)
    assert line.px == 2 and line.length >= 72


def test_a_dark_run_beside_a_stronger_bright_one_is_its_leak_not_a_second_line():
    """A bright run leaks -1/4 of itself into the residual of the parallel lines beside it."""
    hot = np.zeros((120, 120), np.float32)
    dead = np.zeros_like(hot)
    hot[20:100:2, 2 * 9 + 1] = 6.0  # plane column 9, rows 10..49
    dead[20:100:2, 2 * 10 + 1] = 2.0  # plane column 10, beside it: its leak
    dead[20:100:2, 2 * 30 + 1] = 2.0  # plane column 30: a dark line of its own
    found = plane_lines({"hot": hot, "dead": dead}, PLANE, {"hot": 7.0, "dead": 7.0})
    assert sorted((ln.px, ln.sign) for ln in found) == [(9, 1), (30, -1)]
    assert all(ln.vertical and ln.py == 10 and ln.length == 40 for ln in found)


def _run_lengths(one_sided: bool, length: int = 40) -> list[int]:
    """The reported length of a planted run of 40 (z + 3) in 20 noise maps, signed or one-sided."""
    out = []
    for seed in range(20):
        z = np.random.default_rng(100 + seed).standard_normal((100, 40))
        if one_sided:
            z = np.maximum(z, 0)  # as the dark-current map holds it (criteria.dark_current.score)
        z[20 : 20 + length, 7] += 3.0
        drift = one_sided_drift(z) if one_sided else DRIFT  # as plane_lines scans each map
        line = max((ln for ln in find_lines(z, PLANE, LINE_Z, 1, "dark_current", True, drift) if ln.px == 7),
                   key=lambda ln: ln.z)
        assert line.py <= 20 and line.py + line.length >= 20 + length
        out.append(line.length)
    return out


def test_a_run_in_a_signed_map_ends_about_where_it_ends():
    assert np.median(_run_lengths(one_sided=False)) - 40 <= 4


def test_a_run_in_the_one_sided_dark_current_map_ends_about_where_it_ends():
    """Its healthy sensels average 0.4, not 0: the drift is taken above that (``one_sided_drift``)."""
    assert np.median(_run_lengths(one_sided=True)) - 40 <= 4


# --------------------------------------------------------------------------- covered point reports


def test_covered_drops_the_point_reports_a_line_explains_and_keeps_the_rest():
    line = Line(PLANE, py=10, px=9, length=20, vertical=True, sign=1, z=15.0, mean_z=3.0, source="hot",
                level_z=3.0, rate_z=0.0)
    ys, xs = line.sensor_cells()  # sensor rows 20..58 (even), column 19
    on, inside = int(ys[5]), int(xs[0])
    cases = [  # (y, x, plane key, sign, level z): covered?
        ((on, inside, PLANE.key, 1, 5.0), True),  # on it, its sign, weak
        ((on, inside + 2, PLANE.key, -1, 4.0), True),  # beside it, the other sign: its leak
        ((on, inside + 2, PLANE.key, 1, 5.0), False),  # beside it with its own sign: a defect
        ((on, inside, PLANE.key, 1, OWN_RATIO * 3.0 + 1), False),  # far stronger than the line
        ((on, inside, PLANE.key, -1, 5.0), False),  # on it, the other sign
        ((on, inside, Plane(0, "B", 1, 1, 2).key, 1, 5.0), False),  # another colour's plane
        ((int(ys[-1]) + 2, inside, PLANE.key, 1, 5.0), False),  # past its end
        ((on + 1, inside, PLANE.key, 1, 5.0), False),  # between its rows: not a sensel of its plane
    ]
    y, x, key, sign, lz = (np.array(v) for v in zip(*(c for c, _ in cases)))
    got = covered([line], y, x, key, sign, lz, np.zeros(len(cases)))
    assert got.tolist() == [want for _, want in cases]


# --------------------------------------------------------------------------- detection end to end


def _stack_with_lines(seed: int, mosaic: bool, amp: float = 1.5 * DARK_SIGMA):
    """Darks with a bright partial column (from (41, 21)) and a dark partial row (from (12, 90)),
    LENGTH sensels of one colour each, every sensel amp DN off: too weak to stand out alone."""
    step = 2 if mosaic else 1
    stack = make_stack(dark=True, frames=40, h=128, w=128, seed=seed).astype(np.float64)
    stack[:, 21 + step * np.arange(LENGTH), 41] += amp
    stack[:, 90, 12 + step * np.arange(LENGTH)] -= amp
    stats = stats_of_stack(np.clip(np.rint(stack), 0, WHITE).astype(np.uint16), stride=step)
    return stats, MOSAIC if mosaic else SensorLayout()


@pytest.mark.parametrize("mosaic", [True, False], ids=["mosaic", "monochrome"])
def test_partial_column_and_row_are_one_report_each_at_their_first_sensel(mosaic):
    """Each planted run is one report that covers it; the Kadane scan can run on past its ends over
    healthy sensels whose z happens to beat the drift, by a few sensels at most, and in the typical
    stack (the median over seeds) by no more than 10%."""
    step = 2 if mosaic else 1
    lengths = {"column": [], "row": []}
    for seed in range(6):
        stats, layout = _stack_with_lines(seed, mosaic)
        det = detect(stats, layout=layout)
        lines = {d.kind: d for d in det.defects if d.kind in ("column", "row")}
        assert sorted(lines) == ["column", "row"], [(d.kind, d.x, d.y, d.length) for d in det.defects]
        assert len(det.defects) == 2, [(d.kind, d.x, d.y, d.length, d.detail) for d in det.defects]
        col, row = lines["column"], lines["row"]
        assert col.x == 41 and (col.y - 21) % step == 0 and row.y == 90 and (row.x - 12) % step == 0
        assert col.y <= 21 and col.y + step * col.length >= 21 + step * LENGTH, (col.y, col.length)
        assert row.x <= 12 and row.x + step * row.length >= 12 + step * LENGTH, (row.x, row.length)
        for d in (col, row):
            assert d.length <= 1.25 * LENGTH and d.score >= LINE_Z
            lengths[d.kind].append(d.length)
        if mosaic:
            assert (col.color, row.color) == ("B", "R")  # (odd, odd) and (even, even) of RGGB
    for kind, got in lengths.items():
        assert abs(np.median(got) - LENGTH) <= 0.1 * LENGTH, (kind, got)


@pytest.mark.parametrize("mosaic", [True, False], ids=["mosaic", "monochrome"])
def test_a_clean_stack_reports_no_line(mosaic):
    for seed in range(4):
        stats = stats_of_stack(make_stack(dark=True, frames=40, h=128, w=128, seed=seed), stride=2 if mosaic else 1)
        det = detect(stats, layout=MOSAIC if mosaic else SensorLayout())
        assert not [d for d in det.defects if d.kind in ("column", "row")]


def test_a_strong_hot_pixel_on_a_line_keeps_its_own_report():
    stack = make_stack([("hot", 21 + 2 * 10, 41, 0, 400.0)], dark=True, frames=40, h=128, w=128, seed=0)
    stack = stack.astype(np.float64)
    stack[:, 21 + 2 * np.arange(LENGTH), 41] += 1.5 * DARK_SIGMA
    det = detect(stats_of_stack(np.rint(stack).astype(np.uint16), stride=2), layout=MOSAIC)
    assert sorted((d.kind, d.x) for d in det.defects) == [("column", 41), ("hot", 41)]
    col, hot = sorted(det.defects, key=lambda d: d.kind)
    assert hot.y == 41 and col.y <= 21 and col.y + 2 * col.length >= 21 + 2 * LENGTH


def test_describe_line_names_the_run_its_colour_level_and_no_rate_without_exposures():
    stats, _ = _stack_with_lines(0, mosaic=True, amp=3.0)
    residual = stats.mean[1]
    line = Line(Plane(0, "B", 1, 1, 2), py=10, px=20, length=LENGTH, vertical=True, sign=1, z=20.0, mean_z=3.0,
                source="hot")
    d = describe_line(line, stats)
    assert (d.kind, d.x, d.y, d.length, d.channel, d.color) == ("column", 41, 21, LENGTH, 0, "B")
    # its mean against the parallel columns of its colour on either side: the planted 3 DN
    assert d.mean - d.neighbour_mean == pytest.approx(3.0, abs=0.5)
    # a sensel's residual holds half a run's excess (two of its neighbours share it): doubled back
    assert d.residual_mean == pytest.approx(3.0, abs=0.5)
    assert d.residual_mean == pytest.approx(2 * residual[21 : 21 + 2 * LENGTH : 2, 41].mean())
    assert math.isnan(d.dark_rate) and d.score == 20.0
    assert d.detail.startswith(f"column: {LENGTH} sensels of one colour brighter together")


def test_a_run_no_stronger_than_one_frame_could_draw_it_is_no_line():
    """In the across sums one frame adds at most ``frame_z`` to each sensel's z: a straight scene
    edge in one frame of a few draws a run of that along a whole row. A run is a line only beyond
    ``ONE_FRAME_MARGIN`` times what one frame could draw over its length; a real line of the same
    length and more per sensel passes."""
    from pipeline.detect.lines import ONE_FRAME_MARGIN

    z = np.zeros((400, 2), np.float32)
    z[:, 0] = 0.9  # one frame's edge, 0.9 per sensel along the whole row: z 18 over 400 sensels
    z[:, 1] = 2.0  # a line, 2 per sensel
    edge_only = 0.9 / ONE_FRAME_MARGIN * 1.01  # a frame adds up to a little over half the edge's z
    assert len(find_lines(z, PLANE, LINE_Z, 1, "across_bright", True)) == 2
    found = find_lines(z, PLANE, LINE_Z, 1, "across_bright", True, frame_z=edge_only)
    assert [line.px for line in found] == [1]


# --------------------------------------------------------------------------- the across sums' line nulls


def _across_maps(seed: int, share: float = 0.0, shape=(480, 640)) -> dict[str, np.ndarray]:
    """Score maps of a mosaic sensor whose across sums' z are white, or where a ``share`` of
    defects each lower both neighbours' across_x by 3-12 sigmas (as a population's defects do)."""
    rng = np.random.default_rng(seed)
    maps = {k: np.zeros(shape, np.float32) for k in ("hot", "dead")}
    maps["across_x"], maps["across_y"] = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    plane = PLANE.select(maps["across_x"])
    ys, xs = np.nonzero(rng.random(plane.shape) < share)
    lift = rng.uniform(3, 12, len(ys)).astype(np.float32)
    for dx in (-1, 1):
        inside = (xs + dx >= 0) & (xs + dx < plane.shape[1])
        np.add.at(plane, (ys[inside], xs[inside] + dx), -lift[inside])
    return maps


THRESHOLDS = {"hot": 7.0, "dead": 7.0}


def test_across_lines_are_held_to_the_maps_threshold_and_the_level_to_LINE_Z_times_their_noise():
    from pipeline.detect.line_bands import threshold
    from pipeline.detect.lines import PATTERN_Z, LineNoise

    assert threshold(THRESHOLDS, "across_bright") == threshold(THRESHOLDS, "across_dark") == 7.0
    assert threshold(THRESHOLDS, "hot") == threshold(THRESHOLDS, "dead") == LINE_Z
    assert threshold({"hot": 12.0}, "across_bright") == threshold({"hot": 12.0}, "hot") == 12.0
    assert threshold(THRESHOLDS, "across_bright", white=False) == LINE_Z  # a gray JPEG's blocks
    lengths = np.array([8, 100, 400])
    assert LineNoise(0.97, 0.0).held(7.0, lengths).tolist() == [7.0] * 3  # white: the threshold
    assert LineNoise(1.49, 0.0).held(7.0, lengths) == pytest.approx([7.0 * math.sqrt(1.49)] * 3)  # heavy tails
    patterned = LineNoise(1.0, 0.2).held(7.0, lengths)  # a row's own offset: PATTERN_Z of it, growing with length
    assert patterned == pytest.approx(np.sqrt(49 + PATTERN_Z**2 * 0.2 * lengths))


def test_a_short_row_of_the_across_sums_is_a_line_and_white_noise_alone_is_none():
    """A 23-sensel row at 1.7 sigmas per sensel (z about 8, under ``LINE_Z``: the many-defect darks'
    planted row of 22 DN) is found in the across sums' white z; noise alone draws no line."""
    for seed in range(3):
        assert plane_lines(_across_maps(seed), PLANE, THRESHOLDS) == []
    maps = _across_maps(5)
    PLANE.select(maps["across_y"])[100, 40:63] += 1.7
    (line,) = plane_lines(maps, PLANE, THRESHOLDS)
    assert (line.kind, line.py, line.sign, line.source) == ("row", 100, 1, "across_bright")
    assert abs(line.px - 40) <= 2 and abs(line.length - 23) <= 4 and line.z < LINE_Z


def test_a_population_s_heavy_tailed_across_sums_draw_no_line():
    """Where 2 % of the sensels are defects, their neighbours' across sums make the z heavy-tailed
    (variance 1.54): held to the map's threshold alone, columns of healthy sensels pass as lines
    (about one a sensor, as on the many-defect darks); held to it over their noise, none do."""
    from pipeline.detect.line_bands import COLUMNS, ROWS, line_nulls, line_sums

    alone = found = 0
    for seed in range(12):
        maps = _across_maps(seed, share=0.02)
        (noises,) = line_nulls([line_sums(maps, [PLANE])]).noises
        x, y = noises[("across_x", COLUMNS)], noises[("across_y", ROWS)]
        assert x.white == pytest.approx(1.54, abs=0.08) and x.along < 0.01
        assert y.white == pytest.approx(1.0, abs=0.03) and y.along < 0.01
        alone += len(find_lines(PLANE.select(maps["across_x"]), PLANE, 7.0, -1, "across_dark", True))
        found += len(plane_lines(maps, PLANE, THRESHOLDS))
    assert alone >= 5 and found == 0


def test_a_sensor_s_row_pattern_draws_no_row_and_a_partial_row_beyond_it_is_one():
    """A CMOS sensor's fixed row pattern adds the same to every sensel of a row: at 0.45 sigmas a
    row (1 DN against a read noise of 10 DN in across_y), the rows 3 of its sigmas out read z 27 over
    320 sensels, and passed as lines (31 of 400 rows of a dark stack). Held to their noise, none
    does; a partial row 2.4 sigmas up over 160 sensels, 5 of the pattern's sigmas, is found."""
    rng = np.random.default_rng(7)
    maps = _across_maps(8)
    rows = PLANE.select(maps["across_y"])
    rows += rng.normal(0, 0.45, (rows.shape[0], 1)).astype(np.float32)
    plain = [line for sign in (1, -1) for line in find_lines(rows, PLANE, 7.0, sign, "across_bright", False)]
    assert len(plain) >= 10  # the pattern alone, at the plain threshold
    assert plane_lines(maps, PLANE, THRESHOLDS) == []
    rows[120, 100:260] += 2.4
    (line,) = plane_lines(maps, PLANE, THRESHOLDS)
    assert (line.kind, line.py, line.sign) == ("row", 120, 1) and abs(line.px - 100) <= 3 and abs(line.length - 160) <= 8


def test_line_nulls_are_the_same_however_the_sensor_is_cut_into_bands():
    from pipeline.detect.line_bands import COLUMNS, ROWS, line_nulls, line_sums

    maps = _across_maps(3, share=0.01)
    maps["dark_current"] = np.abs(maps["across_y"])
    whole = line_nulls([line_sums(maps, [PLANE])], [(0.1, 0.2)])
    cuts = [0, 130, 132, 480]
    parts = [line_sums({k: m[a:b] for k, m in maps.items()}, [PLANE]) for a, b in zip(cuts, cuts[1:])]
    assert line_nulls(parts, [(0.1, 0.2)]) == whole
    z = np.clip(PLANE.select(maps["across_x"]), -CLIP, CLIP)
    assert whole.noises[0][("across_x", ROWS)].white == pytest.approx(float(np.mean(z.astype(np.float64) ** 2)))
    assert whole.noise(0, "across_bright", True) is whole.noises[0][("across_x", COLUMNS)]
    assert whole.noise(0, "hot", False) is whole.noises[0][("level", ROWS)] and whole.frame(0, 1) == 0.2


def test_a_long_weak_row_and_column_of_the_across_sums_are_lines_and_noise_alone_is_none():
    """A 13 DN row of 161 sensels in a raw collection read 0.73 sigma per sensel in its across sums
    (z 9.1), and was missed under the least mean of 0.75 a level run needs (a scene's gradient draws
    long weak runs there; it cancels in the across sums' second difference). The across sums need
    no mean beyond the drift (``lines.ACROSS_MIN_MEAN``): white z alone still draws no line, and a
    weak row (0.6 sigma over 300 sensels) and a weak column (0.65 over 200) are one line each."""
    for seed in range(12):
        assert plane_lines(_across_maps(seed), PLANE, THRESHOLDS) == []
    rows, columns = _across_maps(21), _across_maps(22)  # apart: of a column and the row it crosses, one is kept
    PLANE.select(rows["across_y"])[60, 10:310] += 0.6
    PLANE.select(columns["across_x"])[20:220, 250] += 0.65
    (row,), (column,) = plane_lines(rows, PLANE, THRESHOLDS), plane_lines(columns, PLANE, THRESHOLDS)
    assert (column.kind, column.px, column.sign, column.source) == ("column", 250, 1, "across_bright")
    assert (row.kind, row.py, row.sign, row.source) == ("row", 60, 1, "across_bright")
    # a weak run's ends are fuzzy: noise of either sign beyond them moves them by tens of sensels
    assert abs(column.py - 20) <= 30 and abs(row.px - 10) <= 30 and column.length >= 150 and row.length >= 200
    assert max(column.mean_z, row.mean_z) < MIN_MEAN  # weak per sensel: a level run this weak is no line
