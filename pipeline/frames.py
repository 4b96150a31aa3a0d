"""From the frames' shooting data to the terms of the physics model (``stats.model``).

Before any pixel is read the scan knows, from the headers, each frame's exposure time, ISO and
capture time. This decides which model sums are worth their memory (an exposure fit needs
exposures that differ; an onset needs dates that span weeks), each frame's exposure factor and
capture day, and which frames stay out and why (no exposure, exposure 0, a date in 1970).
Where no frame has an exposure (plain TIFF or PNG darks), a single-channel stack's frame mean
stands in for it: in darks it rises with the exposure.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from .records import Counted
from .stats.model import NO_FACTOR, ModelPlan, ModelSpec, capture_day, exposure_factor, log_factor

# an exposure fit needs at least this many frames with an exposure, whose factors differ by at
# least this ratio: with one exposure there is no slope to fit
MIN_FIT_FRAMES = 3
MIN_FACTOR_RATIO = 2.0
# an onset needs capture dates that span at least this many days
MIN_DATE_SPAN_DAYS = 7
# dates before this are clocks that were never set (1970, 1980, 2000-01-01 of a camera's reset)
EARLIEST_DATE = calendar.timegm((1990, 1, 1, 0, 0, 0))


@dataclass
class FramePlan:
    """The model plan of a scan and what it says about each file."""

    model: ModelPlan
    source: str  # "exif", "frame mean" or "" (no exposure model)
    notes: dict[str, str] = field(default_factory=dict)  # path -> why its shooting data stay out
    reasons: list[str] = field(default_factory=list)  # why a model is off, for the log and the report


def usable_time(unix: float | None, now: float | None = None) -> float | None:
    """A capture time that can be a date: not before 1990 and not in the future."""
    now = time.time() if now is None else now
    if unix is None or not math.isfinite(unix) or unix < EARLIEST_DATE or unix > now + 86400:
        return None
    return unix


def plan_frames(headers: Iterable, prior: dict[str, Counted], channels: int, white: int, counts: bool,
                prior_source: str | None = None, black: int = 0) -> FramePlan:
    """The model terms of ``headers`` (objects with path, exposure, iso, time), continuing the
    ``prior`` frames of saved stats when merging (``prior_source`` their exposure source; None:
    no saved stats)."""
    headers = list(headers)
    any_iso = any(_finite_positive(h.iso) for h in headers) or any(_finite_positive(c.iso) for c in prior.values())
    factors = {h.path: exposure_factor(h.exposure, h.iso, any_iso) for h in headers}
    # saved frames count in the exposure fit only where they were fitted by exposure: a saved
    # stack of frame means merges with more frames that have no exposure either
    prior_known = [c.factor for c in prior.values() if c.factor > 0] if prior_source != "frame mean" else []
    known = [f for f in factors.values() if f != NO_FACTOR] + prior_known
    notes = {}
    some_known = any(f != NO_FACTOR for f in factors.values())
    for h in headers:
        if factors[h.path] == NO_FACTOR and h.exposure is not None and exposure_factor(h.exposure, None, False) \
                == NO_FACTOR:
            notes[h.path] = f"exposure {h.exposure:g} s: left out of the exposure fit"
        elif factors[h.path] == NO_FACTOR and h.iso is not None:
            notes[h.path] = f"ISO {h.iso:g}: left out of the exposure fit"
        elif factors[h.path] == NO_FACTOR and some_known:
            notes[h.path] = "no exposure time (or no ISO): left out of the exposure fit"
    reasons = []
    source = ""
    if len(known) >= MIN_FIT_FRAMES and max(known) >= MIN_FACTOR_RATIO * min(known):
        source = "exif"
    elif not known and channels == 1 and not any(h.exposure is not None for h in headers) and (
            prior_source in (None, "frame mean") or not prior):
        source = "frame mean"
        reasons.append("no frame has an exposure time: each frame's mean level stands in for it (darks)")
    else:
        reasons.append("the frames' exposures are missing or all alike: no exposure fit"
                       if len(known) < MIN_FIT_FRAMES or not known else
                       "the frames' exposures differ by less than 2x: no exposure fit")
    if prior_source is not None and prior_source != source:
        reasons.append(f"the saved stats were fitted from {prior_source or 'no exposure'}, these frames from "
                       f"{source or 'no exposure'}: the merged stats keep no exposure fit")
        source = ""

    times = {h.path: usable_time(h.time) for h in headers}
    for h in headers:
        if h.time is not None and times[h.path] is None:
            notes[h.path] = "; ".join(filter(None, [notes.get(h.path), f"capture time {_date(h.time)} is not a date"]))
    dated = [t for t in times.values() if t is not None] + [c.time for c in prior.values() if c.time is not None]
    dates = counts and len(dated) >= MIN_FIT_FRAMES and (max(dated) - min(dated)) >= MIN_DATE_SPAN_DAYS * 86400
    if not counts:
        reasons.append("no range counts: no onset dates")
    elif not dates:
        reasons.append("the capture dates are missing or span under a week: no onset dates")
    days = {}
    if dates:
        fill = sorted(dated)[len(dated) // 2]  # a frame with no date counts at the stack's median date
        days = {p: capture_day(t if t is not None else fill) or 0 for p, t in times.items()}
    spec = ModelSpec(exposure=bool(source), dates=bool(dates), white=white, black=black, counts=counts,
                     lines=channels == 1)
    known = sorted(f for f in factors.values() if f > 0)
    fill = int(log_factor([known[len(known) // 2]])[0]) if known and source == "exif" else 0
    gains = {h.path: int(log_factor([h.iso / 100.0])[0])
             for h in headers if source == "exif" and _finite_positive(h.iso)}
    return FramePlan(ModelPlan(spec, factors if source == "exif" else {}, days, frame_mean=source == "frame mean",
                               logx_fill=fill, gains=gains), source, notes, reasons)


def _finite_positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def _date(unix: float) -> str:
    try:
        return time.strftime("%Y-%m-%d", time.gmtime(unix))
    except (OverflowError, OSError, ValueError):
        return str(unix)
