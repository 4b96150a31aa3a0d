"""The defects of a synthetic collection: where they are, how each behaves, and their truth entries.

What real sensors show (design notes, section 3), drawn once per collection from its own seed:

- ``hot``: dark current, ``rate * t * ISO/100`` DN (rate log-uniform 20..3000 DN/s at ISO 100),
  with shot noise; a third of them start on a date inside the collection (``since``). "Warm"
  ones are a constant offset instead (log-uniform from 4 read-noise sigmas at ISO 100, ~9 DN,
  to 300 DN), at every exposure.
- ``stuck``: a constant raw value (white, or mid-range), noiseless.
- ``dead``: no response (gain 0), or "cold": a low gain (0.1..0.4).
- ``noisy``: telegraph noise with an independent state per frame (frames are taken hours to
  days apart): ``rts1`` one-sided (normal level, or ``+step`` in ``p_high`` of the frames),
  ``rts2`` two-sided (``-step/2`` or ``+step/2``), ``rts3`` three levels (two independent
  traps: ``0, step, 2 step``, each trap high with ``p_high``), or ``gaussian`` (extra noise of
  sigma ``step``). A trap holds charge, so ``step`` is DN at ISO 100 and scales with ISO/100,
  like the read noise it is compared with: 8..25 read-noise sigmas (17..54 DN at ISO 100).
- ``column`` / ``row``: ``length`` (20..200, or what fits) consecutive sensels of one CFA colour
  along a column (or row), every other sensel from the listed first one, raised by an offset
  (4..15 read-noise sigmas at ISO 100, 9..32 DN) or by a dark current (2..20 DN/s at ISO 100).
- clusters of 2 or 3 adjacent defects (8-neighbours), sharing a ``cluster`` id;
- border defects on the two outermost rows or columns (``border: true``);
- with ``population`` > 0, that fraction of all sensels are extra defects (sCMOS-like
  one-sided telegraph, or weak hot sensels of 5..50 DN/s), each listed (``population: true``).

Everything except a cluster's members and the population is at least ``MIN_SPACING`` (8)
sensels apart (Chebyshev), so that each is scored alone; population sensels keep 3 sensels
away from the others (their same-colour neighbours stay healthy) but may touch each other.
"""

from __future__ import annotations

import calendar
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .physics import CollectionSensor
from .plan import MIN_SPACING
from .sensor import COLOURS, cfa_colour_index

HOT_RATES = (20.0, 3000.0)  # DN/s at ISO 100, log-uniform
WARM_OFFSET_SIGMAS = 4.0  # smallest warm offset, in read-noise sigmas at ISO 100
WARM_OFFSET_MAX = 300.0  # DN
RTS_STEP_SIGMAS = (8.0, 25.0)  # telegraph step, read-noise sigmas at ISO 100
GAUSS_SIGMAS = (4.0, 10.0)  # extra noise of a gaussian noisy sensel, read-noise sigmas at ISO 100
LINE_LENGTHS = (20, 200)
POPULATION_RATES = (5.0, 50.0)  # weak hot sensels of a population, DN/s at ISO 100
POPULATION_STEP_SIGMAS = (6.0, 15.0)
NOISY_MODES = ("rts1", "rts2", "rts3", "gaussian")


def _defect(kind: str, x: int, y: int, colour: int, **fields: Any) -> dict:
    """A truth entry with every field of the schema; fields that do not apply are null (or 0 / false)."""
    d: dict[str, Any] = {
        "kind": kind, "x": int(x), "y": int(y), "channel": colour, "color": COLOURS[colour],
        "rate": 0.0, "offset": 0.0, "warm": False, "since": None, "since_unix": None,
        "value": None, "gain": None, "cold": False, "mode": None, "step": None, "p_high": None,
        "length": None, "direction": None, "cluster": None, "border": False, "population": False,
    }
    d.update(fields)
    return d


@dataclass
class CollectionPlan:
    """Every planted defect, as truth entries and as flat (row-major) sensel indices for rendering.

    Line defects are expanded to one index per sensel. ``rts_level`` is (frames, n) in units of
    the step (0/1 for rts1, -0.5/+0.5 for rts2, 0/1/2 for rts3).
    """

    defects: list[dict]
    rate_idx: np.ndarray
    rate: np.ndarray  # DN/s at ISO 100
    rate_since: np.ndarray  # Unix time of onset (-inf: always)
    offset_idx: np.ndarray
    offset: np.ndarray  # DN
    dead_idx: np.ndarray
    dead_gain: np.ndarray
    stuck_idx: np.ndarray
    stuck_value: np.ndarray
    rts_idx: np.ndarray
    rts_step: np.ndarray  # DN at ISO 100
    rts_level: np.ndarray
    gauss_idx: np.ndarray
    gauss_sigma: np.ndarray  # DN at ISO 100


class _Board:
    """Free positions on the sensor: placing a defect blocks its surroundings for the next ones."""

    def __init__(self, rng: np.random.Generator, width: int, height: int) -> None:
        self.rng, self.width, self.height = rng, width, height
        self.blocked = np.zeros((height, width), bool)

    def free(self, xs: np.ndarray, ys: np.ndarray) -> bool:
        ok = (xs >= 0) & (xs < self.width) & (ys >= 0) & (ys < self.height)
        return bool(ok.all()) and not self.blocked[ys, xs].any()

    def block(self, xs: np.ndarray, ys: np.ndarray, r: int = MIN_SPACING - 1) -> None:
        """Block everything within ``r`` (Chebyshev) of these sensels (of their bounding box: a point,
        a straight line or a small cluster)."""
        x0, x1 = max(0, int(xs.min()) - r), min(self.width, int(xs.max()) + r + 1)
        y0, y1 = max(0, int(ys.min()) - r), min(self.height, int(ys.max()) + r + 1)
        self.blocked[y0:y1, x0:x1] = True

    def draw(self, make, what: str, tries: int = 2000) -> tuple[np.ndarray, np.ndarray, Any]:
        """Draw candidates ``make(rng, shrink) -> (xs, ys, extra)`` until one is free; block and return it.

        ``shrink`` goes from 1 to 0 over the tries: a line gets shorter if it does not fit.
        """
        for attempt in range(tries):
            xs, ys, extra = make(self.rng, 1 - attempt / tries)
            xs, ys = np.atleast_1d(np.asarray(xs, np.int64)), np.atleast_1d(np.asarray(ys, np.int64))
            if self.free(xs, ys):
                self.block(xs, ys)
                return xs, ys, extra
        raise ValueError(
            f"image {self.width}x{self.height} is too small for the collection's defects ({what}) spaced "
            f"{MIN_SPACING} px apart; use a larger size or fewer defects_per_kind"
        )


def _iso_date(unix: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(unix))


def plan_collection(
    rng: np.random.Generator,
    width: int,
    height: int,
    per_kind: int,
    frame_unix: np.ndarray,
    population: float,
    sensor: CollectionSensor,
) -> CollectionPlan:
    """Choose positions and behaviour of every defect of a collection (see the module docstring).

    Lines are 20..200 sensels long, or as long as fits on a small image.

    ``per_kind`` sets the counts: ``2 per_kind`` hot (a third warm, a third with an onset),
    ``per_kind`` stuck, dead and noisy (modes in turn), ``max(1, per_kind // 4)`` columns and
    rows, ``max(1, per_kind // 2)`` clusters and ``max(2, per_kind // 2)`` border defects.
    ``frame_unix`` (the frames' times, sorted) places the onsets inside the collection.
    """
    lo = MIN_SPACING
    if width < 2 * lo + 2 or height < 2 * lo + 2:
        raise ValueError(f"image {width}x{height} is too small for a collection: at least {2 * lo + 2} px a side")
    board = _Board(rng, width, height)
    colour = cfa_colour_index(2, 2)
    sigma0 = sensor.read_noise(100)
    defects: list[dict] = []

    def interior(r: np.random.Generator, shrink: float = 1.0) -> tuple[int, int, None]:
        return int(r.integers(lo, width - lo)), int(r.integers(lo, height - lo)), None

    def onset() -> tuple[str, float]:
        a, b = np.quantile(frame_unix, [0.2, 0.8]) if len(frame_unix) else (0.0, 0.0)
        day = _iso_date(float(rng.uniform(a, b)) if b > a else float(a))
        return day, float(calendar.timegm(time.strptime(day, "%Y-%m-%d")))

    def behaviour(kind: str, variant: str) -> dict:
        """The fields of one point defect of ``kind``; ``variant`` picks warm/cold/saturated/mode."""
        if kind == "hot":
            if variant == "warm":
                off = math.exp(rng.uniform(math.log(WARM_OFFSET_SIGMAS * sigma0), math.log(WARM_OFFSET_MAX)))
                return {"offset": round(off, 2), "warm": True}
            rate = math.exp(rng.uniform(math.log(HOT_RATES[0]), math.log(HOT_RATES[1])))
            fields: dict[str, Any] = {"rate": round(rate, 3)}
            if variant == "since":
                fields["since"], fields["since_unix"] = onset()
            return fields
        if kind == "stuck":
            val = sensor.white_level if variant == "saturated" else round(sensor.black_level + rng.uniform(0.15, 0.7)
                                                                          * sensor.span)
            return {"value": int(val)}
        if kind == "dead":
            if variant == "cold":
                return {"gain": round(float(rng.uniform(0.1, 0.4)), 3), "cold": True}
            return {"gain": 0.0}
        if variant == "gaussian":
            return {"mode": "gaussian", "step": round(float(rng.uniform(*GAUSS_SIGMAS)) * sigma0, 2)}
        p = float(rng.uniform(0.05, 0.95))
        return {"mode": variant, "step": round(float(rng.uniform(*RTS_STEP_SIGMAS)) * sigma0, 2), "p_high": round(p, 3)}

    # lines first: they need the most room
    n_lines = max(1, per_kind // 4)
    for direction in ("column", "row"):
        along, across = (height, width) if direction == "column" else (width, height)
        most = min(LINE_LENGTHS[1], (along - 1 - 2 * lo) // 2 + 1)
        for _ in range(n_lines):

            def line(r: np.random.Generator, shrink: float, along: int = along, across: int = across,
                     most: int = most, direction: str = direction):
                longest = max(2, round(most * shrink))  # shorter if it does not fit
                n = int(r.integers(min(LINE_LENGTHS[0], longest), longest + 1))
                a0 = int(r.integers(lo, along - lo - 2 * (n - 1)))
                c = int(r.integers(lo, across - lo))
                run = a0 + 2 * np.arange(n)
                return (np.full(n, c), run, n) if direction == "column" else (run, np.full(n, c), n)

            xs, ys, n = board.draw(line, direction)
            if rng.random() < 0.5:
                level = {"offset": round(float(rng.uniform(4.0, 15.0)) * sigma0, 2)}
            else:
                level = {"rate": round(float(rng.uniform(2.0, 20.0)), 3)}
            x, y = int(xs[0]), int(ys[0])
            defects.append(_defect(direction, x, y, int(colour[y % 2, x % 2]), length=int(n), direction=direction,
                                   **level))

    # clusters: 2 or 3 adjacent sensels, any colours, mostly hot
    cluster_kinds = [("hot", "plain"), ("hot", "plain"), ("hot", "since"), ("hot", "warm"), ("stuck", "saturated"),
                     ("dead", "dead"), ("noisy", "rts1")]
    steps = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy]
    for cid in range(max(1, per_kind // 2)):

        def cluster(r: np.random.Generator, shrink: float):
            x, y, _ = interior(r)
            pts = [(x, y)]
            for _ in range(int(r.integers(2, 4)) - 1):
                bx, by = pts[int(r.integers(len(pts)))]
                dx, dy = steps[int(r.integers(8))]
                if (bx + dx, by + dy) in pts:
                    return [-1], [-1], None  # not free: draw again
                pts.append((bx + dx, by + dy))
            return [p[0] for p in pts], [p[1] for p in pts], None

        xs, ys, _ = board.draw(cluster, "clusters")
        for x, y in zip(xs.tolist(), ys.tolist()):
            kind, variant = cluster_kinds[int(rng.integers(len(cluster_kinds)))]
            defects.append(_defect(kind, x, y, int(colour[y % 2, x % 2]), cluster=cid, **behaviour(kind, variant)))

    # border defects: on the two outermost rows or columns
    border_kinds = [("hot", "plain"), ("stuck", "saturated"), ("dead", "dead"), ("noisy", "rts1")]
    for i in range(max(2, per_kind // 2)):

        def edge(r: np.random.Generator, shrink: float):
            side, e = int(r.integers(4)), int(r.integers(2))
            x, y = int(r.integers(width)), int(r.integers(height))
            x, y = [(x, e), (x, height - 1 - e), (e, y), (width - 1 - e, y)][side]
            return x, y, None

        xs, ys, _ = board.draw(edge, "border")
        kind, variant = border_kinds[i % len(border_kinds)]
        x, y = int(xs[0]), int(ys[0])
        defects.append(_defect(kind, x, y, int(colour[y % 2, x % 2]), border=True, **behaviour(kind, variant)))

    # the regular point defects, away from the border
    n_hot = 2 * per_kind
    hot_variants = ["warm"] * round(n_hot / 3) + ["since"] * round(n_hot / 3)
    kinds = [("hot", v) for v in hot_variants + ["plain"] * (n_hot - len(hot_variants))]
    kinds += [("stuck", "saturated" if j % 2 == 0 else "mid") for j in range(per_kind)]
    kinds += [("dead", "cold" if j < max(1, per_kind // 3) else "dead") for j in range(per_kind)]
    kinds += [("noisy", NOISY_MODES[j % len(NOISY_MODES)]) for j in range(per_kind)]
    for kind, variant in kinds:
        xs, ys, _ = board.draw(interior, kind)
        x, y = int(xs[0]), int(ys[0])
        defects.append(_defect(kind, x, y, int(colour[y % 2, x % 2]), **behaviour(kind, variant)))

    # a population of weak defects everywhere, off the others' same-colour neighbourhoods
    n_pop = round(population * width * height)
    if n_pop > 0:
        taken = np.zeros((height, width), bool)
        for d in defects:
            xs, ys = _sensels(d)
            for x, y in zip(xs.tolist(), ys.tolist()):
                taken[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3] = True
        allowed = np.flatnonzero(~taken)
        if n_pop > len(allowed):
            raise ValueError(f"population {population} needs {n_pop} sensels, only {len(allowed)} are free")
        flat = np.sort(rng.choice(allowed, n_pop, replace=False))
        is_rts = rng.random(n_pop) < 0.5
        rates = np.exp(rng.uniform(math.log(POPULATION_RATES[0]), math.log(POPULATION_RATES[1]), n_pop))
        pstep = rng.uniform(*POPULATION_STEP_SIGMAS, n_pop) * sigma0
        p_high = rng.uniform(0.05, 0.5, n_pop)
        ys, xs = np.divmod(flat, width)
        for i, (x, y) in enumerate(zip(xs.tolist(), ys.tolist())):
            c = int(colour[y % 2, x % 2])
            if is_rts[i]:
                fields: dict[str, Any] = {"mode": "rts1", "step": round(float(pstep[i]), 2),
                                          "p_high": round(float(p_high[i]), 3)}
                defects.append(_defect("noisy", x, y, c, population=True, **fields))
            else:
                defects.append(_defect("hot", x, y, c, population=True, rate=round(float(rates[i]), 3)))

    for d in defects:  # any defect may sit on the border, not only those planted there
        d["border"] = bool(d["border"] or _on_border(d, width, height))
    defects.sort(key=lambda d: (d["y"], d["x"]))
    return _arrays(rng, defects, width, len(frame_unix))


def _sensels(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Every sensel of a defect: one, or a line's ``length`` sensels of one colour."""
    if d["kind"] in ("column", "row"):
        run = 2 * np.arange(d["length"])
        if d["kind"] == "column":
            return np.full(d["length"], d["x"]), d["y"] + run
        return d["x"] + run, np.full(d["length"], d["y"])
    return np.array([d["x"]]), np.array([d["y"]])


def _on_border(d: dict, width: int, height: int) -> bool:
    xs, ys = _sensels(d)
    return bool(((xs < 2) | (xs >= width - 2) | (ys < 2) | (ys >= height - 2)).any())


def _arrays(rng: np.random.Generator, defects: list[dict], width: int, frames: int) -> CollectionPlan:
    """The flat-index arrays that ``physics.render_frame`` applies, from the truth entries."""
    rows: dict[str, list[tuple]] = {k: [] for k in ("rate", "offset", "dead", "stuck", "rts", "gauss")}
    for d in defects:
        xs, ys = _sensels(d)
        flat = (ys * width + xs).tolist()
        if d["rate"]:
            since = -math.inf if d["since_unix"] is None else d["since_unix"]
            rows["rate"] += [(f, d["rate"], since) for f in flat]
        if d["offset"]:
            rows["offset"] += [(f, d["offset"]) for f in flat]
        if d["kind"] == "dead":
            rows["dead"].append((flat[0], d["gain"]))
        elif d["kind"] == "stuck":
            rows["stuck"].append((flat[0], d["value"]))
        elif d["kind"] == "noisy" and d["mode"] == "gaussian":
            rows["gauss"].append((flat[0], d["step"]))
        elif d["kind"] == "noisy":
            rows["rts"].append((flat[0], d["step"], d["mode"], d["p_high"]))

    def col(name: str, k: int, dtype: Any) -> np.ndarray:
        return np.array([r[k] for r in rows[name]], dtype=dtype)

    # one independent state per frame and trap (frames are hours to days apart)
    levels = np.zeros((frames, len(rows["rts"])), np.float32)
    for j, (_, _, mode, p) in enumerate(rows["rts"]):
        u = rng.random((frames, 2))
        if mode == "rts1":
            levels[:, j] = u[:, 0] < p
        elif mode == "rts2":
            levels[:, j] = np.where(u[:, 0] < p, 0.5, -0.5)
        else:
            levels[:, j] = (u[:, 0] < p).astype(np.float32) + (u[:, 1] < p)
    plan = CollectionPlan(
        defects=defects,
        rate_idx=col("rate", 0, np.int64), rate=col("rate", 1, np.float32), rate_since=col("rate", 2, np.float64),
        offset_idx=col("offset", 0, np.int64), offset=col("offset", 1, np.float32),
        dead_idx=col("dead", 0, np.int64), dead_gain=col("dead", 1, np.float32),
        stuck_idx=col("stuck", 0, np.int64), stuck_value=col("stuck", 1, np.float32),
        rts_idx=col("rts", 0, np.int64), rts_step=col("rts", 1, np.float32), rts_level=levels,
        gauss_idx=col("gauss", 0, np.int64), gauss_sigma=col("gauss", 1, np.float32),
    )
    every = np.concatenate([plan.rate_idx, plan.offset_idx, plan.dead_idx, plan.stuck_idx, plan.rts_idx,
                            plan.gauss_idx])
    if len(np.unique(every)) != len(every):  # each sensel has one defect: fancy-index += adds once
        raise AssertionError("two planted defects share a sensel")
    return plan
