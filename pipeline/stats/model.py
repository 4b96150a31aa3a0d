"""The sums of the physics model: what the residual does with exposure and with time, per sensel.

Real hot pixels are dark current: their excess grows with exposure time x analog gain (ISO),
invisible at 1/1000 s, clipping at 30 s. Telegraph pixels jump at random, whatever the
exposure. Defects appear over time. Per-sensel moments cannot tell these apart; these sums can,
and like the moments they are exact integers that merge by adding (partitions, segments,
resumes, ``--merge``), in any order.

Per frame the scan knows (from the file's metadata, before decoding) its exposure factor
``x`` = exposure time x ISO/100, in steps of ``EXPOSURE_UNIT`` seconds at ISO 100, and its
capture day. Per sensel it keeps (``EXTRA``):

- ``xr``: sum of x * 4r over the frames in the fit (r the residual; 4r the exact integer of
  ``RESIDUAL_SCALE``), the cross term of the regression of the residual on the exposure;
- ``excluded``: the frames left out of that fit: those in which the sensel clipped at the
  white level (it would bias the fit low), and frames with no usable exposure;
- ``excluded_sum``: the sum of 4r over those frames, so that the fit's own sums of r are the
  moments' minus these;
- ``beyond_days``: the sum of the capture day over the frames in which the sensel lay beyond
  its neighbours' range (the range counts): when a defect appears, those frames start then.

The frame-level sums (n, sum x, sum x^2, the dates) are not per sensel: they come from the
manifest of counted files, which records each frame's factor and day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# one step of the exposure factor: 2^-14 s (61 us) at ISO 100. 1/8000 s is 2 steps; int32 holds
# 36 hours at ISO 100 (34 minutes at ISO 6400); the products with 4r fit int64 for any stack
EXPOSURE_UNIT = 2.0**-14
MAX_FACTOR = np.iinfo(np.int32).max
# the per-sensel sums, in the order the kernels take them
EXTRA = ("xr", "excluded", "excluded_sum", "beyond_days")
EXPOSURE_SUMS = ("xr", "excluded", "excluded_sum")
DATE_SUMS = ("beyond_days",)
# a frame with no usable exposure factor (unknown, zero, absurd): left out of the fit
NO_FACTOR = -1


@dataclass(frozen=True)
class FrameTerms:
    """What the model needs of each frame of a block: its exposure factor (``NO_FACTOR``: left out
    of the fit), its capture day, and the value at which a sensel clips."""

    factors: np.ndarray
    days: np.ndarray
    white: int


@dataclass(frozen=True)
class ModelSpec:
    """Which model sums a scan keeps (each costs memory per sensel) and how frames are clipped.

    ``exposure``: the frames' exposures differ, so the residual is regressed on them;
    ``dates``: the capture dates span long enough for an onset to mean something;
    ``white``: the value at which a sensel clips (the raw white level, or the dtype's maximum).
    """

    exposure: bool = False
    dates: bool = False
    white: int = 0

    @property
    def any(self) -> bool:
        return self.exposure or self.dates

    @property
    def names(self) -> tuple[str, ...]:
        return (EXPOSURE_SUMS if self.exposure else ()) + (DATE_SUMS if self.dates else ())


def partition_types(frame_dtype) -> dict[str, type]:
    """The narrowest exact types of the model sums of one partition (``sums.sum_types``' limits):
    4r needs 10 bits for 8-bit frames, 18 for 16-bit; days since 1970 fit 15 bits."""
    wide = np.dtype(frame_dtype).itemsize > 1
    return {"xr": np.int64, "excluded": np.uint16, "excluded_sum": np.int64 if wide else np.int32,
            "beyond_days": np.uint32}


def total_types(n: int) -> dict[str, type]:
    """Their types once partitions are added up: 64-bit sums, counts in the counts' type."""
    count = np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32
    return {"xr": np.int64, "excluded": count, "excluded_sum": np.int64, "beyond_days": np.int64}


def zeros(spec: ModelSpec, pixel_shape: tuple[int, ...], frame_dtype) -> dict[str, np.ndarray]:
    types = partition_types(frame_dtype)
    return {name: np.zeros(pixel_shape, types[name]) for name in spec.names}


def add(a: dict[str, np.ndarray], b: dict[str, np.ndarray], n: int | None = None) -> dict[str, np.ndarray]:
    """The sums of both (in the total types for ``n`` frames, or in their own); only the sums
    both have: a side that did not keep one has no total of it."""
    types = total_types(n) if n is not None else {}
    return {k: np.add(a[k], b[k], dtype=types.get(k, a[k].dtype)) for k in a if k in b}


def widen(extra: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """A partition's sums in the total types."""
    types = total_types(n)
    return {k: v.astype(types[k], copy=False) for k, v in extra.items()}


def exposure_factor(exposure: float | None, iso: float | None, any_iso: bool) -> int:
    """A frame's exposure factor in ``EXPOSURE_UNIT`` steps, or ``NO_FACTOR``.

    Without a usable exposure (missing, zero, negative, not a number, longer than a day) the
    frame stays out of the fit. ISO 100 is the unit of gain; when some frames of the stack name
    their ISO, a frame that does not stays out too (its gain is unknown)."""
    if exposure is None or not np.isfinite(exposure) or not 0 < exposure <= 86400:
        return NO_FACTOR
    if iso is None or not np.isfinite(iso) or iso <= 0:
        if any_iso:
            return NO_FACTOR
        gain = 1.0
    else:
        gain = iso / 100.0
    steps = round(exposure * gain / EXPOSURE_UNIT)
    return int(min(max(steps, 1), MAX_FACTOR))


def capture_day(unix: float | None) -> int | None:
    """The capture day (days since 1970, UTC) of a capture time, or None."""
    if unix is None or not np.isfinite(unix):
        return None
    return int(unix // 86400)


# where no frame has an exposure (plain TIFF/PNG darks), each frame's mean value stands in for it:
# in a dark stack it rises with exposure, with the dark current of every sensel, and with it the
# common factor by which hot sensels grow. In steps fine enough for an 8-bit dark that reads 0 in
# all but a few sensels (a mean of 0.002 DN): 2^-22 DN for 8-bit frames, 2^-14 for 16-bit, so
# that the largest mean still fits the factor's int32
def frame_mean_scale(frame_dtype) -> int:
    return 2 ** (30 - 8 * np.dtype(frame_dtype).itemsize)


@dataclass(frozen=True)
class ModelPlan:
    """The model terms of every file of a scan, decided from the headers before reading:
    ``factors`` and ``days`` by path; with ``frame_mean`` the factor is the decoded frame's mean
    value instead (no frame of the stack has an exposure)."""

    spec: ModelSpec
    factors: dict[str, int]
    days: dict[str, int]
    frame_mean: bool = False

    def subset(self, paths: list[str]) -> ModelPlan:
        """The plan of some files only (what one read task needs)."""
        return ModelPlan(self.spec, {p: self.factors[p] for p in paths if p in self.factors},
                         {p: self.days[p] for p in paths if p in self.days}, self.frame_mean)

    def terms(self, paths: list[str], frames: np.ndarray) -> FrameTerms:
        """The terms of the frames decoded from ``paths`` (in order)."""
        if self.frame_mean and self.spec.exposure:
            axes = tuple(range(1, frames.ndim))
            scale = frame_mean_scale(frames.dtype)
            factors = np.rint(frames.mean(axis=axes, dtype=np.float64) * scale).astype(np.int64)
        else:
            factors = np.array([self.factors.get(p, NO_FACTOR) for p in paths], np.int64)
        days = np.array([self.days.get(p, 0) for p in paths], np.int64)
        return FrameTerms(factors, days, self.spec.white)
