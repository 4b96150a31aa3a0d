"""Detection on the workers: the detector's passes run band by band where stats.zarr is, and
only what joins them comes to the client: the bands' measures, their candidates and tail
samples, the column scans of the lines, and the report's reduced maps and histograms.

The passes are the detector's own (``detect.detector``; the single-process ``detect`` runs the
same functions over the same bands), so the defects are the same, number for number:

0. the stack kind, from the sample rows of the statistics (one task);
1. per band: read its rows (with halo) from stats.zarr, measure (``measure_band``); the band's
   maps stay on its worker (``BandWork``), its measures come here;
2. here: each plane's global parameters (``plane_parameters``);
3. per band: read its rows again, score (``score_band``): candidates, tail samples, the
   report's block maps and histogram samples, the band's share of the lines' nulls;
4. here: the candidates classified (``classify_points``);
5. one-value sensors: the lines (``line_bands``): every band's row lines at once, the column
   scans band after band, and the statistics of the few sensels they cover;
6. per band: the histograms' counts over the ranges chosen here.

Where the workers cannot read stats.zarr, the same tasks run in this process, one at a time.
"""

from __future__ import annotations

import copy
import math
import os
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..detect.bands import Band, band_rows
from ..detect.config import DetectConfig
from ..detect.describe import LineSample, describe_line, line_sample
from ..detect.detector import (
    BAND_VALUES,
    BandMeasures,
    BandScores,
    Detection,
    Plan,
    band_plane_rows,
    classify_points,
    defects_of,
    measure_band,
    one_frame_bounds,
    plan_detection,
    plane_parameters,
    score_band,
)
from ..detect.line_bands import (
    LineNulls,
    LineScans,
    LineSums,
    column_lines,
    column_scans,
    gather_columns,
    line_nulls,
    line_sums,
    row_lines,
)
from ..detect.lines import Line, dedupe
from ..detect.stack_kind import classify_sample, sample_of_rows, sample_rows
from ..layout import SensorLayout
from ..report import Prepared
from ..report.numbers import (
    band_blocks,
    count_range,
    display,
    histogram_of,
    histogram_range,
    join_blocks,
    related_thresholds,
    sample_at,
)
from ..state.store import read_rows, read_sample_rows
from ..stats.fit import FrameTable
from ..stats.model import ACROSS_SUMS, BEYOND_EXPOSURE, EXPOSURE_SUMS, FIRST_DAYS

Rows = tuple[int, int, int, int]  # a band's core rows y0:y1 and held rows top:bottom


@dataclass
class BandResult:
    """What pass 3 sends back of a band: its candidates and tail samples, its block maps and
    histogram samples for the report, and its share of each plane's line nulls (``LineSums``)."""

    scores: BandScores
    blocks: dict[str, tuple[int, np.ndarray]]
    samples: dict[str, np.ndarray]
    line: LineSums = field(default_factory=LineSums)


@dataclass
class BandWork:
    """What a band keeps on its worker between passes: its core rows of the score maps (and of
    the dark rate), what it measured in pass 1, and once scored (pass 3, in place) what that
    pass found."""

    rows: Rows
    maps: dict[str, np.ndarray]
    rate: np.ndarray | None
    measures: BandMeasures
    scored: bool = False
    result: BandResult | None = None

    def __sizeof__(self) -> int:
        """The maps' bytes, so that dask's scheduler keeps a band's passes where its maps are."""
        return object.__sizeof__(self) + sum(m.nbytes for m in self.maps.values()) + (
            self.rate.nbytes if self.rate is not None else 0)


def _band(path: str, n: int, rows: Rows, height: int, skip: tuple[str, ...] = ()) -> Band:
    y0, y1, top, bottom = rows
    return Band(y0, y1, top, bottom, height, read_rows(path, top, bottom, n, skip))


def unread(plan: Plan) -> tuple[str, ...]:
    """The model's sums that stats.zarr may hold and this plan's detection never reads: left on disk
    (a stack of photos without exposures keeps the exposure sums for darks it turned out not to be,
    60 of a band's 110 bytes per value at 12 MP)."""
    skip: tuple[str, ...] = ()
    if plan.frames is None:
        skip += EXPOSURE_SUMS + BEYOND_EXPOSURE
    if plan.days is None:
        skip += FIRST_DAYS
    if not plan.across:
        skip += ACROSS_SUMS
    return skip


def stack_kind_of(path: str, n: int, shape: tuple[int, ...]) -> tuple[str, str]:
    """Pass 0 (where the scan did not decide it): photos or darks, from the rows
    ``classify_stack`` samples, read alone."""
    return classify_sample(n, sample_of_rows(read_sample_rows(path, n, sample_rows), shape))


def measure_task(path: str, n: int, rows: Rows, plan: Plan, pool: ThreadPoolExecutor | None = None) -> BandWork:
    """Pass 1 of one band (``pool``: threads for its row stripes, where the band runs alone)."""
    band = _band(path, n, rows, plan.shape[0], unread(plan))
    core = (rows[1] - rows[0], *plan.shape[1:])
    maps = {k: np.zeros(core, np.float32) for k in plan.map_kinds + plan.line_kinds}
    rate = np.zeros(core, np.float32) if plan.rate_unit else None
    return BandWork(rows, maps, rate, measure_band(band, plan, maps, pool))


def measures_of(work: BandWork) -> BandMeasures:
    return work.measures


def score_task(path: str, n: int, plan: Plan, params, work: BandWork, factor: int,
               pool: ThreadPoolExecutor | None = None) -> BandWork:
    """Pass 3 of one band: its maps become z's, in place, once; the scored band is a new
    result, which the later passes take. (A task may run on a copy of its band's work, on
    another worker: the passes after it must not take the unscored original.)"""
    if work.scored:
        raise RuntimeError(f"band {work.rows[:2]} was scored before: its maps are z's already")
    band = _band(path, n, work.rows, plan.shape[0], tuple({*ACROSS_SUMS, *unread(plan)}))  # pass 1 mapped them
    work.scored = True
    scores = score_band(band, plan, params, work.measures, work.maps, pool, work.rate)
    y0, y1 = work.rows[:2]
    core = slice(y0 - band.top, y1 - band.top)
    blocks = {"variance": band_blocks(band.stats.m2[0][core], y0, factor, "max"),
              "mean": band_blocks(band.stats.mean[0][core], y0, factor, "mean")}
    if work.rate is not None:
        blocks["dark_rate"] = band_blocks(work.rate, y0, factor, "max")
    total = math.prod(plan.shape)
    first = y0 * math.prod(plan.shape[1:])
    samples = {k: sample_at(first, work.maps[k], total) for k in plan.map_kinds}
    line = line_sums(work.maps, plan.planes) if plan.one_value else LineSums()
    work.result = BandResult(scores, blocks, samples, line)
    return work


def result_of(work: BandWork) -> BandResult:
    """What pass 3 found of a scored band (the small part that comes to the client)."""
    if work.result is None:
        raise RuntimeError(f"band {work.rows[:2]} was not scored: it has no result")
    return work.result


def scans_task(work: BandWork, plan: Plan, nulls: LineNulls, before: LineScans | None) -> LineScans:
    """Pass 5 of one band: the column scans carried on from the band above's (a copy: the one
    above's result stays as it was, should a task be run again)."""
    return column_scans(work.maps, plan.planes, nulls, copy.deepcopy(before) if before is not None else None)


def rows_task(work: BandWork, plan: Plan, nulls: LineNulls) -> list[Line]:
    """Pass 5 of one band: its row lines (every band's at once: a row lies in one band)."""
    return row_lines(work.maps, plan.planes, band_plane_rows(work.rows[0], plan), plan.configured, nulls)


def columns_task(work: BandWork, plan: Plan, wanted: dict[int, np.ndarray]):
    return gather_columns(work.maps, plan.planes, wanted)


def line_samples_task(path: str, n: int, rows: Rows, height: int, lines: list[Line]) -> list[LineSample]:
    """The statistics of the lines' sensels in a band's core rows (and of their neighbours)."""
    y0, y1, top, bottom = rows
    stats = read_rows(path, top, bottom, n)
    return [line_sample(stats, line, top, (y0, y1), height) for line in lines]


def counts_task(work: BandWork, ranges: dict[str, tuple[float, float]]) -> dict[str, list]:
    """Pass 6 of one band: its share of each map's histogram."""
    return {k: count_range(work.maps[k], lo, hi) for k, (lo, hi) in ranges.items()}


class Here:
    """Runs the tasks in this process, each at once, for a cluster whose workers cannot read
    stats.zarr (and for ``hotpixels detect``); its futures are plain ``concurrent.futures``
    ones. A band runs alone here, so its row stripes share ``threads`` threads (as in
    ``detect.detect``)."""

    def __init__(self, threads: int | None = None):
        self.threads = threads or min(os.cpu_count() or 1, 4)
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    def __del__(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False)

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        future.set_result(fn(*(a.result() if isinstance(a, Future) else a for a in args), **kwargs))
        return future

    def gather(self, futures: list) -> list:
        return [f.result() for f in futures]


def even_bands(values: int, band_values: int, runner: Any) -> int:
    """Values per band near ``band_values`` for a whole number of bands per worker thread: each
    pass waits for its last band, so 3 bands on 2 threads take as long as 4 (a 12 MP raw)."""
    from distributed import Client

    threads = sum(runner.nthreads().values()) if isinstance(runner, Client) else 1
    bands = math.ceil(math.ceil(values / max(1, band_values)) / max(1, threads)) * max(1, threads)
    return math.ceil(values / bands)


def detect_on_cluster(runner: Any, path: str, n: int, shape: tuple[int, ...], cfg: DetectConfig,
                      layout: SensorLayout, frames: FrameTable | None, days: np.ndarray | None, factor: int,
                      stack_kind: str | None = None, band_values: int = BAND_VALUES,
                      decided: tuple[str, str] | None = None, jpeg: bool = False) -> tuple[Detection, Prepared]:
    """Detect from a stats.zarr (``path``, ``n`` frames, a sensor of ``shape``) on the workers of
    ``runner`` (a distributed ``Client``, or ``Here()``), in bands of about ``band_values``
    values; the report's maps block-reduced by ``factor``. The defects are those
    ``detect.detect`` finds in one process. ``decided``: the stack kind and why, as the scan
    found it ("auto"; else it is found here)."""
    from ..state.store import read_outline

    submit = _submitter(runner)
    outline = read_outline(path, n)
    kind = stack_kind or cfg.stack_kind
    if kind == "auto" and decided is None:
        decided = submit(stack_kind_of, path, n, tuple(shape)).result()
    plan = plan_detection(outline, cfg, layout, stack_kind, frames, days, shape, decided, jpeg)
    cuts = band_rows(plan.shape, plan.planes, plan.halo, even_bands(math.prod(plan.shape), band_values, runner))
    threads = {"pool": runner.pool} if isinstance(runner, Here) else {}
    works = [submit(measure_task, path, n, r, plan, **threads) for r in cuts]
    measures = runner.gather([submit(measures_of, w) for w in works])
    params = plane_parameters(measures, plan, cfg)
    works = [submit(score_task, path, n, plan, params, w, factor, **threads) for w in works]
    results: list[BandResult] = runner.gather([submit(result_of, w) for w in works])
    cand, thresholds = classify_points([r.scores for r in results], plan, cfg)
    found: list[Line] = []
    line_defects = []
    if plan.one_value:
        nulls = line_nulls([r.line for r in results], one_frame_bounds(params), plan.per_sensel)
        rows_of = [submit(rows_task, w, plan, nulls) for w in works]
        chain: list = []
        for w in works:  # a chain: each band's column scans go on from the band above's
            chain.append(submit(scans_task, w, plan, nulls, chain[-1] if chain else None))
        rows = [line for part in runner.gather(rows_of) for line in part]
        if chain:
            scans = runner.gather([chain[-1]])[0]
            wanted = scans.wanted(plan.configured, nulls)
            columns = runner.gather([submit(columns_task, w, plan, wanted) for w in works]) if any(
                len(c) for c in wanted.values()) else []
            found = dedupe(column_lines(plan.planes, scans, columns, plan.configured, nulls) + rows)
        if found:
            parts = runner.gather([submit(line_samples_task, path, n, r, plan.shape[0], found) for r in cuts])
            use = plan.frames if plan.rate_unit else None
            line_defects = [describe_line(line, LineSample.join([p[i] for p in parts]), use)
                            for i, line in enumerate(found)]
    defects = defects_of(cand, plan, found, line_defects)
    histograms = _histograms(runner, submit, works, results, plan, thresholds)
    del works  # the maps on the workers go
    prepared = Prepared(
        plan.shape, factor,
        variance=display(join_blocks([r.blocks["variance"] for r in results], plan.shape, factor, "max"), "max", n),
        mean=display(join_blocks([r.blocks["mean"] for r in results], plan.shape, factor, "mean"), "mean"),
        dark_rate=(display(join_blocks([r.blocks["dark_rate"] for r in results], plan.shape, factor, "max"), "max")
                   if plan.rate_unit else None),
        histograms=histograms)
    return Detection(defects, {}, thresholds, plan.stack_kind, plan.stack_reason, None), prepared


def _histograms(runner: Any, submit: Callable, works: list, results: list[BandResult], plan: Plan,
                thresholds: dict[str, float]) -> dict[str, dict[str, Any] | None]:
    """Each score map's histogram, as ``report.numbers.histogram`` counts it over the whole map."""
    ranges: dict[str, tuple[float, float]] = {}
    for k in plan.map_kinds:
        span = histogram_range(np.concatenate([r.samples[k] for r in results]),
                               list(related_thresholds(k, thresholds).values()))
        if span is not None:
            ranges[k] = span
    shares = runner.gather([submit(counts_task, w, ranges) for w in works])
    return {k: histogram_of([c for s in shares for c in s[k]], *ranges[k]) if k in ranges else None
            for k in plan.map_kinds}


# detection's tasks as the task stream names them
STEPS = {"stack_kind_of": "detect-stack-kind", "measure_task": "detect-measure", "measures_of": "detect-measures",
         "score_task": "detect-score", "result_of": "detect-score-result", "scans_task": "detect-column-scans",
         "rows_task": "detect-row-lines", "columns_task": "detect-columns",
         "line_samples_task": "detect-line-samples", "counts_task": "detect-counts"}


def _submitter(runner: Any) -> Callable:
    """``runner.submit`` for tasks whose results stay where they are until asked for."""
    from distributed import Client

    if isinstance(runner, Client):
        def submit(fn: Callable, *args: Any, **kwargs: Any) -> Any:
            step = STEPS.get(fn.__name__, fn.__name__)
            return runner.submit(fn, *args, pure=False, key=f"{step}-{uuid.uuid4().hex}", **kwargs)
        return submit
    return runner.submit
