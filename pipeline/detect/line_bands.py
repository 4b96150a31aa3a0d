"""Lines found band by band, so that no process needs a whole plane's score map.

A row lies in one band: each band finds its own row lines, whole. A column crosses every
band: each band carries Kadane's scan of every column on (``lines.ColumnScan``), in order, and
once the last band is scanned, the columns whose best run may make a line (few) are gathered
whole from the bands and searched exactly as ``lines.find_lines`` searches a whole plane. The
drift of the one-sided dark-current map is its plane's mean, summed band by band first. The
lines are the same, number for number, however the sensor is cut into bands.

Where the scan kept the across sums (``criteria.across``), their z's are searched too: columns
in ``across_x`` (each sensel against its left and right neighbours), rows in ``across_y``, bright
and dark, at the level's thresholds, and beyond what one frame could draw (``lines.ONE_FRAME_MARGIN``:
a frame adds at most ``frame_z`` per sensel there, ``criteria.across.one_frame_z``; a straight scene
edge in one frame of a few is a run of those).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..stats.model import ACROSS_SUMS
from .lines import (
    ACROSS_MIN_MEAN,
    CLIP,
    DRIFT,
    LINE_Z,
    MIN_MEAN,
    RATE_LEVEL_Z,
    ColumnScan,
    Line,
    LineNoise,
    clipped_sums,
    drift_of,
    find_lines,
)
from .planes import Plane

# the level's runs: bright ("hot" map's threshold) and dark ("dead"'s)
LEVEL_SOURCES = (("hot", 1), ("dead", -1))
RATE = "dark_current"
# the across sums' runs: bright and dark, at the level's thresholds (columns in across_x, rows in across_y)
ACROSS_SOURCES = (("across_bright", 1), ("across_dark", -1))
THRESHOLD_OF = {"across_bright": "hot", "across_dark": "dead"}


def least_mean(source: str) -> float:
    """The least mean z of a line's sensels in this source's map (``lines.ACROSS_MIN_MEAN``)."""
    return ACROSS_MIN_MEAN if source in THRESHOLD_OF else MIN_MEAN


def level_map(maps: dict[str, np.ndarray], plane: Plane) -> np.ndarray:
    """The signed level z of a plane (bright positive, dark negative), float32."""
    return plane.select(maps["hot"]).astype(np.float32) - plane.select(maps["dead"])


# a column's sensels' clipped z are summed in units of 2^-20, as integers: any cut into bands sums them alike
LINE_UNIT = 2.0**20
# the fewest lines of a plane whose means say how much a healthy line's mean varies
MIN_LINES = 16
ROWS, COLUMNS = "rows", "columns"


def line_maps(maps: dict[str, np.ndarray], plane: Plane) -> dict[str, np.ndarray]:
    """The maps whose lines are searched in a plane: the signed level, the dark current, the
    across sums (where the band has them)."""
    out = {"level": level_map(maps, plane)}
    for k in (RATE, *ACROSS_SUMS):
        if k in maps:
            out[k] = plane.select(maps[k])
    return out


def map_of(source: str, vertical: bool) -> str:
    """The map a line source's runs are searched in."""
    if source in THRESHOLD_OF:
        return ACROSS_SUMS[0] if vertical else ACROSS_SUMS[1]
    return RATE if source == RATE else "level"


@dataclass
class LineSums:
    """A band's share of the planes' line nulls (``line_nulls``): per plane, each row's sum of
    the dark-current z clipped at 0 and ``CLIP`` (``lines.clipped_sums``), with how many; and per
    plane and searched map, each row's and each column's sum of its z clipped at +-``CLIP`` (a
    column's in ``LINE_UNIT`` integers: it crosses bands), and each row's sum of their squares."""

    rate: list[tuple[np.ndarray, int]] = field(default_factory=list)
    lines: list[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = field(default_factory=list)


def line_sums(maps: dict[str, np.ndarray], planes: list[Plane]) -> LineSums:
    """A band's ``LineSums``, from its core rows of the score maps."""
    rate = [clipped_sums(pl.select(maps[RATE])) for pl in planes] if RATE in maps else []
    lines = []
    for pl in planes:
        sums = {}
        for name, z in line_maps(maps, pl).items():
            clipped = np.clip(z, -CLIP, CLIP)
            rows = np.asarray(np.sum(clipped, axis=1, dtype=np.float64))  # a row lies in one band
            squares = np.asarray(np.einsum("ij,ij->i", clipped, clipped, dtype=np.float64))
            clipped *= LINE_UNIT
            units = np.rint(clipped, out=clipped).astype(np.int32)  # |z| <= CLIP: 2^22 units at most
            sums[name] = (rows, units.sum(axis=0, dtype=np.int64), squares)
        lines.append(sums)
    return LineSums(rate, lines)


def spread(means: np.ndarray) -> float:
    """The variance of a plane's whole lines' means, robustly: (1.4826 MAD)^2."""
    return float((1.4826 * np.median(np.abs(means - np.median(means)))) ** 2)


def line_noise(white: float, means: np.ndarray, length: int) -> LineNoise:
    """A map's ``LineNoise`` along one direction: its sensels' variance, and what its lines'
    means vary beyond white z's white / length (none where the plane has under ``MIN_LINES``)."""
    if len(means) < MIN_LINES or length < 1:
        return LineNoise(white, 0.0)
    return LineNoise(white, max(0.0, spread(means) - white / length))


@dataclass(frozen=True)
class LineNulls:
    """What a healthy run can reach, per plane, from every band's ``LineSums``: the drift of the
    one-sided dark-current map (``lines.one_sided_drift``); in the across sums, the most one frame
    adds to a sensel's z (``frame_z``: across_x, across_y; ``criteria.across.one_frame_z``); and
    per searched map and direction its ``LineNoise`` (``lines.LineNoise.held``: what a run of a
    length must pass).
    - Where a map's z is white, white is about 1 and along about 0: the across sums of every raw
      collection.
    - A population of defects makes the across sums heavy-tailed (white 1.49 on the many-defect
      darks: every defect lowers both its neighbours'): a false column there at the plain threshold.
    - A CMOS sensor's fixed row pattern adds to every sensel of a row alike: rows of 1 DN against
      a read noise of 10 DN (along 0.21 per sensel in across_y) drew 31 false rows of 400 on a
      dark stack.
    ``white`` (the attribute): the sensor is read per sensel; a gray JPEG's across sums are not
    white (its 8x8 blocks draw runs along their rows and columns: a false row of z 7.5 on a
    12-frame gray JPEG stack)."""

    drifts: list[float] = field(default_factory=list)
    frame_z: list[tuple[float, float]] | None = None
    noises: list[dict[tuple[str, str], LineNoise]] = field(default_factory=list)
    white: bool = True

    def frame(self, plane: int, axis: int) -> float:
        """The across sums' one-frame bound of a plane's ``axis`` (0: across_x, 1: across_y)."""
        return self.frame_z[plane][axis] if self.frame_z else 0.0

    def noise(self, plane: int, source: str, vertical: bool) -> LineNoise | None:
        """The noise of the map a source's columns (``vertical``) or rows are searched in."""
        if plane >= len(self.noises):
            return None
        return self.noises[plane].get((map_of(source, vertical), COLUMNS if vertical else ROWS))

    def threshold(self, thresholds: dict[str, float], source: str) -> float:
        """What a line of ``source`` must pass (``threshold``), before its noise's scale."""
        return threshold(thresholds, source, self.white)


def line_nulls(parts: list[LineSums], frame_z: list[tuple[float, float]] | None = None,
               white: bool = True) -> LineNulls:
    """The planes' ``LineNulls`` from every band's ``LineSums``: each sum is taken exactly
    (``math.fsum``, or in integers), so the nulls are the same however the sensor is cut into bands."""
    drifts = [drift_of([p.rate[i] for p in parts]) for i in range(len(parts[0].rate))] if parts else []
    noises = []
    for i in range(len(parts[0].lines) if parts else 0):
        per: dict[tuple[str, str], LineNoise] = {}
        for name in parts[0].lines[i]:
            rows = np.concatenate([p.lines[i][name][0] for p in parts])  # a row lies in one band
            columns = np.sum([p.lines[i][name][1] for p in parts], axis=0)
            squares = math.fsum(v for p in parts for v in p.lines[i][name][2].tolist())
            height, width = len(rows), len(columns)
            var = squares / max(height * width, 1)
            per[(name, ROWS)] = line_noise(var, rows / width, width)
            per[(name, COLUMNS)] = line_noise(var, columns / (LINE_UNIT * height), height)
        noises.append(per)
    return LineNulls(drifts, frame_z, noises, white)


def threshold(thresholds: dict[str, float], source: str, white: bool = True) -> float:
    """What a line of ``source`` must pass, before its map's noise scales it (``LineNulls``). The
    across sums' z is white (each frame in its own sigmas, scaled by the MAD): a run of its healthy
    sensels passes the map's own threshold more rarely than one sensel does (a run of white z
    clipped at ``CLIP`` passes 6 in 3e-6 of lines of 320 sensels, 1e-5 of 2,000, and falls tenfold
    every 0.5 past it), so their lines are held to it. The level's and the dark current's z carry a
    scene's and a fit's structure along lines (a healthy row of a photo collection reached 9.8 in
    the level): ``LINE_Z`` at least, and so are the across sums' where they are not ``white`` (a
    gray JPEG's)."""
    if source in THRESHOLD_OF:
        held = thresholds[THRESHOLD_OF[source]]
        return held if white else max(LINE_Z, held)
    return max(LINE_Z, thresholds[source])


def _work(z: np.ndarray, sign: int) -> np.ndarray:
    """What ``find_lines`` scans of a map along its columns (sign applied, float32, clipped)."""
    return np.minimum((sign * z).astype(np.float32), CLIP)


@dataclass
class LineScans:
    """The column scans of every plane and source, carried from band to band."""

    scans: dict[tuple[int, str], ColumnScan] = field(default_factory=dict)

    def wanted(self, thresholds: dict[str, float], nulls: LineNulls) -> dict[int, np.ndarray]:
        """Per plane, the columns to gather whole: those whose best run may make a line."""
        out: dict[int, list[np.ndarray]] = {}
        for (i, source), scan in self.scans.items():
            out.setdefault(i, []).append(scan.hits(nulls.threshold(thresholds, source), nulls.noise(i, source, True),
                                                   least_mean(source)))
        return {i: np.unique(np.concatenate(hits)) for i, hits in out.items()}


def scan_band(maps: dict[str, np.ndarray], planes: list[Plane], plane_rows: list[int], thresholds: dict[str, float],
              nulls: LineNulls, scans: LineScans | None) -> tuple[LineScans, list[Line]]:
    """One band's part (``maps``: its core rows; ``plane_rows``: each plane's row where they
    start): its row lines, whole (``row_lines``), and the column scans carried on over its rows
    (``column_scans``; ``scans``: the band above's, None for the first band; changed in place)."""
    return column_scans(maps, planes, nulls, scans), row_lines(maps, planes, plane_rows, thresholds, nulls)


def column_scans(maps: dict[str, np.ndarray], planes: list[Plane], nulls: LineNulls,
                 scans: LineScans | None) -> LineScans:
    """The column scans of every plane and source carried on over a band's core rows (``maps``)
    from the band above's (``scans``, changed in place; None for the first band): the only part
    of the line search that must go band after band."""
    scans = scans or LineScans()
    for i, pl in enumerate(planes):
        searched = line_maps(maps, pl)
        level = searched["level"]
        for source, sign in LEVEL_SOURCES:
            scans.scans.setdefault((i, source), ColumnScan.start(level.shape[1])).advance(_work(level, sign), DRIFT)
        if RATE in searched:
            rate = searched[RATE]
            scans.scans.setdefault((i, RATE), ColumnScan.start(rate.shape[1])).advance(_work(rate, 1), nulls.drifts[i])
        if ACROSS_SUMS[0] in searched:
            across_x = searched[ACROSS_SUMS[0]]
            for source, sign in ACROSS_SOURCES:
                scans.scans.setdefault((i, source), ColumnScan.start(level.shape[1])).advance(_work(across_x, sign),
                                                                                              DRIFT)
    return scans


def row_lines(maps: dict[str, np.ndarray], planes: list[Plane], plane_rows: list[int], thresholds: dict[str, float],
              nulls: LineNulls) -> list[Line]:
    """A band's row lines, whole (a row lies in one band: any band, in any order)."""
    found: list[Line] = []
    for i, (pl, row0) in enumerate(zip(planes, plane_rows)):
        searched = line_maps(maps, pl)
        level, rate = searched["level"], searched.get(RATE)
        index = np.arange(level.shape[0]) + row0
        rows: list[Line] = []
        for source, sign in LEVEL_SOURCES:
            rows += find_lines(level, pl, nulls.threshold(thresholds, source), sign, source, False, DRIFT, index,
                               noise=nulls.noise(i, source, False))
        if rate is not None:
            rising = find_lines(rate, pl, nulls.threshold(thresholds, RATE), 1, RATE, False, nulls.drifts[i], index,
                                noise=nulls.noise(i, RATE, False))
            rows += [line for line in rising if _mean(level, line, row0, 0) >= RATE_LEVEL_Z]
        if ACROSS_SUMS[1] in searched:
            across_y = searched[ACROSS_SUMS[1]]
            for source, sign in ACROSS_SOURCES:
                rows += find_lines(across_y, pl, nulls.threshold(thresholds, source), sign, source, False, DRIFT,
                                   index, nulls.frame(i, 1), nulls.noise(i, source, False), least_mean(source))
        found += [_with_means(line, level, rate, row0, 0) for line in rows]
    return found


def gather_columns(maps: dict[str, np.ndarray], planes: list[Plane],
                   wanted: dict[int, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
    """A band's rows of the wanted columns of each plane: the level, and the dark-current z and
    across_x's z where the band has them."""
    out = {}
    for i, cols in wanted.items():
        if len(cols):
            searched = line_maps(maps, planes[i])
            out[i] = {k: np.ascontiguousarray(searched[k][:, cols]) for k in ("level", RATE, ACROSS_SUMS[0])
                      if k in searched}
    return out


def column_lines(planes: list[Plane], scans: LineScans, bands: list[dict[int, dict[str, np.ndarray]]],
                 thresholds: dict[str, float], nulls: LineNulls) -> list[Line]:
    """The column lines, from the wanted columns gathered from every band (``gather_columns``,
    in row order), searched as ``find_lines`` searches the whole plane."""
    found: list[Line] = []
    wanted = scans.wanted(thresholds, nulls)
    for i, cols in wanted.items():
        if not len(cols):
            continue
        pl = planes[i]
        level = np.concatenate([b[i]["level"] for b in bands])
        rate = np.concatenate([b[i][RATE] for b in bands]) if RATE in bands[0][i] else None
        lines: list[Line] = []
        for source, sign in LEVEL_SOURCES:
            lines += find_lines(level, pl, nulls.threshold(thresholds, source), sign, source, True, DRIFT, cols,
                                noise=nulls.noise(i, source, True))
        if rate is not None:
            rising = find_lines(rate, pl, nulls.threshold(thresholds, RATE), 1, RATE, True, nulls.drifts[i], cols,
                                noise=nulls.noise(i, RATE, True))
            lines += [line for line in rising if _mean(level, line, 0, cols) >= RATE_LEVEL_Z]
        if ACROSS_SUMS[0] in bands[0][i]:
            across_x = np.concatenate([b[i][ACROSS_SUMS[0]] for b in bands])
            for source, sign in ACROSS_SOURCES:
                lines += find_lines(across_x, pl, nulls.threshold(thresholds, source), sign, source, True, DRIFT,
                                    cols, nulls.frame(i, 0), nulls.noise(i, source, True), least_mean(source))
        found += [_with_means(line, level, rate, 0, cols) for line in lines]
    return found


def _cells(line: Line, row0: int, cols: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """A line's cells in an array of plane rows from ``row0`` and, for gathered columns, of
    the plane columns ``cols`` (0: every column, from the first)."""
    ys, xs = line.plane_cells()
    if isinstance(cols, np.ndarray):
        xs = np.searchsorted(cols, xs)
    return ys - row0, xs


def _mean(z: np.ndarray, line: Line, row0: int, cols: np.ndarray | int) -> float:
    return float(z[_cells(line, row0, cols)].mean())


def _with_means(line: Line, level: np.ndarray, rate: np.ndarray | None, row0: int, cols: np.ndarray | int) -> Line:
    """The line with its sensels' mean level z (absolute) and dark-current z."""
    cells = _cells(line, row0, cols)
    return replace(line, level_z=float(np.abs(level[cells]).mean()),
                   rate_z=0.0 if rate is None else float(rate[cells].mean()))
