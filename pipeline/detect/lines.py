"""Lines: partial columns and rows of one colour that are brighter or darker together.

A CCD trap or a CMOS column amplifier raises (or lowers) a run of sensels along a column or a
row. Each of them may be too weak to stand out alone, but the run does: along every column and
row of a plane, the score maps (the level's signed z, and the dark-current z) are searched for
the segment of largest sum of z (each clipped at ``CLIP``) above a drift of ``DRIFT`` per sensel
(the maximum-subarray scan), and the segment is a line when its z, its sum over the square root
of its length, is at least ``LINE_Z`` (or the map's threshold, if higher), over at least
``MIN_LENGTH`` sensels whose mean and median z are at least ``MIN_MEAN`` (in the level and the
dark current; ``ACROSS_MIN_MEAN`` in the across sums). A run of dark current
is a line only where the level agrees. The drift keeps a segment to the run itself: a healthy
sensel's z is about 0, so the sum falls off past the run's ends. Two passes per column and row
find a second run.

A line is one report (kind ``column`` or ``row``, its first sensel and its length); the point
reports on its sensels of its sign are its own and go, and so do the opposite-sign ones beside
it (a run leaks -1/4 of itself into each neighbour's residual, as a sensel does), unless they
stand out far more than the line does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .planes import Plane

# z per sensel a run must exceed to grow (the scan's drift), the least mean z and length of a line
DRIFT = 0.5
MIN_MEAN = 0.75
# the across sums' runs need no mean of their own beyond the drift's: a scene's gradient, which
# draws long runs of weak z in the level, cancels in their second difference (2v minus the two
# neighbours across); one frame's straight edge is bounded by ``ONE_FRAME_MARGIN``; a sensor's row
# or column pattern is in their ``LineNoise``. At 0.75, a 13 DN row of 161 sensels (z 9.1, 0.73
# per sensel) was missed; at the drift, the benchmark's 10 collections, 7 collections of other
# seeds and benchmarks/detection.py's stacks gave no other line and no other report
ACROSS_MIN_MEAN = 0.5
MIN_LENGTH = 8
# a line claims many sensels at once: its z must pass at least this (or the map's threshold)
LINE_Z = 10.0
# a run of rising dark current must also stand out in the level, by this mean z: one frame's
# scene edge at the longest exposure draws a line in the rate alone (the fit's leverage)
RATE_LEVEL_Z = 1.0
# passes per column or row (a second run on the same line)
PASSES = 2
# each sensel's z counts up to this: one strong defect must not carry a run of healthy sensels
CLIP = 4.0
# a point report on (or beside) a line stays when it stands out this many times more than the line
OWN_RATIO = 4.0
# a line of a map whose frames each add at most ``frame_z`` per sensel (the across sums) must stand
# out this many times more than one frame could make it: frame_z * sqrt(length) each
ONE_FRAME_MARGIN = 2.0


# sigmas of a line's own offset (a sensor's fixed row or column pattern) it must stand beyond: one draw
# per line, not one per run of its sensels: 5 pass in 6e-7 of lines (both signs), under 0.01 false
# lines on a 61 MP mosaic's 16,000
PATTERN_Z = 5.0


@dataclass(frozen=True)
class LineNoise:
    """What a healthy run of a map's z along one direction holds: each sensel's own variance
    (``white``, its z clipped at ``CLIP``) and a variance its line adds to all of its sensels alike
    (``along``: a sensor's fixed row or column pattern). A healthy run of ``length`` sensels has z
    of variance white + along x length: ``held`` asks the white part to pass the threshold, and the
    line's own part ``PATTERN_Z``, never less than the threshold alone."""

    white: float = 1.0
    along: float = 0.0

    def held(self, threshold: float, length: np.ndarray) -> np.ndarray:
        return np.sqrt(threshold**2 * max(1.0, self.white) + PATTERN_Z**2 * self.along * np.maximum(length, 0))


@dataclass(frozen=True)
class Line:
    """A run of ``length`` sensels of one plane from plane position (py, px), along a column
    (``vertical``) or a row; ``sign`` +1 bright, -1 dark; ``source`` the map that found it."""

    plane: Plane
    py: int
    px: int
    length: int
    vertical: bool
    sign: int
    z: float  # the run's sum of z (each clipped at CLIP) over sqrt(length)
    mean_z: float  # its sensels' mean z (unclipped)
    source: str
    level_z: float = 0.0  # its sensels' mean level z and dark-current z (each map's, whichever found it)
    rate_z: float = 0.0

    def plane_cells(self) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(self.length)
        if self.vertical:
            return self.py + i, np.full(self.length, self.px)
        return np.full(self.length, self.py), self.px + i

    def sensor_cells(self) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = self.plane_cells()
        return self.plane.y0 + self.plane.step * ys, self.plane.x0 + self.plane.step * xs

    @property
    def kind(self) -> str:
        return "column" if self.vertical else "row"


def _kadane(z, drift, y0, cur, cur_total, cur_start, best, best_total, best_start, best_end):
    """Kadane's scan down every column of ``z`` at once (row by row, for the cache), from sensor
    row ``y0``, carrying on from the state it is given (a band's scan goes on from the band above
    it's): the runs still open (``cur``: sum of z - drift, ``cur_total``: of z, ``cur_start``),
    and the segment of largest sum of (z - drift) so far (``best_start``/``best_end``, start ==
    end: none; ``best_total``: its sum of z). Choices are selects, not branches: LLVM vectorises
    the row (3.2 -> 0.8 ns a value), with the same numbers (a NaN carries on as it did)."""
    h, w = z.shape
    for y in range(h):
        row = y0 + y
        for c in range(w):
            value = np.float64(z[y, c])
            step = value - drift
            keep = not (cur[c] <= 0)  # an open run goes on; one of no gain starts again here
            run = step + (cur[c] if keep else 0.0)
            total = value + (cur_total[c] if keep else 0.0)
            start = cur_start[c] if keep else row
            cur[c] = run
            cur_total[c] = total
            cur_start[c] = start
            better = run > best[c]
            best[c] = run if better else best[c]
            best_total[c] = total if better else best_total[c]
            best_start[c] = start if better else best_start[c]
            best_end[c] = row + 1 if better else best_end[c]


_KADANE = None


def _kadane_kernel():
    """``_kadane`` compiled by numba, on first use: importing detection must not load numba (a
    client that only merges small stats would pay its second). Row by row in numpy it took 2.8 s of
    a 12 MP stack's detection."""
    global _KADANE
    if _KADANE is None:
        from ..stats.numba_cache import jit

        _KADANE = jit(nogil=True)(_kadane)
    return _KADANE


@dataclass
class ColumnScan:
    """Kadane's scan down every column of a map, which may be fed a band of rows at a time, in
    order: the result is the same as one scan over the whole columns, number for number."""

    cur: np.ndarray
    cur_total: np.ndarray
    cur_start: np.ndarray
    best: np.ndarray
    best_total: np.ndarray
    best_start: np.ndarray
    best_end: np.ndarray
    rows: int = 0  # rows scanned so far

    @classmethod
    def start(cls, width: int) -> ColumnScan:
        return cls(np.zeros(width), np.zeros(width), np.zeros(width, np.int64), np.zeros(width), np.zeros(width),
                   np.zeros(width, np.int64), np.zeros(width, np.int64))

    def advance(self, z: np.ndarray, drift: float) -> ColumnScan:
        """Scan the next rows ``z`` (a band of the columns, below the rows scanned so far)."""
        _kadane_kernel()(np.ascontiguousarray(z), float(drift), self.rows, self.cur, self.cur_total, self.cur_start,
                         self.best, self.best_total, self.best_start, self.best_end)
        self.rows += z.shape[0]
        return self

    def hits(self, threshold: float, noise: LineNoise | None = None, min_mean: float = MIN_MEAN) -> np.ndarray:
        """The columns whose best run may make a line (``find_lines``' first pass takes them)."""
        return np.flatnonzero(_passing(self.best_start, self.best_end, self.best_total, threshold, 0.0, noise,
                                       min_mean)[0])


def best_runs(z: np.ndarray, drift: float = DRIFT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every column of ``z`` (rows along axis 0), the segment [start, end) of largest sum of
    (z - drift), by Kadane's scan run over all columns at once; its sum of z. Columns with no
    positive segment have start == end."""
    scan = ColumnScan.start(z.shape[1]).advance(z, drift)
    return scan.best_start, scan.best_end, scan.best_total


def _passing(start: np.ndarray, end: np.ndarray, total: np.ndarray, threshold: float,
             frame_z: float = 0.0, noise: LineNoise | None = None,
             min_mean: float = MIN_MEAN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which best runs are long, strong and dense enough for a line (and beyond what one frame
    could draw, ``ONE_FRAME_MARGIN`` x ``frame_z`` x sqrt(length)); their z and mean z. ``noise``:
    the map's along this direction, which scales the threshold with each run's length."""
    length = end - start
    held = noise.held(threshold, length) if noise is not None else threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(length > 0, total / np.sqrt(np.maximum(length, 1)), 0.0)
        mean = np.where(length > 0, total / np.maximum(length, 1), 0.0)
    one_frame = ONE_FRAME_MARGIN * frame_z * np.sqrt(np.maximum(length, 0))
    return (length >= MIN_LENGTH) & (score >= held) & (score >= one_frame) & (mean >= min_mean), score, mean


def find_lines(z: np.ndarray, plane: Plane, threshold: float, sign: int, source: str,
               vertical: bool, drift: float = DRIFT, index: np.ndarray | None = None,
               frame_z: float = 0.0, noise: LineNoise | None = None, min_mean: float = MIN_MEAN) -> list[Line]:
    """The lines of one sign in a plane's map ``z`` (signed: a bright run is positive), along
    columns (``vertical``) or rows; ``drift``: what a sensel's z must exceed for a run to grow.
    ``index``: the plane columns (or rows) that ``z``'s columns (rows) are, where it holds only
    some of them (a band's rows; the columns a band-wise scan found, ``ColumnScan.hits``).
    ``frame_z``: the most one frame can add to a sensel's z in this map (0: no bound); ``noise``:
    the map's along this direction (``LineNoise``; None: white); ``min_mean``: the least mean and
    median z of a line's sensels."""
    raw = (sign * z if vertical else sign * z.T).astype(np.float32)
    work = np.minimum(raw, CLIP)
    index = np.arange(work.shape[1]) if index is None else np.asarray(index)
    out: list[Line] = []
    columns = np.arange(work.shape[1])  # a pass looks again only where the one before took a run
    for _ in range(PASSES):
        start, end, total = best_runs(work[:, columns] if len(columns) < work.shape[1] else work, drift)
        passing, score, _ = _passing(start, end, total, threshold, frame_z, noise, min_mean)
        hit = np.flatnonzero(passing)
        if not len(hit):
            break
        for i in hit.tolist():
            c, a, n = int(columns[i]), int(start[i]), int(end[i] - start[i])
            if np.median(work[a : a + n, c]) < min_mean:  # a few strong sensels, not a run
                work[a : a + n, c] = 0.0
                continue
            py, px = (a, int(index[c])) if vertical else (int(index[c]), a)
            out.append(Line(plane, py, px, n, vertical, sign, float(score[i]), float(raw[a : a + n, c].mean()),
                            source))
            work[a : a + n, c] = 0.0
        columns = columns[hit]
    return out


def plane_lines(maps: dict[str, np.ndarray], plane: Plane, thresholds: dict[str, float]) -> list[Line]:
    """Every line of a plane: bright and dark runs of the level, rising runs of dark current,
    along columns and rows; where a dark-current run and a level run cover the same sensels,
    the stronger one. The whole plane as one band (``line_bands``)."""
    from .line_bands import column_lines, gather_columns, line_nulls, line_sums, scan_band

    nulls = line_nulls([line_sums(maps, [plane])])
    scans, rows = scan_band(maps, [plane], [0], thresholds, nulls, None)
    columns = gather_columns(maps, [plane], scans.wanted(thresholds, nulls))
    return dedupe(column_lines([plane], scans, [columns], thresholds, nulls) + rows)


def one_sided_drift(z: np.ndarray) -> float:
    """The drift for a one-sided map (max(z, 0), as the dark-current z): DRIFT above its healthy
    sensels' own mean (about 0.4, not 0), or a run would hardly fall past its end."""
    return drift_of([clipped_sums(z)])


def drift_of(parts: list[tuple[np.ndarray, int]]) -> float:
    """The one-sided drift from the ``clipped_sums`` of a plane's bands (its rows' sums, and
    how many values): their total taken exactly, so any cut into bands gives the same."""
    total = math.fsum(x for rows, _ in parts for x in rows.tolist())
    return DRIFT + total / max(sum(count for _, count in parts), 1)


def clipped_sums(z: np.ndarray) -> tuple[np.ndarray, int]:
    """Each row's sum of max(z, 0) clipped at CLIP, and how many values: a band's share of the
    drift. A row lies in one band, and their total is taken exactly (``math.fsum``), so the
    drift is the same however the plane is cut into bands."""
    return np.asarray(np.sum(np.clip(z, 0.0, CLIP), axis=1, dtype=np.float64)), int(z.size)


def dedupe(lines: list[Line]) -> list[Line]:
    """The lines that are not the leak of another, and of those sharing sensels (the same run found
    in two maps, a column and the row through it) the strongest; lines of different planes never
    touch. A run leaks -1/4 of itself into the 4-neighbour residual of the parallel lines of its
    colour beside it, and -1/2 into their across sums: a line beside one of the other sign that
    stands out more (``_stands_out``) is its leak. Not by z: each sensel's z counts up to ``CLIP``,
    so a strong line and its leaks have about the same z, and the leak's may be the larger."""
    leaks = {id(a) for a in lines for b in lines if b.sign != a.sign and b.vertical == a.vertical and _adjacent(a, b)
             and _stands_out(b) > _stands_out(a)}
    kept: list[Line] = []
    taken: set[tuple[int, int, int]] = set()
    # strongest first; equal z in one order, however the lines were found (band by band or whole)
    order = {"hot": 0, "dead": 1, "dark_current": 2}
    for line in sorted((a for a in lines if id(a) not in leaks),
                       key=lambda found: (-found.z, not found.vertical, order.get(found.source, 3),
                                          found.plane.key, found.py, found.px)):
        cells = {(line.plane.key, y, x) for y, x in zip(*(a.tolist() for a in line.plane_cells()))}
        if cells & taken:
            continue
        beside = any(k.sign != line.sign and k.vertical == line.vertical and _adjacent(k, line) for k in kept)
        if beside:
            continue
        kept.append(line)
        taken |= cells
    return kept


def _stands_out(line: Line) -> float:
    """How far a line's sensels stand out: their mean level z, or their mean z in the map that
    found it, whichever is larger (a strong line's across sums clip in every frame, as its leaks'
    do; a weak offset's level is noise, its across sums are not), and their rising dark current's
    mean z on top: a dark-current line's own level has the wide error of a mean that grows with
    exposure (0 in the many-defect darks), while its leaks' dark current falls (0 once clipped)."""
    return max(line.level_z, abs(line.mean_z)) + line.rate_z


def _adjacent(a: Line, b: Line) -> bool:
    """Whether two parallel lines of a plane run side by side (one plane step apart, overlapping)."""
    if a.plane != b.plane:
        return False
    if a.vertical:
        return abs(a.px - b.px) == 1 and a.py < b.py + b.length and b.py < a.py + a.length
    return abs(a.py - b.py) == 1 and a.px < b.px + b.length and b.px < a.px + a.length


def covered(lines: list[Line], ys: np.ndarray, xs: np.ndarray, plane_keys: np.ndarray, signs: np.ndarray,
            level_z: np.ndarray, rate_z: np.ndarray) -> np.ndarray:
    """Which point candidates (sensor positions, plane keys, level signs, level and dark-current
    z) a line explains: on it with its sign, or beside it with the other, and in neither map
    ``OWN_RATIO`` times stronger than the line's sensels are on average."""
    out = np.zeros(len(ys), bool)
    for line in lines:
        cy, cx = line.sensor_cells()
        step = line.plane.step
        on = np.zeros(len(ys), bool)
        if line.vertical:
            x0 = int(cx[0])
            within = (ys >= cy[0]) & (ys <= cy[-1]) & ((ys - line.plane.y0) % step == 0)
            on = within & (xs == x0) & (signs == line.sign)
            side = within & (np.abs(xs - x0) == step) & (signs == -line.sign)
        else:
            y0 = int(cy[0])
            within = (xs >= cx[0]) & (xs <= cx[-1]) & ((xs - line.plane.x0) % step == 0)
            on = within & (ys == y0) & (signs == line.sign)
            side = within & (np.abs(ys - y0) == step) & (signs == -line.sign)
        same_plane = plane_keys == line.plane.key
        weak = (np.abs(level_z) < OWN_RATIO * max(line.level_z, 1.0)) & (rate_z < OWN_RATIO * max(line.rate_z, 1.0))
        out |= same_plane & (on | side) & weak
    return out


def line_score(line: Line) -> float:
    return line.z if math.isfinite(line.z) else 0.0
