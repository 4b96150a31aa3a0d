"""A realistic collection over time: one camera's photos (and darks) over years, with real defects.

Where ``stack.synthesize`` makes one session at one setting, ``synthesize_collection`` makes
what a hot-pixel tool meets in a photographer's folder: frames over ``span_days`` at every
exposure and ISO the camera's program picks for scenes from daylight to night, some lens-cap
darks, some long exposures with in-camera noise reduction, and defects that behave as real ones
do (``defects``): dark current that scales with exposure and ISO and clips, warm offsets,
hot sensels that appear on a date, telegraph flicker, partial lines, clusters, border defects
and, optionally, a population of weak ones. The camera is ``physics.COLLECTION_SENSOR``
(14-bit; see ``physics``) and each file carries its shooting data (``metadata``).

Deterministic for a seed whatever the thread count: the schedule, the defect plan, the camera
body and each frame draw from their own children of ``SeedSequence(seed)``.
"""

from __future__ import annotations

import calendar
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .defects import CollectionPlan, plan_collection
from .metadata import CameraId, write_collection_frame
from .physics import (
    COLLECTION_SENSOR,
    ISO_SERIES,
    SHUTTER_SERIES,
    Body,
    CollectionSensor,
    Shot,
    build_body,
    render_frame,
)
from .plan import default_defects_per_kind
from .sensor import CFA, MAKE
from .stack import _clear_previous
from .writers import FORMATS, MOSAIC_FORMATS, canonical_format

# version of what synthesize_collection writes for a seed: caches of synthetic collections compare it
COLLECTION_VERSION = 1
COLLECTION_MODEL = "Synth 14"
# scene brightness, EV at ISO 100, uniform (luminance log-uniform): sunlit (15) to a dim night street (-5)
EV_RANGE = (-5.0, 15.0)
# lens-cap darks: exposure (s) and ISO drawn from the camera's 1/3-stop series in these ranges
DARK_EXPOSURES = (1.0, 30.0)


def _start_unix(start: str) -> float:
    try:
        return float(calendar.timegm(time.strptime(str(start), "%Y-%m-%d")))
    except ValueError:
        raise ValueError(f"start must be a date like 2024-01-01, got {start!r}") from None


def plan_shots(
    rng: np.random.Generator,
    frames: int,
    start: str,
    span_days: float,
    dark_fraction: float,
    nr_fraction: float,
    sensor: CollectionSensor = COLLECTION_SENSOR,
) -> list[Shot]:
    """The frames' settings and times, sorted by time.

    Each photo's scene brightness is uniform in EV (``EV_RANGE``) and the camera's program picks
    exposure and ISO (``CollectionSensor.program``). Bright scenes are taken in the day (08-18 h),
    dark ones (EV < 3) in the evening or night (19-05 h), the rest from 07 to 23 h; darks at
    night. Days are uniform over ``span_days`` from ``start`` (UTC). ``round(dark_fraction *
    frames)`` frames are darks, at a random exposure of 1..30 s and ISO 100..6400; of the frames
    of 1 s or more, ``round(nr_fraction * n)`` (at least one if ``nr_fraction`` > 0) have in-camera
    noise reduction.
    """
    n = frames
    dark = np.zeros(n, bool)
    dark[rng.choice(n, round(dark_fraction * n), replace=False)] = True
    ev = rng.uniform(*EV_RANGE, n)
    day = np.floor(rng.uniform(0.0, max(float(span_days), 0.0), n)) if span_days > 0 else np.zeros(n)
    u = rng.random(n)
    hours = np.where(ev >= 10, 8 + 10 * u, np.where(ev < 3, (19 + 10 * u) % 24, 7 + 16 * u))
    hours = np.where(dark, (20 + 8 * u) % 24, hours)
    unix = _start_unix(start) + day * 86400 + np.floor(hours * 3600)
    long_darks = [s for s in SHUTTER_SERIES if DARK_EXPOSURES[0] <= s <= DARK_EXPOSURES[1]]
    dark_t = rng.integers(len(long_darks), size=n)
    dark_iso = rng.integers(len(ISO_SERIES), size=n)

    shots = []
    for i in np.argsort(unix, kind="stable").tolist():
        if dark[i]:
            t, iso, ratio = long_darks[int(dark_t[i])], ISO_SERIES[int(dark_iso[i])], 1.0
        else:
            t, iso, ratio = sensor.program(float(ev[i]))
        shots.append(Shot(exposure=t, iso=iso, unix=float(unix[i]), dark=bool(dark[i]), nr=False, ratio=ratio))
    long = [i for i, s in enumerate(shots) if s.exposure >= 1]
    n_nr = max(1, round(nr_fraction * len(long))) if nr_fraction > 0 and long else 0
    for i in rng.choice(long, n_nr, replace=False).tolist() if n_nr else []:
        s = shots[i]
        shots[i] = Shot(s.exposure, s.iso, s.unix, s.dark, True, s.ratio)
    return shots


def synthesize_collection(
    out_dir: str | Path,
    frames: int = 60,
    size: tuple[int, int] = (640, 480),
    fmt: str = "dng",
    seed: int = 0,
    span_days: float = 730,
    start: str = "2024-01-01",
    nr_fraction: float = 0.15,
    dark_fraction: float = 0.0,
    population: float = 0.0,
    defects_per_kind: int | None = None,
) -> dict:
    """Write a realistic collection of one camera's frames over time and its ``truth.json``.

    Parameters
    ----------
    out_dir : directory to write ``frame_0000.<ext>``, ... (in time order) and ``truth.json`` into.
    frames : number of frames.
    size : (width, height) in sensels (= pixels of the RGB formats); at least 18 a side.
    fmt : any of ``writers.FORMATS``: ``jpeg``, ``png``, ``tiff`` (8-bit sRGB, developed as a
        camera's JPEG engine does), ``tiff16``, ``png16`` (16-bit grey CFA mosaic) or ``dng``.
    seed : everything is deterministic for a seed, whatever the thread count.
    span_days : the frames' days are uniform over this many days from ``start``.
    start : the first day, ``YYYY-MM-DD`` (times are UTC).
    nr_fraction : fraction of the frames of 1 s or more with in-camera long-exposure noise
        reduction (a dark frame subtracted: dark current and offsets vanish); at least one if > 0.
    dark_fraction : fraction of the frames that are lens-cap darks (1..30 s, any ISO).
    population : fraction of all sensels that are extra defects (a "many-defect sensor"):
        one-sided telegraph flicker or weak hot sensels, each listed with ``population: true``.
    defects_per_kind : sets the number of planted defects (see ``defects.plan_collection``);
        default 8 at 640x480, scaled with the area, at least 4.

    Returns
    -------
    The truth, also written to ``truth.json``: the camera (``black_level``, ``white_level`` of
    the 14-bit mosaic, ``make``, ``model``, ``serial``), the files in order, ``frames_meta`` (per
    frame: ``exposure`` s, ``iso``, ``time`` and ``unix`` (UTC), ``nr``, ``dark``) and
    ``defects``: one entry per defect, lines once with their first sensel (see ``defects``).
    ``channel`` is the RGB index of the CFA colour for the 8-bit formats and 0 for mosaics.
    """
    fmt = canonical_format(fmt)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    width, height = (int(v) for v in size)
    for name, value in (("nr_fraction", nr_fraction), ("dark_fraction", dark_fraction)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if not 0 <= population < 0.5:
        raise ValueError(f"population must be in [0, 0.5), got {population}")
    if not (span_days >= 0 and math.isfinite(span_days)):
        raise ValueError(f"span_days must be >= 0, got {span_days}")
    _start_unix(start)
    default = max(4, default_defects_per_kind(width, height))
    per_kind = default if defects_per_kind is None else int(defects_per_kind)
    if per_kind < 1:
        raise ValueError(f"defects_per_kind must be >= 1, got {per_kind}")

    parts = collection_parts(frames, (width, height), seed, span_days, start, nr_fraction, dark_fraction, population,
                             per_kind)
    sensor, shots, plan, body, ident, frame_seeds = (parts.sensor, parts.shots, parts.plan, parts.body, parts.ident,
                                                     parts.frame_seeds)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    digits = max(4, len(str(frames - 1)))
    names = [f"frame_{i:0{digits}d}{FORMATS[fmt]}" for i in range(frames)]

    def render(i: int) -> None:
        mosaic = render_frame(np.random.default_rng(frame_seeds[i]), body, plan, i, shots[i], sensor)
        write_collection_frame(out / names[i], fmt, mosaic, shots[i], ident, sensor)

    workers = max(1, min(os.cpu_count() or 1, 4, frames))
    with ThreadPoolExecutor(workers) as pool:  # numpy, Pillow and zlib release the GIL
        list(pool.map(render, range(frames)))

    defects = plan.defects
    if fmt in MOSAIC_FORMATS:
        defects = [d | {"channel": 0} for d in defects]
    truth = {
        "kind": "collection",
        "version": COLLECTION_VERSION,
        "format": fmt,
        "size": [width, height],
        "frames": frames,
        "seed": seed,
        "cfa": CFA,
        "black_level": sensor.black_level,
        "white_level": sensor.white_level,
        "make": ident.make,
        "model": ident.model,
        "serial": ident.serial,
        "files": names,
        "frames_meta": [
            {
                "file": name,
                "exposure": float(s.exposure),
                "iso": s.iso,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s.unix)),
                "unix": s.unix,
                "nr": s.nr,
                "dark": s.dark,
            }
            for name, s in zip(names, shots)
        ],
        "defects": defects,
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


@dataclass(frozen=True)
class CollectionParts:
    """What a collection's frames are rendered from, for a seed: ``render_frame(default_rng(
    frame_seeds[i]), body, plan, i, shots[i], sensor)`` is frame i's raw mosaic."""

    sensor: CollectionSensor
    shots: list[Shot]
    plan: CollectionPlan
    body: Body
    ident: CameraId
    frame_seeds: list[np.random.SeedSequence]


def collection_parts(frames: int, size: tuple[int, int], seed: int, span_days: float = 730,
                     start: str = "2024-01-01", nr_fraction: float = 0.15, dark_fraction: float = 0.0,
                     population: float = 0.0, per_kind: int | None = None) -> CollectionParts:
    """The schedule, defect plan, body, camera and frame seeds of ``synthesize_collection`` (its
    arguments, ``per_kind`` resolved): what a tool that re-renders a collection's frames (the JPEG
    oracle of ``benchmarks/jpeg_detectability.py``) draws from, the same way."""
    width, height = size
    if per_kind is None:
        per_kind = max(4, default_defects_per_kind(width, height))
    sensor = COLLECTION_SENSOR
    shots_ss, plan_ss, body_ss, frames_ss, id_ss = np.random.SeedSequence(seed).spawn(5)
    shots = plan_shots(np.random.default_rng(shots_ss), frames, start, span_days, dark_fraction, nr_fraction, sensor)
    unix = np.array([s.unix for s in shots])
    plan = plan_collection(np.random.default_rng(plan_ss), width, height, per_kind, unix, population, sensor)
    body = build_body(np.random.default_rng(body_ss), height, width, sensor)
    ident = CameraId(MAKE, COLLECTION_MODEL, str(np.random.default_rng(id_ss).integers(10**7, 10**8)))
    return CollectionParts(sensor, shots, plan, body, ident, frames_ss.spawn(frames))
