"""Detection: score every sensel against its same-colour neighbourhood, report each defect once.

Two passes over bands of the statistics (``bands.py``), with the planes' global parameters
joined between them:

1. ``measure_band``: each criterion makes its map before its local scale, and measures the
   blocks of that scale (and the counts' histograms, the plane's typical residual variance,
   its darkest mean);
2. ``plane_parameters``: the scales, the counts' null and the other global quantities of each
   plane, from every band's measures;
3. ``score_band``: the maps become robust z's; the sensels past a configured threshold become
   candidates, with what classification needs of each; an even sample of the maps is taken for
   their tails;
4. ``classify_points``: candidates are classified, one per sensel, suppressed around stronger
   ones, the thresholds raised where a map's tail is heavy, and classified again;
5. in a one-value sensor, ``band_lines``: the partial columns and rows, band by band
   (``line_bands``); ``defects_of`` describes the points and the lines, one record each.

Bands may run anywhere and in any order: what goes from one pass to the next is small (block
MADs, histograms, candidates, samples, column scans), while each band keeps its own maps.
``detect`` runs them here, in this process; ``pipeline.engine.detect`` on a cluster's workers;
the numbers are the same for any cut into bands.
"""

from __future__ import annotations

import contextlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import numpy as np

from ..defect import Defect
from ..layout import SensorLayout
from ..stats import PixelStats
from ..stats.fit import FrameTable
from ..stats.model import ACROSS_SUMS, EXPOSURE_SUMS, EXPOSURE_UNIT, FIRST_DAYS
from . import luma
from .bands import Band, band_of, band_rows, halo_rows
from .candidates import Candidates, PlaneContext, gather_candidates
from .classify import HOT, classify
from .config import DetectConfig
from .criteria import across, counts, dark_current, flicker, level, variance
from .criteria.counts import COUNT_MAPS, count_thresholds
from .describe import describe, describe_line
from .exposure import (
    FLOOR_SHARE,
    beyond_exposure_z,
    beyond_gain_z,
    candidate_fit,
    clipping_floor,
    frames_to_show,
    line_share,
    with_fit,
)
from .filters import unique_flat
from .line_bands import column_lines, gather_columns, line_nulls, line_sums, scan_band
from .lines import Line, covered, dedupe
from .onset import appearances, since_candidates
from .planes import Plane, planes, spacing
from .scale import BlockScale
from .shapes import clusters
from .stack_kind import classify_stack
from .suppress import NMS_RADIUS, NMS_RADIUS_CFA, NMS_RADIUS_GRAY, RING_RADIUS, one_per_pixel, suppress
from .tails import EXCLUDE_STRENGTH, Positions, TailSample, raised, sample_band

SCORE_KINDS = ("hot", "dead", "stuck", "noisy")
# values per band when detecting in one process: a band's temporaries (a few float32 planes of
# it) stay near 40 MB whatever the sensor, for a few per cent of halo rows computed twice
BAND_VALUES = 1 << 22
T = TypeVar("T")


def present(value: T | None) -> T:
    """A value the plan says is there (the range counts' when counted, the luma's in RGB)."""
    if value is None:
        raise RuntimeError("a measure the plan asks for is missing")
    return value


def is_raw_darks(stack_kind: str, shape: tuple[int, ...]) -> bool:
    """One value per sensel (a mosaic or a monochrome sensor) and no scene: every variance is
    the sensor's white, near-Gaussian noise (demosaicing and JPEG smear and quantise it)."""
    return stack_kind == "darks" and len(shape) == 2


@dataclass
class Detection:
    """The result of :func:`detect`: defects, complete score maps, and why.

    ``defects``: one record per defect, at its peak, by descending score.
    ``scores``: per-pixel robust z maps (pixel shape, float32, >= 0) a user can threshold:
    "hot"/"dead" are the level z (brighter/darker), "stuck" the variance deficit, "noisy"
    the flicker excess. A dead pixel that gives no response is found through its missing
    variance, so its score is on the "stuck" map. With range counts in the stats (and
    ``use_counts``) a fifth map, "counts": the strongest of the above / below / summed count
    scores, -log10 of the tail probability under the plane's null; a defect found by the counts
    alone has that score (its detail says "beyond its neighbours and the frame's noise").
    ``thresholds``: the thresholds used, per map: the configured ones, or higher where the
    map's own tail was heavy (see :func:`pipeline.detect.tails.tail_threshold`); "counts" is the
    counts' null threshold, log10(3 N / counts_false_alarms) for N sensels, and "counts_hot"/
    "counts_dead"/"counts_noisy" appear where a stricter moment threshold raised it.
    ``stack_kind``/``stack_reason``: "photos" or "darks", and why.
    ``dark_rate``: each sensel's dark current over every frame (float32, DN/s at ISO 100; 0 where
    unfit), where the stack has a physical exposure fit: the fit detection made, for the report.
    """

    defects: list[Defect]
    scores: dict[str, np.ndarray]
    thresholds: dict[str, float]
    stack_kind: str
    stack_reason: str
    dark_rate: np.ndarray | None = None


@dataclass(frozen=True)
class Plan:
    """What every band's work needs to know before it starts."""

    shape: tuple[int, ...]
    n: int
    planes: list[Plane]
    mosaic: bool
    spacing: int
    stack_kind: str
    stack_reason: str
    counted: bool
    configured: dict[str, float]
    frames: FrameTable | None = None  # the stack's exposure table, where detection uses its fit
    days: np.ndarray | None = None  # each frame's capture day, where onsets are modelled
    across: bool = False  # the lines are also searched in the across sums' maps (``criteria.across``)
    # the frames are JPEGs: their blocks ring around a defect and smear it, gray ones too
    jpeg: bool = False

    @property
    def rate_unit(self) -> str:
        """What the dark-current rate is in: DN/s at ISO 100, or nothing physical."""
        return "DN/s" if self.frames is not None and self.frames.physical else ""

    @property
    def raw_darks(self) -> bool:
        return is_raw_darks(self.stack_kind, self.shape)

    @property
    def luma(self) -> bool:
        """A demosaiced RGB image: a blob's pixels are ranked by the luma (``luma.py``)."""
        return not self.mosaic and len(self.planes) == 3

    @property
    def one_value(self) -> bool:
        """One value per sensel (a mosaic, or a monochrome sensor): a defect is one sensel, so
        adjacent defects are told apart (``rings.remove_rings``)."""
        return len(self.shape) == 2

    @property
    def per_sensel(self) -> bool:
        """Each defect is one sensel and its residual's ring (a mosaic, a monochrome sensor): the
        ring rule at its 8 nearest same-colour sensels, its border read like any other; not a
        demosaiced image, nor a gray JPEG (its 8x8 blocks ring and smear a defect)."""
        return self.one_value and not self.jpeg

    @property
    def ring_radius(self) -> int:
        """Px to a one-value sensor's 8 nearest same-colour sensels, where a defect's residual
        ring lies: 2 in a mosaic, 1 in a monochrome sensor."""
        return NMS_RADIUS_CFA if self.mosaic else NMS_RADIUS_GRAY

    @property
    def halo(self) -> int:
        return halo_rows(self.spacing)

    @property
    def map_kinds(self) -> tuple[str, ...]:
        return SCORE_KINDS + (("counts",) if self.counted else ()) + (("dark_current",) if self.frames else ())

    @property
    def line_kinds(self) -> tuple[str, ...]:
        """The maps only the line search reads (no report, no tail): the across sums' z's."""
        return ACROSS_SUMS if self.across else ()

    @property
    def swing(self) -> float:
        """What turns a dark-current rate into the DN its level moves across the stack: the
        spread of the exposure factors (largest minus smallest), in seconds at ISO 100 (in the
        stand-in's steps when it is not physical)."""
        known = self.frames.known if self.frames is not None else np.zeros(0)
        spread = float(known.max() - known.min()) if len(known) else 0.0
        return spread * EXPOSURE_UNIT if self.frames is not None and self.frames.physical else spread


def plan_detection(stats: PixelStats, cfg: DetectConfig, layout: SensorLayout, stack_kind: str | None,
                   frames: FrameTable | None = None, days: np.ndarray | None = None,
                   shape: tuple[int, ...] | None = None, decided: tuple[str, str] | None = None,
                   jpeg: bool = False) -> Plan:
    """What every band's work needs to know. ``stats`` need only say which sums they hold where
    ``shape`` (the sensor's) is given, and ``decided`` (the stack kind and why, from
    ``stack_kind.classify_stack`` of the sensor's sample rows) where the kind is "auto";
    ``jpeg``: the frames were JPEGs."""
    n = int(stats.n)
    if n < 2:
        raise ValueError(f"need statistics over at least 2 frames to detect defects, got n={n}")
    shape = tuple(stats.pixel_shape) if shape is None else tuple(shape)
    plane_list, mosaic = planes(shape, layout)
    kind = stack_kind or cfg.stack_kind
    if kind == "auto":
        kind, reason = decided if decided is not None else classify_stack(stats)
    elif kind in ("photos", "darks"):
        reason = f"stack kind given as {kind!r}"
    else:
        raise ValueError(f"stack_kind must be 'auto', 'photos' or 'darks', got {kind!r}")
    counted = cfg.use_counts and stats.counts is not None
    configured = {"hot": cfg.hot_threshold, "dead": cfg.dead_threshold, "stuck": cfg.stuck_threshold,
                  "noisy": cfg.noisy_threshold}
    if counted:
        # a threshold from their null: counts_false_alarms expected false reports per image over its
        # sensels and the three count maps (Bonferroni): a healthy sensel passes with P <= alpha / (3 N)
        base = math.log10(len(COUNT_MAPS) * math.prod(shape) / cfg.counts_false_alarms)
        configured["counts"] = base
        for k, t in count_thresholds(base, cfg.hot_threshold, cfg.dead_threshold, cfg.noisy_threshold).items():
            if t > base:  # stricter moment thresholds: stricter counts (see count_thresholds)
                configured["counts_" + k] = t
    usable = frames is not None and all(k in stats.extra for k in EXPOSURE_SUMS) and len(frames.known) >= 3
    if usable and frames is not None and not frames.physical and kind != "darks":
        usable = False  # a frame's mean level stands in for its exposure only in darks: in photos it is the scene
    if usable:
        configured["dark_current"] = cfg.hot_threshold
    dated = days is not None and FIRST_DAYS[0] in stats.extra and counted and len(days) == n
    lines_across = len(shape) == 2 and all(k in stats.extra for k in ACROSS_SUMS)
    return Plan(shape, n, plane_list, mosaic, spacing(shape, mosaic), kind, reason, counted, configured,
                frames if usable else None, np.asarray(days) if dated and days is not None else None, lines_across,
                jpeg)


@dataclass
class PlaneMeasures:
    level: level.LevelMeasures
    variance: np.ndarray
    flicker: flicker.FlickerMeasures
    counts: counts.CountHistograms | None
    darkest: float
    rate: dark_current.RateMeasures | None = None
    across: across.AcrossMeasures | None = None


@dataclass
class BandMeasures:
    planes: list[PlaneMeasures]
    luma: np.ndarray | None = None


def plane_maps(maps: dict[str, np.ndarray], plane: Plane) -> dict[str, np.ndarray]:
    """A band's maps (its core rows, sensor-shaped) seen as one plane's core rows."""
    return {k: plane.select(m) for k, m in maps.items()}


def measure_band(band: Band, plan: Plan, maps: dict[str, np.ndarray],
                 pool: ThreadPoolExecutor | None = None) -> BandMeasures:
    """Pass 1 over one band: the maps before their scales into ``maps`` (the band's core rows),
    and the band's measures."""
    out = []
    for pl in plan.planes:
        v = with_fit(band.view(pl), plan.frames, pool)
        core = plane_maps(maps, pl)
        out.append(PlaneMeasures(
            level=level.measure(v, core["hot"], plan.spacing, plan.raw_darks, pool, plan.one_value),
            variance=variance.measure(v, core["stuck"], plan.spacing, pool),
            flicker=flicker.measure(v, core["noisy"], plan.spacing, plan.raw_darks, pool),
            counts=counts.measure(v, pool) if plan.counted else None,
            darkest=float(v.value_mean[v.y0 - v.top : v.y1 - v.top].min()),
            rate=None))
        if plan.frames:
            out[-1].rate = dark_current.measure(v, core["dark_current"], pool, plan.one_value, out[-1].level.bright,
                                                plan.spacing, plan.raw_darks)
        if plan.across:
            out[-1].across = across.measure(v, (core[ACROSS_SUMS[0]], core[ACROSS_SUMS[1]]), pool)
    return BandMeasures(out, luma.measure(band, pool) if plan.luma else None)


@dataclass
class PlaneParameters:
    """A plane's global parameters, from every band's measures."""

    level_scale: BlockScale
    noise_scale: BlockScale
    context: PlaneContext
    rate_scale: BlockScale | None = None
    across_scale: tuple[BlockScale, BlockScale] | None = None


@dataclass
class Parameters:
    planes: list[PlaneParameters]
    luma_scale: BlockScale | None = None


def plane_parameters(measures: list[BandMeasures], plan: Plan, cfg: DetectConfig) -> Parameters:
    """Pass 1's measures of every band (in row order) joined into each plane's parameters."""
    out = []
    height, width = plan.shape[:2]
    # the tails of the frames' gains, shared by every plane's null, where every frame's gain is known
    gains = (counts.gain_tails(plan.frames.log_gains(), plan.n)
             if plan.frames is not None and plan.frames.gains_known else None)
    for i, pl in enumerate(plan.planes):
        shape = pl.size(height, width)
        parts = [m.planes[i] for m in measures]
        amp_scale, level_scale = level.scales([p.level for p in parts], shape)
        var_scale = variance.scale([p.variance for p in parts], shape, plan.n, plan.raw_darks)
        noise_scale = flicker.scale([p.flicker for p in parts], shape, plan.n, plan.raw_darks)
        null = (counts.CountNull([present(p.counts) for p in parts], plan.n, shape, robust=plan.one_value,
                                 days=plan.days, gains=gains)
                if plan.counted else None)
        black = cfg.black_level if cfg.black_level is not None else min(p.darkest for p in parts)
        ctx = PlaneContext(amp_scale, var_scale, flicker.quiet_level([p.flicker for p in parts]), black, null,
                           plan.spacing, plan.per_sensel, plan.raw_darks)
        rate_scale = dark_current.scale([present(p.rate) for p in parts], shape) if plan.frames else None
        across_scale = across.scales([present(p.across) for p in parts], shape) if plan.across else None
        out.append(PlaneParameters(level_scale, noise_scale, ctx, rate_scale, across_scale))
    luma_scale = luma.scale([present(m.luma) for m in measures], (height, width)) if plan.luma else None
    return Parameters(out, luma_scale)


@dataclass
class BandScores:
    """Pass 2's result of one band: its candidates per plane, and its share of the tail sample."""

    candidates: list[Candidates]
    tails: list[TailSample] = field(default_factory=list)


def score_band(band: Band, plan: Plan, params: Parameters, measures: BandMeasures, maps: dict[str, np.ndarray],
               pool: ThreadPoolExecutor | None = None, rate: np.ndarray | None = None) -> BandScores:
    """Pass 2 over one band: ``maps`` (its core rows) become z's, and the band's candidates;
    ``rate`` (its core rows), if given, each sensel's fitted dark current."""
    thr = plan.configured
    found, tails = [], []
    for pl, pp, pm in zip(plan.planes, params.planes, measures.planes):
        v = with_fit(band.view(pl), plan.frames, pool)
        core = plane_maps(maps, pl)
        if rate is not None and v.fit is not None:
            pl.select(rate)[...] = np.nan_to_num(v.fit.rate[v.y0 - v.top : v.y1 - v.top], nan=0.0)
        flat = level.score(v, core["hot"], core["dead"], pp.level_scale, thr["hot"], thr["dead"], pool)
        flat += variance.score(v, core["stuck"], pp.context.var_scale, thr["stuck"], pool, plan.raw_darks)
        flat += flicker.score(v, core["noisy"], pp.noise_scale, thr["noisy"], pool)
        if plan.across:
            across.score(v, (core[ACROSS_SUMS[0]], core[ACROSS_SUMS[1]]), present(pp.across_scale), pool)
        if plan.counted:
            flat += counts.score(v, present(pp.context.null), core["counts"], thr["counts"], pool)
        if plan.frames:
            flat += dark_current.score(v, core["dark_current"], present(pp.rate_scale), thr["dark_current"], pool)
            if plan.days is not None and plan.one_value and plan.counted and plan.frames.physical:
                flat += since_candidates(v, plan.days, plan.frames, present(pp.rate_scale), thr["dark_current"])
        base = v.y0 * v.width
        keys = unique_flat(np.concatenate(flat) - base, (v.y1 - v.y0) * v.width) + base
        lrv = flicker.lrv_lookup(v, plan.spacing, len(keys), pool)
        cand = gather_candidates(v, keys, core, lrv, pm.level.rings, pp.context,
                                 None if pm.rate is None else pm.rate.rings)
        flicker.clip(v, core["noisy"], pool)
        if plan.luma:
            cand.luma_amp = luma.amplitude(band, cand.y, cand.x, present(params.luma_scale))
        found.append(cand)
        left_out: dict[str, Positions] = {}
        if plan.frames and plan.per_sensel:  # a JPEG's or a demosaiced image's smear is no one-sensel leak
            left_out["dark_current"] = partial(dark_current.leaks, v, spacing=plan.spacing)
        tails.append(sample_band({k: core[k] for k in plan.map_kinds if k != "counts"}, v.shape, v.y0, v.y1,
                                 len(plan.planes), v.to_image, first=v.y0 == 0, left_out=left_out))
        if plan.frames:
            dark_current.clip(core["dark_current"])
    return BandScores(found, tails)


def classify_points(scored: list[BandScores], plan: Plan, cfg: DetectConfig) -> tuple[Candidates, dict[str, float]]:
    """Classify the candidates of every band (in row order), one per defect, and the thresholds
    they were classified at (raised where a map's tail is heavy)."""
    cand = Candidates.concat([b.candidates[i] for i in range(len(plan.planes)) for b in scored])  # plane by plane
    darks, raw_darks = plan.stack_kind == "darks", plan.raw_darks
    if plan.frames is not None and cand.beyond_logx is not None and cand.counted:
        cand.z_exposure = beyond_exposure_z(cand.beyond_logx, cand.beyond_logg, cand.k_hi + cand.k_lo, plan.frames)
        cand.z_gain = beyond_gain_z(cand.beyond_logg, cand.k_hi + cand.k_lo, plan.frames)
    whole = None  # every candidate's exposure line over every frame, once
    if plan.frames is not None and cand.model is not None and plan.frames.physical:
        whole = candidate_fit(cand.model, plan.n, plan.frames)
        cand.line_share = line_share(whole, cand.model, plan.n)
    if plan.days is not None and plan.one_value:
        # onsets in one-value sensors only: demosaicing spreads a sensel's beyond frames over its
        # neighbours (which then share its range), and a tone curve clips a bright frame's excess, so a
        # developed image's earliest beyond days say when it first stood out in a scene, not when it appeared
        cand.onset = appearances(cand, plan.days, plan.frames, plan.n, whole, plan.configured["dark_current"])
    if plan.frames is not None and cand.model is not None and plan.frames.physical and cand.counted:
        # after the onsets: one that appeared is fitted, and must show, since its day
        cand.shown, cand.beside_light = frames_to_show(cand, plan.frames, plan.configured["dark_current"],
                                    plan.ring_radius if plan.one_value else 0, plan.days, plan.configured["hot"])
    # 1. peaks: classify at the configured thresholds and keep one candidate per blob
    classify(cand, plan.configured, cfg.dark_min_sigmas, darks, raw_darks, plan.swing)
    cand = one_per_pixel(cand.take(cand.kind > 0))
    if len(cand) > cfg.max_defects:  # keep suppression affordable on a hopeless input
        cand = cand.take(np.argsort(-cand.strength, kind="stable")[: cfg.max_defects])
    cand = cand.take(suppress(cand, plan.per_sensel, plan.ring_radius))
    # 2. thresholds: no lower than configured, raised where a map's own tail is heavy. Sensels next
    # to a strong peak are left out of the tails: its rings and JPEG ringing are accounted for.
    thresholds = dict(plan.configured)
    if cfg.tail_false_alarms > 0:
        strong = np.abs(cand.z_level) >= EXCLUDE_STRENGTH  # rings are a level phenomenon
        radius = plan.ring_radius if plan.per_sensel else max(RING_RADIUS, NMS_RADIUS)
        thresholds = raised(plan.configured, [t for b in scored for t in b.tails], cand.y[strong], cand.x[strong],
                            radius, cfg.tail_false_alarms, raw_darks)
        # 3. the peaks, classified again at the final thresholds (a weaker kind can take over); one
        # that the range counts corroborate is held to the configured ones. In a demosaiced image too:
        # a defect's smear into its neighbours was suppressed with its blob above, and a JPEG's dark
        # current lifts a map's tail over its hot sensels (11 JPEG collections: hot 0.68 -> 0.76 of
        # 110, the same 15 reports matching nothing)
        classify(cand, thresholds, cfg.dark_min_sigmas, darks, raw_darks, plan.swing, plan.configured)
        cand = cand.take(cand.kind > 0)
    return cand, thresholds


def defects_of(cand: Candidates, plan: Plan, found_lines: list[Line], line_defects: list[Defect]) -> list[Defect]:
    """One record per defect, strongest first: the points (less those a line explains) and the
    lines (``line_defects``: ``found_lines`` described)."""
    if found_lines:
        rate_z = cand.z_rate if cand.z_rate is not None else np.zeros(len(cand))
        cand = cand.take(~covered(found_lines, cand.y, cand.x, cand.plane, cand.sign, cand.z_level, rate_z))
    if plan.frames is not None and cand.model is not None and cand.rate is not None and len(cand):
        # a hot sensel fitted far below what its clipped frames prove is reported at that least rate
        floor = clipping_floor(cand.model, plan.frames, plan.stack_kind == "darks")
        cand.rate_floor = (FLOOR_SHARE * floor > np.nan_to_num(cand.rate, nan=-np.inf)) & (cand.kind == HOT)
        cand.rate = np.where(cand.rate_floor, floor, cand.rate)
    cluster = clusters(cand.y, cand.x)
    order = np.argsort(-cand.score, kind="stable")
    onsets = [None if cand.onset is None or cand.onset[i] < 0 else int(cand.onset[i]) for i in range(len(cand))]
    defects = [describe(cand, i, plan.n, onsets[i], int(cluster[i]), plan.rate_unit) for i in order]
    if line_defects:
        defects += line_defects
        defects.sort(key=lambda d: -d.score)
    return defects


def band_plane_rows(y0: int, plan: Plan) -> list[int]:
    """Each plane's first row in a band's core, whose first sensor row is ``y0`` (cores start
    on every plane's block boundary)."""
    return [y0 // pl.step for pl in plan.planes]


def one_frame_bounds(params: Parameters) -> list[tuple[float, float]] | None:
    """Per plane, the most one frame adds to a sensel's z in the across maps (``across.one_frame_z``)."""
    if any(pp.across_scale is None for pp in params.planes):
        return None
    return [across.one_frame_z(present(pp.across_scale)) for pp in params.planes]


def band_lines(cores: list[dict[str, np.ndarray]], bands: list[Band], plan: Plan,
               frame_z: list[tuple[float, float]] | None = None) -> list[Line]:
    """The partial columns and rows of a one-value sensor, band by band (``line_bands``), from
    each band's core rows of the score maps (``frame_z``: ``one_frame_bounds``)."""
    nulls = line_nulls([line_sums(c, plan.planes) for c in cores], frame_z, plan.per_sensel)
    scans, found = None, []
    for core, band in zip(cores, bands):
        scans, rows = scan_band(core, plan.planes, band_plane_rows(band.y0, plan), plan.configured, nulls, scans)
        found += rows
    if scans is None:
        return []
    wanted = scans.wanted(plan.configured, nulls)
    columns = [gather_columns(core, plan.planes, wanted) for core in cores]
    return dedupe(column_lines(plan.planes, scans, columns, plan.configured, nulls) + found)


def detect(stats: PixelStats, config: DetectConfig | None = None, layout: SensorLayout | None = None,
           stack_kind: str | None = None, band_values: int | None = BAND_VALUES,
           frames: FrameTable | None = None, days: np.ndarray | None = None, jpeg: bool = False) -> Detection:
    """Score every pixel against its same-colour neighbourhood and report each defect once.

    ``layout`` says which stored value is which colour: a CFA mosaic (its pattern, e.g.
    ``SensorLayout.bayer("RGGB")``), or None / no pattern for RGB (channels "R", "G", "B") or
    grayscale ("L"). ``stack_kind`` (None: ``config.stack_kind``) is "photos", "darks" or
    "auto" (decided from the statistics; it is reported, the scores adapt to either kind by
    themselves). ``band_values``: work in bands of about this many values (None: one band);
    the result is the same, bit for bit, only the memory differs. ``frames``: the exposure
    factors of the stack's frames (the manifest's), where the statistics keep the physics
    model's sums: then dark current is told from flicker (``exposure.py``). ``days``: each
    frame's capture day (days since 1970), where the statistics keep the onset sums.
    """
    cfg = config or DetectConfig()
    plan = plan_detection(stats, cfg, SensorLayout() if layout is None else layout, stack_kind, frames, days,
                          jpeg=jpeg)
    maps = {k: np.zeros(plan.shape, np.float32) for k in plan.map_kinds + plan.line_kinds}
    rate = np.zeros(plan.shape, np.float32) if plan.rate_unit else None
    bands = [band_of(stats, *rows) for rows in band_rows(plan.shape, plan.planes, plan.halo, band_values)]
    # one plane at a time, its row stripes in threads: the working set is that of one plane's band,
    # not one per thread, and every core works on it
    workers = max(1, cfg.threads or min(os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        core = [{k: m[b.y0 : b.y1] for k, m in maps.items()} for b in bands]
        measures = [measure_band(b, plan, c, pool) for b, c in zip(bands, core)]
        params = plane_parameters(measures, plan, cfg)
        scored = [score_band(b, plan, params, m, c, pool, None if rate is None else rate[b.y0 : b.y1])
                  for b, m, c in zip(bands, measures, core)]
    cand, thresholds = classify_points(scored, plan, cfg)
    found_lines = band_lines(core, bands, plan, one_frame_bounds(params)) if plan.one_value else []
    frames_for_lines = plan.frames if plan.rate_unit else None
    line_defects = [describe_line(line, stats, frames_for_lines) for line in found_lines]
    scores = {k: maps[k] for k in plan.map_kinds}
    return Detection(defects_of(cand, plan, found_lines, line_defects), scores, thresholds, plan.stack_kind,
                     plan.stack_reason, rate)
