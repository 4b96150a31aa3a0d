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
- ``excluded_x``, ``excluded_xx``: the sum of x and of x^2 (coarse: ``coarse_square``) over those
  frames, so that the fit's sums of x are the frame table's minus these, whichever frames a
  sensel clipped in (a hot one in its longest exposures, any one under a bright sky);
- ``holes``, ``holes_sum``: the count and sum of 4r of the frames in which the sensel read at
  or below the black level where its neighbours stood well above (``kernels._hole``): a hot
  sensel that saturated in a dark-subtracted frame reads black, a value clipped at the floor
  as a saturated one is at the ceiling. They are left out of the fit at no exposure (such a
  frame counts at zero in the fit, ``dark_subtraction``);
- ``first_day_1`` .. ``first_day_4``: the 4 earliest capture days of the frames in which the
  sensel lay beyond its neighbours (the range counts), in order (``NO_DAY`` for none):
  when a defect appears, those frames start then, and the earliest that came before by chance
  are told apart by the frames that follow them (``detect.onset``). The earliest days of two
  parts are the earliest 4 of their 8: like the sums, exact in any order;
- ``beyond_logx``, ``beyond_logg``: the sums of the log exposure factor and of the log gain
  (ISO/100; ``log_factor``) over those frames: a hot sensel's are the long exposures, a
  telegraph sensel's (its step is charge, amplified with the gain) the high gains, whatever
  the time;
- ``strong_above``, ``strong_below`` (kept with the range counts, whatever the frames'
  metadata): the frames in which the sensel stood beyond its neighbours by ``STRONG_BARS``
  times the range counts' bar (9 sigmas of the frame's noise, not 3), and beyond the nearest
  of them by ``STRONG_APART`` times their range. A defect that shows only in a few frames (a
  hot sensel that appeared late, in its few long exposures since; a telegraph step amplified
  at ISO 6400) is beyond by tens or hundreds of sigmas there: 4 of 60 frames is a weak count at
  3 sigmas, and a decisive one here. The block's bar is its median texture and noise, so the
  peaks of a textured part of a block pass 9 of its sigmas (9.5e-4 of the sensels of a frame on
  the benchmark collections, 1-4e-3 at ISO 100); standing apart from a flat neighbourhood
  they seldom do (9e-5).
- ``across_x``, ``across_y`` (kept with the range counts, where a sensel holds one value: a mosaic or
  a monochrome sensor): the sums over the frames of the sensel's residual against its two
  same-colour neighbours across a column (left and right: ``across_x``) or across a row (above and
  below: ``across_y``), ``2v - n1 - n2``, in sigmas of its frame's local noise (the range counts'
  bar), clipped at ``ACROSS_CLIP`` sigma, in steps of 1/``ACROSS_STEPS``. A partial column or
  row raises its sensels together: their 4-neighbour residual keeps half of it (two of the four
  share it), against the two across the line all of it; and a plain mean over a lit collection
  is the bright frames' noise (a 13-32 DN offset on a line of 128-190 sensels read 0.3 sigma per
  sensel, 3 on the line), while each frame in its own sigmas weighs the quiet frames as much as
  the bright ones (0.7-1.5 per sensel, 9-17 on the line; healthy lines at most 5.1 on the
  collections). Clipped at 1 sigma, one frame's straight scene edge along a line adds at most
  1/sqrt(n) per sensel (clipped at 5, one frame of smooth scenes drew false rows of z 10-11 on a
  12 MP raw stack of 40 frames), and the lines keep nearly all their z (clipping at 1, 2, 3 or 5
  sigmas gave the collections' offset lines 9-17, 9-19, 9-20, 9-19).

The frame-level sums (n, sum x, sum x^2, the dates) are not per sensel: they come from the
manifest of counted files, which records each frame's factor and day.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .fused import fused_pays, kernels
from .noise_bars import BAR_SIGMAS

# one step of the exposure factor: 2^-14 s (61 us) at ISO 100. 1/8000 s is 2 steps; int32 holds
# 36 hours at ISO 100 (34 minutes at ISO 6400); the products with 4r fit int64 for any stack
EXPOSURE_UNIT = 2.0**-14
MAX_FACTOR = np.iinfo(np.int32).max
# the per-sensel sums, in the order the kernels take them
EXTRA = ("xr", "excluded", "excluded_sum", "excluded_x", "excluded_xx", "holes", "holes_sum", "first_day_1",
         "first_day_2", "first_day_3", "first_day_4", "beyond_logx", "beyond_logg", "strong_above", "strong_below",
         "across_x", "across_y")
EXPOSURE_SUMS = ("xr", "excluded", "excluded_sum", "excluded_x", "excluded_xx", "holes", "holes_sum")
# x^2 is summed in steps of 2^(2*COARSE_SHIFT) (x rounded to 2^-7 s, 8 ms, at ISO 100): the
# squares of the longest exposures then fit int64 for any number of frames, and a short frame,
# whose square is what rounds away, weighs nothing in the fit's spread of x
COARSE_SHIFT = 7
COARSE_HALF = 1 << (COARSE_SHIFT - 1)
FIRST_DAYS = ("first_day_1", "first_day_2", "first_day_3", "first_day_4")
DATE_SUMS = FIRST_DAYS
NO_DAY = 65535  # uint16: no beyond frame yet (days since 1970 fit uint16 until 2149)
BEYOND_EXPOSURE = ("beyond_logx", "beyond_logg")  # with the exposure sums, where the scan keeps range counts
STRONG_COUNTS = ("strong_above", "strong_below")  # with the range counts
ACROSS_SUMS = ("across_x", "across_y")  # with the range counts, one value per sensel
# the strong counts' bar, in range-count bars (each BAR_SIGMAS = 3 sigmas of the frame's noise),
# and how far beyond its nearest neighbour a strong sensel stands, in the 4 neighbours' range
STRONG_BARS = 3
STRONG_APART = 2
# the across sums' steps per sigma, and the sigmas a frame's term is clipped at: |term| <= 16, so a
# partition's int32 holds 134 million frames. The sigma of 2v - n1 - n2 is sqrt(6/20) of the sigma of
# 4r, which the bar holds BAR_SIGMAS times (noise_bars): a term is round(a * ACROSS_SCALE / bar)
ACROSS_STEPS = 16
ACROSS_CLIP = 1
ACROSS_LIMIT = ACROSS_STEPS * ACROSS_CLIP
ACROSS_SCALE = float(np.float32(ACROSS_STEPS * BAR_SIGMAS * np.sqrt(20 / 6)))
# log2 of the exposure factor in steps of 1/LOG_STEPS (1/16 of a stop)
LOG_STEPS = 16
# a frame with no usable exposure factor (unknown, zero, absurd): left out of the fit
NO_FACTOR = -1


@dataclass(frozen=True)
class FrameTerms:
    """What the model needs of each frame of a block: its exposure factor (``NO_FACTOR``: left out
    of the fit), its capture day, and the value at which a sensel clips."""

    factors: np.ndarray
    days: np.ndarray
    white: int
    black: int = 0
    logx: np.ndarray | None = None  # ``log_factor`` of the factors (the scan's fill where unknown)
    logg: np.ndarray | None = None  # ``log_factor`` of the gains in steps of ISO/100 (0 where unknown)


@dataclass(frozen=True)
class ModelSpec:
    """Which model sums a scan keeps (each costs memory per sensel) and how frames are clipped.

    ``exposure``: the frames' exposures differ, so the residual is regressed on them;
    ``dates``: the capture dates span long enough for an onset to mean something;
    ``white``: the value at which a sensel clips (the raw white level, or the dtype's maximum);
    ``black``: the black level (a sensel at or below it, among brighter neighbours, clipped at the floor).
    """

    exposure: bool = False
    dates: bool = False
    white: int = 0
    black: int = 0
    counts: bool = False  # the scan keeps range counts (the beyond sums need them)
    lines: bool = False  # one value per sensel: with the range counts, the across sums

    @property
    def any(self) -> bool:
        return self.exposure or self.dates or self.counts

    @property
    def names(self) -> tuple[str, ...]:
        return ((EXPOSURE_SUMS if self.exposure else ()) + (BEYOND_EXPOSURE if self.exposure and self.counts else ())
                + (DATE_SUMS if self.dates else ()) + (STRONG_COUNTS if self.counts else ())
                + (ACROSS_SUMS if self.counts and self.lines else ()))


def partition_types(residual_sum: type) -> dict[str, type]:
    """The narrowest exact types of the model sums of one partition: a sum of 4r over some of its
    frames (clipped, holes) takes the type of the residual's s1 over all of them
    (``sums.sum_types``: int32 for 8- and 16-bit frames); days since 1970 fit 15 bits."""
    return {"xr": np.int64, "excluded": np.uint16, "excluded_sum": residual_sum,
            "excluded_x": np.int64, "excluded_xx": np.int64, "holes": np.uint16,
            "holes_sum": residual_sum, "beyond_logx": np.int32,
            "beyond_logg": np.int32, **dict.fromkeys(FIRST_DAYS, np.uint16), **dict.fromkeys(STRONG_COUNTS, np.uint16),
            **dict.fromkeys(ACROSS_SUMS, np.int32)}


def total_types(n: int) -> dict[str, type]:
    """Their types once partitions are added up: 64-bit sums, counts in the counts' type."""
    count = np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32
    return {"xr": np.int64, "excluded": count, "excluded_sum": np.int64, "excluded_x": np.int64,
            "excluded_xx": np.int64, "holes": count, "holes_sum": np.int64, "beyond_logx": np.int64,
            "beyond_logg": np.int64, **dict.fromkeys(FIRST_DAYS, np.uint16), **dict.fromkeys(STRONG_COUNTS, count),
            **dict.fromkeys(ACROSS_SUMS, np.int32)}


def across_terms(a: np.ndarray, bar: np.ndarray) -> np.ndarray:
    """Each sensel's term of the across sums in one frame (int32): its residual ``a`` = 2v - n1 - n2
    in 1/``ACROSS_STEPS`` sigmas of the frame's noise (``bar``: its range counts' bar), rounded and
    clipped, in float32 operations the kernel repeats to the bit."""
    inverse = np.float32(ACROSS_SCALE) / np.asarray(bar).astype(np.float32)
    q = np.rint(np.asarray(a).astype(np.float32) * inverse)
    return np.clip(q, -ACROSS_LIMIT, ACROSS_LIMIT).astype(np.int32)


def log_factor(factors, fill: int = 0) -> np.ndarray:
    """round(LOG_STEPS * log2(x)) of exposure factors (int32); ``fill`` where unknown (NO_FACTOR, 0)."""
    x = np.asarray(factors, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.rint(LOG_STEPS * np.log2(x))
    return np.where(x > 0, q, fill).astype(np.int32)


# each frame's sketch of the sensels that stand out as lit hot ones do: a 2^SKETCH_LOG2-bit
# set, sensel p at bit (p * SKETCH_MULTIPLIER mod 2^32) >> (32 - SKETCH_LOG2) (Knuth's
# multiplicative hash). 8 KiB per frame while a batch is read, a list of the set bits after:
# a frame shows tens to thousands, so a sensel of a stack's hot set is told apart from the rest
# with a false hit rate of that fill (a few percent at most)
SKETCH_LOG2 = 16
SKETCH_MULTIPLIER = 2654435761
SKETCH_WORDS = (1 << SKETCH_LOG2) // 64


def sketch_bit(positions) -> np.ndarray:
    """The sketch bit of flat sensel positions (int64), as the kernels set them."""
    p = np.asarray(positions, np.uint64)
    return ((p * np.uint64(SKETCH_MULTIPLIER)) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - SKETCH_LOG2)


def sketch_bits(sketch: np.ndarray) -> list[list[int]]:
    """(frames, SKETCH_WORDS) uint64 sketches -> each frame's sorted list of set bits."""
    bits = np.unpackbits(np.ascontiguousarray(sketch).view(np.uint8), axis=1, bitorder="little")
    return [np.flatnonzero(row).tolist() for row in bits]


def spike_floor(white: int) -> int:
    """How far above its neighbours' maximum a sensel must stand to count as a lit hot sensel in
    a frame (``kernels._spike``): 1/16 of the white level (1023 DN of a 14-bit raw), at least 16:
    far above a frame's noise even at ISO 6400 (a few hundred DN at most), far below a hot
    sensel in a long exposure, which clips."""
    return max(int(white) >> 4, 16)


def hole_floor(white: int) -> int:
    """How far below its neighbours' minimum a sensel at the black level must read to count as
    clipped at the floor (``kernels._hole``): 1/64 of the white level (255 DN of a 14-bit raw),
    at least 4. Only a sensel at black can be one, so the floor may sit lower than a spike's:
    a night scene lifts the neighbours of a dark-subtracted hot sensel a few hundred DN."""
    return max(int(white) >> 6, 4)


def coarse_square(factors) -> np.ndarray:
    """x^2 in steps of 2^(2 * COARSE_SHIFT), as the scan sums it per sensel (int64)."""
    q = (np.asarray(factors, np.int64) + COARSE_HALF) >> COARSE_SHIFT
    return q * q


def empty_value(name: str) -> int:
    """What a sum holds before any frame: ``NO_DAY`` for the earliest days, else 0."""
    return NO_DAY if name in FIRST_DAYS else 0


def zeros(spec: ModelSpec, pixel_shape: tuple[int, ...], residual_sum: type) -> dict[str, np.ndarray]:
    """Empty sums of a partition whose residual's s1 has type ``residual_sum``."""
    types = partition_types(residual_sum)
    return {name: np.full(pixel_shape, empty_value(name), types[name]) for name in spec.names}


def empty_like(sums: dict[str, np.ndarray], shape: tuple[int, ...], n: int) -> dict[str, np.ndarray]:
    """Empty sums of ``shape`` in the total types for ``n`` frames, for the names of ``sums``."""
    types = total_types(n)
    return {k: np.full(shape, empty_value(k), types.get(k, v.dtype)) for k, v in sums.items()}


def add(a: dict[str, np.ndarray], b: dict[str, np.ndarray], n: int | None = None) -> dict[str, np.ndarray]:
    """The sums of both (in the total types for ``n`` frames, or in their own); only the sums
    both have: a side that did not keep one has no total of it. The earliest days are the
    earliest 4 of both sides'."""
    types = total_types(n) if n is not None else {}
    out = {k: np.add(a[k], b[k], dtype=types.get(k, a[k].dtype)) for k in a if k in b and k not in FIRST_DAYS}
    if all(k in a and k in b for k in FIRST_DAYS):
        out.update(dict(zip(FIRST_DAYS, _earliest_of_both([a[k] for k in FIRST_DAYS], [b[k] for k in FIRST_DAYS]))))
    return out


def _earliest_of_both(a: list[np.ndarray], b: list[np.ndarray]) -> list[np.ndarray]:
    """The earliest 4 of two sorted lists of 4 days per sensel: numba's merge network where it
    pays (a sort of 8 took 2.9 s on 12 MP, the network 0.15 s), else numpy's sort (same result)."""
    k = kernels() if fused_pays(a[0].size) else None
    if k is None:
        both = np.sort(np.stack([*a, *b]), axis=0)
        return [both[i] for i in range(len(a))]
    first = [np.array(x, np.uint16, order="C") for x in a]
    k.earliest_of_both(*(x.reshape(-1) for x in first), *(np.ascontiguousarray(x, np.uint16).reshape(-1) for x in b))
    return first


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


def frame_means(frames: np.ndarray) -> np.ndarray:
    """Each frame's mean value, float64. Of 8- and 16-bit frames from the exact integer sum: the
    same to the bit as numpy's float64 mean (its sums of integers under 2^53 are exact), in two
    thirds of its time (every band of a sensor computes every frame's)."""
    flat = frames.reshape(len(frames), -1)
    if flat.dtype in (np.uint8, np.uint16):
        return flat.sum(axis=1, dtype=np.uint64) / max(1, flat.shape[1])
    return flat.mean(axis=1, dtype=np.float64)


@dataclass(frozen=True)
class ModelPlan:
    """The model terms of every file of a scan, decided from the headers before reading:
    ``factors`` and ``days`` by path; with ``frame_mean`` the factor is the decoded frame's mean
    value instead (no frame of the stack has an exposure)."""

    spec: ModelSpec
    factors: dict[str, int]
    days: dict[str, int]
    frame_mean: bool = False
    logx_fill: int = 0  # the log factor a frame without one counts at (the stack's median)
    gains: dict[str, int] = field(default_factory=dict)  # path -> log_factor of its ISO/100 (see FrameTerms)

    def subset(self, paths: list[str]) -> ModelPlan:
        """The plan of some files only (what one read task needs)."""
        return ModelPlan(self.spec, {p: self.factors[p] for p in paths if p in self.factors},
                         {p: self.days[p] for p in paths if p in self.days}, self.frame_mean, self.logx_fill,
                         {p: self.gains[p] for p in paths if p in self.gains})

    def terms(self, paths: list[str], frames: np.ndarray) -> FrameTerms:
        """The terms of the frames decoded from ``paths`` (in order)."""
        if self.frame_mean and self.spec.exposure:
            scale = frame_mean_scale(frames.dtype)
            factors = np.rint(frame_means(frames) * scale).astype(np.int64)
        else:
            factors = np.array([self.factors.get(p, NO_FACTOR) for p in paths], np.int64)
        days = np.array([self.days.get(p, 0) for p in paths], np.int64)
        gains = np.array([self.gains.get(p, 0) for p in paths], np.int32)
        return FrameTerms(factors, days, self.spec.white, self.spec.black, log_factor(factors, self.logx_fill), gains)
