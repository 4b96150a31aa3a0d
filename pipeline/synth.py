"""Synthetic sensor data with known planted defects (for ``make demo``, tests, benchmarks).

Detection quality measured on synthetic data only means something if the data looks like a
real camera's, so this module simulates the whole chain rather than painting dots on noise:

1. **Scene** (per frame, all different): gradients, soft blobs, occluding shapes with
   lens-blurred edges, fine textures and stripes, specular highlights and thin lines, under
   a random exposure (some frames dark, some clipped). It is evaluated
   directly on the sensel grid (each sensel sees only its CFA colour), never as full RGB,
   so memory stays at one float32 plane per frame.
2. **Sensor**: a 2x2 RGGB Bayer mosaic of 12-bit linear sensels (black level 256, white
   4095) with fixed vignetting and PRNU, dark current (a log-normal body whose tail stays
   clear of the warm-pixel criterion: see ``_camera``), shot noise whose variance grows with
   the signal (Gaussian with Poisson's variance: 4x cheaper than ``rng.poisson``), and
   Gaussian read noise. In dark mode (lens cap) there is no scene at all.
3. **Defects**, planted at sensel level and recorded in ``truth.json``: hot (strong and
   weak "warm"), stuck (constant, noiseless), dead (no response, or low-gain "cold") and
   noisy (random telegraph noise, or large extra Gaussian noise).
4. **Camera pipeline** for the 8-bit formats: bilinear demosaic, white balance, sRGB tone
   curve, 8-bit RGB (JPEG quality 92, or lossless PNG/TIFF). Mosaic formats (``tiff16``,
   ``png16``, ``dng``) store the raw 12-bit values in 16-bit containers, undemosaiced.

Each frame draws from its own child of ``SeedSequence(seed)``, so output is deterministic
for a seed whatever the thread count (frames are rendered on a small thread pool), frame i
does not depend on the number of frames, and the sensor mosaic for a given seed and size is
the same whatever the output format (only the encoding differs).
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "BLACK_LEVEL",
    "WHITE_LEVEL",
    "CFA",
    "FORMATS",
    "MOSAIC_FORMATS",
    "MAKE",
    "MODEL",
    "MIN_SPACING",
    "SENSOR",
    "TRUTH_VERSION",
    "WARM_SIGMAS",
    "SensorModel",
    "cfa_colour_index",
    "default_defects_per_kind",
    "demosaic_bilinear",
    "develop",
    "synthesize",
]

BLACK_LEVEL = 256
WHITE_LEVEL = 4095
CFA = "RGGB"
COLOURS = "RGB"
MAKE, MODEL = "Hotpixels", "Synth 1"

# format -> file extension; the mosaic formats keep one value per sensel
FORMATS = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "tiff16": ".tif", "png16": ".png", "dng": ".dng"}
MOSAIC_FORMATS = frozenset({"tiff16", "png16", "dng"})
_ALIASES = {"jpg": "jpeg", "tif": "tiff"}

# defect placement: at least this far (Chebyshev, in sensels) from each other and the border
MIN_SPACING = 8
_FRAME_NAME = re.compile(r"^frame_\d{4,}\.(jpg|png|tif|dng)$")


@dataclass(frozen=True)
class SensorModel:
    """Noise and colour parameters of the simulated camera (roughly a 12-bit APS-C at base ISO).

    ``gain`` is DN per electron (full well ~15k e-), so shot-noise variance in DN is
    ``gain * signal``. ``wb`` are the white-balance multipliers that the camera applies:
    raw red and blue respond less than green in daylight, as in real sensors.
    """

    gain: float = 0.25
    read_noise: float = 2.0
    dark_current: float = 1.0  # mean DN per frame; per-sensel values are log-normal around it
    dark_spread: float = 0.5  # sigma of the log of that log-normal: the dark-signal non-uniformity (DSNU)
    dark_healthy_sigmas: float = 1.0  # healthy sensels stay within this many dark-frame noise sigmas of the median
    prnu: float = 0.005  # photo-response non-uniformity (relative std of per-sensel gain)
    vignetting: float = 0.25  # relative light loss in the corners
    wb: tuple[float, float, float] = (2.0, 1.0, 1.5)

    def noise_sigma(self, signal_dn: float) -> float:
        """Per-frame temporal noise (DN) of a healthy sensel at a given signal above black."""
        return float(np.sqrt(self.read_noise**2 + self.gain * (signal_dn + self.dark_current)))

    def dark_median(self) -> float:
        """Median dark signal (DN per frame) of a healthy sensel: the centre of its log-normal."""
        return float(self.dark_current * np.exp(-0.5 * self.dark_spread**2))

    def healthy_dark_max(self) -> float:
        """Largest dark signal (DN per frame) of a healthy sensel: the DSNU body's cut (see ``_camera``)."""
        return self.dark_median() + self.dark_healthy_sigmas * self.noise_sigma(0.0)


SENSOR = SensorModel()
# typical signal of a mid-grey (18 %) photo: the reference level for "a few noise sigmas"
_TYPICAL_SIGNAL = 0.18 * (WHITE_LEVEL - BLACK_LEVEL)
# warm pixels are this many temporal noise sigmas above a healthy sensel, planted uniformly in
# this range: the lower end is the criterion of "warm" (see ``_camera`` for why no healthy sensel
# meets it)
WARM_SIGMAS = (3.0, 6.0)
# version of what synthesize writes for a seed: caches of synthetic stacks compare it
TRUTH_VERSION = 2


# --------------------------------------------------------------------------- CFA geometry


def cfa_colour_index(height: int, width: int) -> np.ndarray:
    """RGB index (0=R, 1=G, 2=B) of every sensel of an RGGB mosaic, shape (H, W) uint8."""
    tile = np.array([[0, 1], [1, 2]], dtype=np.uint8)
    return np.tile(tile, ((height + 1) // 2, (width + 1) // 2))[:height, :width]


def default_defects_per_kind(width: int, height: int) -> int:
    """8 per kind at 640x480, scaled with the area (real sensors have a roughly fixed density)."""
    return max(3, round(8 * width * height / (640 * 480)))


# --------------------------------------------------------------------------- defect plan


@dataclass
class _Plan:
    """Where the defects are and how they behave, fixed for the whole stack.

    Indices are flat (row-major) sensel indices. RTS states are precomputed because a
    telegraph signal is a Markov chain over frames, while frames are rendered independently.
    """

    defects: list[dict]
    hot_idx: np.ndarray
    hot_amp: np.ndarray
    stuck_idx: np.ndarray
    stuck_val: np.ndarray
    dead_idx: np.ndarray
    dead_gain: np.ndarray
    rts_idx: np.ndarray
    rts_step: np.ndarray
    rts_state: np.ndarray  # (frames, n_rts) bool: high level when True
    gauss_idx: np.ndarray
    gauss_sigma: np.ndarray


def _place(rng: np.random.Generator, width: int, height: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random positions >= MIN_SPACING apart and from the border.

    Positions are jittered inside distinct cells of a grid whose cells are at least
    MIN_SPACING wide; the jitter range (cell - MIN_SPACING) keeps any two points in different
    cells at least MIN_SPACING apart along the axis where their cells differ. Smaller cells
    (less jitter) are used only if the image is too small for the default ones.
    """
    lo = MIN_SPACING
    for cell in (16, 12, MIN_SPACING):
        # usable span [lo, size-1-lo]; a cell's point lies in [start, start + cell - lo]
        nx = (width - 2 * lo - 1 - (cell - lo)) // cell + 1
        ny = (height - 2 * lo - 1 - (cell - lo)) // cell + 1
        if nx > 0 and ny > 0 and nx * ny >= count:
            break
    else:
        raise ValueError(
            f"image {width}x{height} is too small for {count} defects spaced {MIN_SPACING} px apart; "
            "use a larger --size or fewer defects"
        )
    cells = rng.choice(nx * ny, size=count, replace=False)
    jitter = cell - lo + 1
    xs = lo + (cells % nx) * cell + rng.integers(0, jitter, count)
    ys = lo + (cells // nx) * cell + rng.integers(0, jitter, count)
    return xs.astype(np.int64), ys.astype(np.int64)


def _plan_defects(
    rng: np.random.Generator, width: int, height: int, per_kind: int, frames: int, dark: bool, sensor: SensorModel
) -> _Plan:
    """Choose positions and behaviour of every planted defect, all kinds interleaved spatially.

    Amplitudes are in DN. Weak defects are scaled to the temporal noise a healthy sensel shows
    in this mode (read noise in darks, shot noise at mid-grey in photos), so "warm" means
    "a few sigmas" whatever the mode.
    """
    sigma = sensor.noise_sigma(0.0 if dark else _TYPICAL_SIGNAL)
    xs, ys = _place(rng, width, height, 4 * per_kind)
    order = rng.permutation(4 * per_kind)
    xs, ys = xs[order], ys[order]
    kinds = np.repeat(["hot", "stuck", "dead", "noisy"], per_kind)
    colour_of = cfa_colour_index(2, 2)
    span = WHITE_LEVEL - BLACK_LEVEL
    n_weak = max(1, per_kind // 3)
    defects: list[dict] = []
    arrays: dict[str, list] = {k: [] for k in ("hot", "stuck", "dead", "rts", "gauss")}

    for i, (x, y, kind) in enumerate(zip(xs.tolist(), ys.tolist(), kinds.tolist())):
        c = int(colour_of[y % 2, x % 2])
        d = {"x": x, "y": y, "kind": kind, "channel": c, "color": COLOURS[c]}
        flat = y * width + x
        j = i % per_kind  # rank within its kind: the first n_weak are the weak variant
        if kind == "hot":
            warm = j < n_weak
            amp = rng.uniform(*WARM_SIGMAS) * sigma if warm else float(np.exp(rng.uniform(np.log(150), np.log(3000))))
            d.update(amplitude=round(float(amp), 2), warm=bool(warm))
            arrays["hot"].append((flat, amp))
        elif kind == "stuck":
            saturated = j % 2 == 0
            val = float(WHITE_LEVEL) if saturated else float(round(BLACK_LEVEL + rng.uniform(0.15, 0.7) * span))
            d.update(amplitude=val, value=int(val), saturated=bool(saturated))
            arrays["stuck"].append((flat, val))
        elif kind == "dead":
            cold = j < n_weak
            gain = rng.uniform(0.1, 0.4) if cold else 0.0
            # amplitude (mean DN lost vs. a healthy sensel) is filled in after rendering
            d.update(amplitude=0.0, gain=round(float(gain), 3), cold=bool(cold))
            arrays["dead"].append((flat, gain))
        else:
            if j % 2 == 0:  # random telegraph noise: two levels +-step/2, flips with prob p
                step = rng.uniform(8.0, 20.0) * sigma  # +-step/2: sd 4-10 sigma, like the Gaussian kind
                p = rng.uniform(0.2, 0.5)
                # own stream per pixel, so frame i's state does not depend on the stack length;
                # the forced flip at frame 1 makes both levels occur in any stack of >= 2 frames
                flips = np.random.default_rng(int(rng.integers(2**63))).random(frames) < p
                flips[0], flips[1:2] = False, True
                state = (rng.random() < 0.5) ^ (np.cumsum(flips) % 2).astype(bool)
                d.update(amplitude=round(float(step), 2), mode="rts", p_switch=round(float(p), 3))
                arrays["rts"].append((flat, step, state))
            else:  # much more variance than the neighbours
                s = rng.uniform(4.0, 10.0) * sigma
                d.update(amplitude=round(float(s), 2), mode="gaussian")
                arrays["gauss"].append((flat, s))
        defects.append(d)

    def column(name: str, k: int, dtype: type) -> np.ndarray:
        return np.array([row[k] for row in arrays[name]], dtype=dtype)

    rts_states = [row[2] for row in arrays["rts"]]
    return _Plan(
        defects=defects,
        hot_idx=column("hot", 0, np.int64),
        hot_amp=column("hot", 1, np.float32),
        stuck_idx=column("stuck", 0, np.int64),
        stuck_val=column("stuck", 1, np.float32),
        dead_idx=column("dead", 0, np.int64),
        dead_gain=column("dead", 1, np.float32),
        rts_idx=column("rts", 0, np.int64),
        rts_step=column("rts", 1, np.float32),
        rts_state=np.stack(rts_states, axis=1) if rts_states else np.zeros((frames, 0), bool),
        gauss_idx=column("gauss", 0, np.int64),
        gauss_sigma=column("gauss", 1, np.float32),
    )


# --------------------------------------------------------------------------- scene


def _colour(rng: np.random.Generator, lo: float = 0.03, hi: float = 1.0) -> np.ndarray:
    """A random linear RGB reflectance: a grey level with a random tint."""
    grey = rng.uniform(lo, hi)
    tint = np.clip(1.0 + rng.uniform(-0.6, 0.6, 3), 0.05, None)
    return (grey * tint / tint.mean()).astype(np.float32)


def _value_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a coarse random grid bilinearly upsampled."""
    gh = max(1, round(cells * height / max(height, width)))
    gw = max(1, round(cells * width / max(height, width)))
    coarse = rng.random((gh + 1, gw + 1), dtype=np.float32)
    ys = np.linspace(0, gh, height, dtype=np.float32)
    xs = np.linspace(0, gw, width, dtype=np.float32)
    y0 = np.minimum(ys.astype(np.int64), gh - 1)
    x0 = np.minimum(xs.astype(np.int64), gw - 1)
    fy = (ys - y0)[:, None]
    fx = xs - x0
    rows = coarse[y0] * (1 - fy) + coarse[y0 + 1] * fy
    return rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx


def _box(cx: float, cy: float, rx: float, ry: float, width: int, height: int) -> tuple[slice, slice] | None:
    """Bounding box (clipped to the image) of a shape centred at (cx, cy); None if outside."""
    x0, x1 = max(0, int(cx - rx)), min(width, int(cx + rx) + 2)
    y0, y1 = max(0, int(cy - ry)), min(height, int(cy + ry) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _local_uv(box: tuple[slice, slice], cx: float, cy: float, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of a box's sensels in a frame rotated by ``theta`` around (cx, cy)."""
    yy = np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None] - cy
    xx = np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :] - cx
    c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    return xx * c + yy * s, yy * c - xx * s


def _soft_edge(dist: np.ndarray, width: float) -> np.ndarray:
    """Coverage (0..1) of a shape from the signed distance to its edge, blurred over ``width`` px."""
    return np.clip(np.float32(0.5) - dist / np.float32(width), 0.0, 1.0)


def _scene(rng: np.random.Generator, cidx: np.ndarray) -> np.ndarray:
    """Linear scene radiance seen by each sensel through its colour filter, (H, W) float32.

    Values are relative reflectances (~0..1) except highlights, which go far above 1 and
    clip after exposure, as speculars do.
    """
    h, w = cidx.shape
    size = max(h, w)
    # small details (lines, speculars) scale with the area: a bigger sensor sees more of them
    detail = max(1.0, h * w / (640 * 480))
    # background: a two-colour linear gradient in a random direction
    a, b = _colour(rng), _colour(rng)
    theta = rng.uniform(0, 2 * np.pi)
    ramp_x = np.arange(w, dtype=np.float32) * np.float32(np.cos(theta))
    ramp_y = np.arange(h, dtype=np.float32)[:, None] * np.float32(np.sin(theta))
    t = ramp_x + ramp_y
    t -= t.min()
    t /= max(float(t.max()), 1.0)
    s = a[cidx] + (b - a)[cidx] * t
    # low-frequency texture (shading, clouds, foliage in the distance)
    amp = np.float32(rng.uniform(0.1, 0.6))
    s *= (1 - amp) + 2 * amp * _value_noise(rng, h, w, int(rng.integers(3, 24)))

    # soft blobs (separable Gaussians, computed on their bounding box only)
    for _ in range(int(rng.integers(3, 10))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        sig = rng.uniform(0.02, 0.2) * size
        box = _box(cx, cy, 3 * sig, 3 * sig, w, h)
        if box is None:
            continue
        gy = np.exp(-((np.arange(box[0].start, box[0].stop) - cy) ** 2) / (2 * sig * sig)).astype(np.float32)
        gx = np.exp(-((np.arange(box[1].start, box[1].stop) - cx) ** 2) / (2 * sig * sig)).astype(np.float32)
        s[box] += rng.uniform(-0.4, 0.8) * _colour(rng)[cidx[box]] * (gy[:, None] * gx[None, :])
    np.maximum(s, 0.0, out=s)

    # occluding shapes (rotated rectangles and ellipses), some textured. Edges are soft:
    # lenses do not resolve a sensel-sharp step, and the blur varies with focus and depth.
    focus = rng.uniform(0.8, 2.5)
    for _ in range(int(rng.integers(2, 9))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        ra, rb = rng.uniform(0.03, 0.25, 2) * size
        rot = rng.uniform(0, np.pi)
        box = _box(cx, cy, max(ra, rb) + 3, max(ra, rb) + 3, w, h)
        if box is None:
            continue
        u, v = _local_uv(box, cx, cy, rot)
        if rng.random() < 0.5:
            dist = np.maximum(np.abs(u) - np.float32(ra), np.abs(v) - np.float32(rb))
        else:
            dist = (np.sqrt((u / np.float32(ra)) ** 2 + (v / np.float32(rb)) ** 2) - 1) * np.float32(min(ra, rb))
        alpha = _soft_edge(dist, focus * rng.uniform(0.7, 2.0))
        fill = _colour(rng)[cidx[box]] * (1 + np.float32(rng.uniform(-0.4, 0.4)) * u / np.float32(ra))
        r = rng.random()
        if r < 0.25:  # stripes: fabric, fences, blinds (and some moire, as in real cameras)
            period = np.float32(rng.uniform(3.0, 12.0))
            fill *= np.float32(1 - rng.uniform(0.2, 0.5)) + np.float32(rng.uniform(0.1, 0.4)) * np.sin(
                np.float32(2 * np.pi) * v / period
            )
        elif r < 0.45:  # fine random texture (gravel, foliage) at 2-6 px grain
            grain = _value_noise(rng, *fill.shape, max(1, int(max(fill.shape) / rng.uniform(2.0, 6.0))))
            depth = np.float32(rng.uniform(0.2, 0.6))
            fill *= (1 - depth) + 2 * depth * grain
        s[box] += alpha * (fill - s[box])

    # thin lines (wires, edges) and specular highlights far above white
    for _ in range(int(rng.integers(0, 4) * np.sqrt(detail))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        half = rng.uniform(0.1, 0.5) * size
        box = _box(cx, cy, half, half, w, h)
        if box is None:
            continue
        u, v = _local_uv(box, cx, cy, rng.uniform(0, np.pi))
        dist = np.maximum(np.abs(v) - np.float32(rng.uniform(0.3, 1.5)), np.abs(u) - np.float32(half))
        alpha = _soft_edge(dist, focus)
        level = rng.uniform(1.0, 4.0) if rng.random() < 0.5 else 0.01
        s[box] += alpha * (np.float32(level) * _colour(rng, 0.5)[cidx[box]] - s[box])
    for _ in range(int(rng.integers(0, 20) * detail)):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rad = rng.uniform(0.5, 4.0)
        box = _box(cx, cy, rad + 3, rad + 3, w, h)
        if box is None:
            continue
        u, v = _local_uv(box, cx, cy, 0.0)
        alpha = _soft_edge(np.sqrt(u * u + v * v) - np.float32(rad), focus)
        s[box] += alpha * np.float32(rng.uniform(1.5, 20.0)) * _colour(rng, 0.8)[cidx[box]]
    return s


# --------------------------------------------------------------------------- sensor


@dataclass
class _Camera:
    """Fixed per-sensel properties of the simulated camera body, shared by every frame."""

    cidx: np.ndarray  # CFA colour index per sensel
    response: np.ndarray  # DN per unit scene radiance at exposure 1: span * PRNU * vignetting / wb
    dark: np.ndarray  # dark current, DN per frame


def _camera(rng: np.random.Generator, height: int, width: int, sensor: SensorModel) -> _Camera:
    """Build the fixed pattern: vignetting, PRNU and dark-signal non-uniformity.

    The dark signal of a healthy sensel is log-normal around ``dark_current`` (DSNU), with the
    body's far tail cut at ``healthy_dark_max``: 1 temporal sigma of a sensel in the dark above
    the median (values beyond are drawn again, a truncated log-normal; 0.8 % of the sensels at
    the defaults). Why: a sensel whose dark signal is ``WARM_SIGMAS[0]`` (3) temporal sigmas
    above its neighbours *is* a warm pixel, physically the same as a planted one, and
    ``truth.json`` has to list every such sensel. The uncut log-normal put 1-2 unlisted
    sensels per 640x480 stack beyond 3 sigma (e.g. 3.3 and 3.4 sigma at seeds 1 and 4, where
    planted warm pixels start at 3.0) and tens beyond 2 sigma: no detector can tell them from
    the planted ones, so they counted as false reports or forced thresholds that miss the
    planted ones. Real sensors look the same way: defect-free sensels form a narrow body and
    hot/warm pixels a separate population (generation centres at lattice defects), here the
    planted one. The gap between the cut (1 sigma) and the warm criterion (3 sigma) is more
    than 5 standard errors of a measured offset for any stack of >= 10 frames, so no sensel is
    "maybe warm": the truth is unambiguous. In photos the cut changes nothing visible (1-3 DN
    under ~15 DN of shot noise).
    """
    cidx = cfa_colour_index(height, width)
    yy = (np.arange(height, dtype=np.float32)[:, None] - (height - 1) / 2) / max(height, width)
    xx = (np.arange(width, dtype=np.float32)[None, :] - (width - 1) / 2) / max(height, width)
    r2 = (xx * xx + yy * yy) / np.float32(max(float(xx[0, 0] ** 2 + yy[0, 0] ** 2), 1e-9))
    vign = 1 - np.float32(sensor.vignetting) * r2
    prnu = 1 + np.float32(sensor.prnu) * rng.standard_normal((height, width), dtype=np.float32)
    inv_wb = (1 / np.asarray(sensor.wb, dtype=np.float32))[cidx]
    response = np.float32(WHITE_LEVEL - BLACK_LEVEL) * prnu * vign * inv_wb
    mu, cut = -0.5 * sensor.dark_spread**2, sensor.healthy_dark_max()
    dark = sensor.dark_current * rng.lognormal(mu, sensor.dark_spread, (height, width))
    while True:  # a truncated log-normal: draw the sensels beyond the cut again
        over = np.flatnonzero(dark > cut)
        if not len(over):
            break
        dark.flat[over] = sensor.dark_current * rng.lognormal(mu, sensor.dark_spread, len(over))
    return _Camera(cidx, response, dark.astype(np.float32))


def _expose(
    rng: np.random.Generator, cam: _Camera, plan: _Plan, frame: int, dark: bool, sensor: SensorModel
) -> tuple[np.ndarray, float, np.ndarray]:
    """One raw frame: (uint16 mosaic, exposure, DN that each dead sensel lost in this frame)."""
    h, w = cam.cidx.shape
    if dark:
        exposure = 0.0
        signal = cam.dark.copy()
    else:
        scene = _scene(rng, cam.cidx)
        # auto-exposure to mid-grey, then a random +1/-2 EV bias: some frames dark, some clipped
        exposure = float(0.18 / max(float(scene.mean()), 1e-3) * 2.0 ** rng.uniform(-2.0, 1.0))
        signal = scene * (np.float32(exposure) * cam.response)
        signal += cam.dark
    flat = signal.reshape(-1)
    # defects acting on the expected signal (so they carry shot noise like real charge)
    flat[plan.hot_idx] += plan.hot_amp
    healthy_dead = flat[plan.dead_idx].copy()
    flat[plan.dead_idx] *= plan.dead_gain
    span = np.float32(WHITE_LEVEL - BLACK_LEVEL)  # only signal below clipping can be lost visibly
    lost = np.minimum(healthy_dead, span) - np.minimum(flat[plan.dead_idx], span)
    # shot noise (variance = gain * signal, as Poisson) and read noise, as one Gaussian draw
    sd = np.sqrt(signal * np.float32(sensor.gain) + np.float32(sensor.read_noise**2))
    value = signal + sd * rng.standard_normal((h, w), dtype=np.float32)
    value += np.float32(BLACK_LEVEL)
    vflat = value.reshape(-1)
    # defects acting on the read-out value
    vflat[plan.rts_idx] += np.where(plan.rts_state[frame], 0.5, -0.5).astype(np.float32) * plan.rts_step
    vflat[plan.gauss_idx] += plan.gauss_sigma * rng.standard_normal(len(plan.gauss_idx), dtype=np.float32)
    np.rint(value, out=value)
    np.clip(value, 0, WHITE_LEVEL, out=value)
    vflat[plan.stuck_idx] = plan.stuck_val
    return value.astype(np.uint16), exposure, lost


# --------------------------------------------------------------------------- camera pipeline


def demosaic_bilinear(mosaic: np.ndarray) -> np.ndarray:
    """Bilinear demosaic of an RGGB mosaic (H, W) -> (H, W, 3) float32.

    A sensel's own colour is kept exactly at its own position, so a defective sensel shows
    at (x, y) in its own channel and bleeds only into the interpolated channels of its 8
    neighbours, as in a real camera. Edges reflect (which keeps CFA parity). Works on the
    four colour sub-planes, where reflecting the mosaic is replicating each sub-plane's edge,
    so only the values each site needs are computed.
    """
    m = np.asarray(mosaic, dtype=np.float32)
    h, w = m.shape
    if h < 2 or w < 2:
        raise ValueError(f"a Bayer mosaic needs at least 2x2 sensels, got {w}x{h}")
    if h % 2 or w % 2:  # odd size: reflect one more row/column, demosaic, crop
        m = np.pad(m, ((0, h % 2), (0, w % 2)), mode="reflect")
    hh, ww = m.shape[0] // 2, m.shape[1] // 2
    planes = [np.pad(m[r::2, c::2], 1, mode="edge") for r, c in ((0, 0), (0, 1), (1, 0), (1, 1))]
    r_, g1, g2, b_ = ((lambda dy, dx, p=p: p[1 + dy : 1 + dy + hh, 1 + dx : 1 + dx + ww]) for p in planes)
    q, half = np.float32(0.25), np.float32(0.5)
    out = np.empty((2 * hh, 2 * ww, 3), dtype=np.float32)
    # R sites (even row, even col): G from the 4 crosses, B from the 4 diagonals
    out[0::2, 0::2, 0] = r_(0, 0)
    out[0::2, 0::2, 1] = (g2(-1, 0) + g2(0, 0) + g1(0, -1) + g1(0, 0)) * q
    out[0::2, 0::2, 2] = (b_(-1, -1) + b_(-1, 0) + b_(0, -1) + b_(0, 0)) * q
    # G in red rows: R left/right, B up/down
    out[0::2, 1::2, 0] = (r_(0, 0) + r_(0, 1)) * half
    out[0::2, 1::2, 1] = g1(0, 0)
    out[0::2, 1::2, 2] = (b_(-1, 0) + b_(0, 0)) * half
    # G in blue rows: R up/down, B left/right
    out[1::2, 0::2, 0] = (r_(0, 0) + r_(1, 0)) * half
    out[1::2, 0::2, 1] = g2(0, 0)
    out[1::2, 0::2, 2] = (b_(0, -1) + b_(0, 0)) * half
    # B sites: R from the 4 diagonals, G from the 4 crosses
    out[1::2, 1::2, 0] = (r_(0, 0) + r_(0, 1) + r_(1, 0) + r_(1, 1)) * q
    out[1::2, 1::2, 1] = (g1(0, 0) + g1(1, 0) + g2(0, 0) + g2(0, 1)) * q
    out[1::2, 1::2, 2] = b_(0, 0)
    return out[:h, :w]


_LUT_SIZE = 16384


def _srgb_lut() -> np.ndarray:
    """Linear [0, 1] -> 8-bit sRGB, sampled at _LUT_SIZE points."""
    x = np.linspace(0.0, 1.0, _LUT_SIZE)
    y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(y * 255).astype(np.uint8)


_SRGB = _srgb_lut()


def develop(mosaic: np.ndarray, sensor: SensorModel = SENSOR) -> np.ndarray:
    """In-camera processing of a raw mosaic into an 8-bit sRGB image (H, W, 3) uint8.

    Black subtraction, bilinear demosaic, white balance, clip, sRGB tone curve. No colour
    matrix, denoising or sharpening: they would move a defect out of its CFA channel.
    """
    m = np.asarray(mosaic)
    # white balance per sensel before demosaicing: same result (demosaic is linear), 3x less work
    scale = (np.asarray(sensor.wb, dtype=np.float32) / np.float32(WHITE_LEVEL - BLACK_LEVEL))[cfa_colour_index(*m.shape)]
    rgb = demosaic_bilinear((m.astype(np.float32) - np.float32(BLACK_LEVEL)) * scale)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    return np.take(_SRGB, (rgb * np.float32(_LUT_SIZE - 1) + np.float32(0.5)).astype(np.uint16))


# --------------------------------------------------------------------------- writers


def _write_dng(path: Path, mosaic: np.ndarray, sensor: SensorModel) -> None:
    """A real CFA DNG (uncompressed 16-bit, RGGB, black/white level, Make/Model).

    Tags are built fresh per file: pidng mutates its tag objects while writing, so sharing
    them across threads would corrupt files.
    """
    try:
        from pidng.core import RAW2DNG
        from pidng.defs import CalibrationIlluminant, CFAPattern, Orientation, PhotometricInterpretation
        from pidng.dng import DNGTags, Tag
    except ImportError as exc:  # pidng is a test/demo extra
        raise RuntimeError("writing DNG needs the 'pidng' package: pip install pidng") from exc
    h, w = mosaic.shape
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)  # pidng writes the whole image as one tile
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, Orientation.Horizontal)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFAPattern.RGGB)
    t.set(Tag.BlackLevelRepeatDim, [1, 1])
    t.set(Tag.BlackLevel, BLACK_LEVEL)
    t.set(Tag.WhiteLevel, WHITE_LEVEL)
    identity = [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]
    t.set(Tag.ColorMatrix1, identity)
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [[1000, round(1000 * g)] for g in sensor.wb])
    t.set(Tag.Make, MAKE)
    t.set(Tag.Model, MODEL)
    t.set(Tag.UniqueCameraModel, f"{MAKE} {MODEL}")
    writer = RAW2DNG()
    writer.options(t, path="", compress=False)
    path.write_bytes(writer.convert(np.ascontiguousarray(mosaic, dtype=np.uint16)))


def _write(path: Path, fmt: str, mosaic: np.ndarray, sensor: SensorModel) -> None:
    """Encode one frame in ``fmt``."""
    if fmt == "dng":
        _write_dng(path, mosaic, sensor)
        return
    import tifffile
    from PIL import Image

    if fmt == "tiff16":
        tifffile.imwrite(path, mosaic, photometric="minisblack", metadata=None)
    elif fmt == "png16":
        Image.fromarray(mosaic).save(path, compress_level=1)  # mode I;16: 16-bit grayscale PNG
    else:
        rgb = develop(mosaic, sensor)
        if fmt == "jpeg":  # a camera JPEG names its maker: RawTherapee's map is named after it
            exif = Image.Exif()
            exif[271], exif[272] = MAKE, MODEL
            Image.fromarray(rgb).save(path, quality=92, exif=exif.tobytes())
        elif fmt == "png":
            Image.fromarray(rgb).save(path, compress_level=1)
        else:
            tifffile.imwrite(path, rgb, photometric="rgb", metadata=None)


# --------------------------------------------------------------------------- public API


def _clear_previous(out: Path) -> None:
    """Remove frames of an earlier synth run in ``out`` (only if its truth.json says so).

    A leftover frame_0039.jpg from a bigger or other-format run would silently join the next
    scan; files we did not write are never touched.
    """
    if not (out / "truth.json").is_file():
        return
    for p in out.iterdir():
        if _FRAME_NAME.match(p.name) and p.is_file():
            p.unlink()


def synthesize(
    out_dir: str | Path,
    frames: int = 40,
    size: tuple[int, int] = (640, 480),
    fmt: str = "jpeg",
    dark: bool = False,
    seed: int = 0,
    defects_per_kind: int | None = None,
) -> dict:
    """Write ``frames`` synthetic frames with planted defects and their ``truth.json``.

    Parameters
    ----------
    out_dir : directory to write ``frame_0000.<ext>``, ... and ``truth.json`` into.
    frames : number of frames.
    size : (width, height) in sensels (= pixels of the RGB output).
    fmt : ``jpeg``, ``png``, ``tiff`` (8-bit sRGB, demosaiced), ``tiff16``, ``png16`` (16-bit
        grayscale CFA mosaic) or ``dng`` (raw CFA DNG).
    dark : lens-cap frames: black level, dark current and read noise only.
    seed : everything is deterministic for a seed.
    defects_per_kind : planted defects of each kind (default scales with the area, min 3).

    Returns
    -------
    The truth dict also written to ``truth.json``. Each defect's ``channel`` is the RGB index
    of its CFA colour for RGB formats and 0 for mosaic formats; ``amplitude`` is in sensor DN:
    the added offset (hot), the constant raw value (stuck), the mean signal lost per frame
    relative to a healthy sensel (dead), the step height (RTS noisy) or the extra standard
    deviation (Gaussian noisy).
    """
    fmt = _ALIASES.get(fmt.lower(), fmt.lower())
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    width, height = (int(v) for v in size)
    if width < 2 or height < 2:
        raise ValueError(f"size must be at least 2x2, got {width}x{height}")
    per_kind = default_defects_per_kind(width, height) if defects_per_kind is None else int(defects_per_kind)
    if per_kind < 1:
        raise ValueError(f"defects_per_kind must be >= 1, got {per_kind}")

    sensor = SENSOR
    plan_ss, camera_ss, frames_ss = np.random.SeedSequence(seed).spawn(3)
    frame_seeds = frames_ss.spawn(frames)  # child i is the same whatever `frames` is
    plan = _plan_defects(np.random.default_rng(plan_ss), width, height, per_kind, frames, dark, sensor)
    cam = _camera(np.random.default_rng(camera_ss), height, width, sensor)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    digits = max(4, len(str(frames - 1)))
    names = [f"frame_{i:0{digits}d}{FORMATS[fmt]}" for i in range(frames)]

    def render(i: int) -> tuple[float, np.ndarray]:
        mosaic, exposure, lost = _expose(np.random.default_rng(frame_seeds[i]), cam, plan, i, dark, sensor)
        _write(out / names[i], fmt, mosaic, sensor)
        return exposure, lost

    workers = max(1, min(os.cpu_count() or 1, 4, frames))
    with ThreadPoolExecutor(workers) as pool:  # numpy, Pillow and zlib release the GIL
        results = list(pool.map(render, range(frames)))

    lost_mean = np.mean([lost for _, lost in results], axis=0) if len(plan.dead_idx) else []
    dead_defects = [d for d in plan.defects if d["kind"] == "dead"]  # same order as plan.dead_idx
    for d, amp in zip(dead_defects, np.atleast_1d(lost_mean)):
        d["amplitude"] = round(float(amp), 2)
    if fmt in MOSAIC_FORMATS:
        for d in plan.defects:
            d["channel"] = 0

    truth = {
        "format": fmt,
        "size": [width, height],
        "frames": frames,
        "dark": bool(dark),
        "seed": seed,
        "cfa": CFA,
        "black_level": BLACK_LEVEL,
        "white_level": WHITE_LEVEL,
        "make": MAKE,
        "model": MODEL,
        "sensor": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(sensor).items()},
        # what "warm" means in DN, and the healthy dark signal that stays clear of it (see _camera)
        "dark_signal": {
            "median": round(sensor.dark_median(), 4),
            "healthy_max": round(sensor.healthy_dark_max(), 4),
            "sigma": round(sensor.noise_sigma(0.0), 4),
            "warm_sigmas": WARM_SIGMAS[0],
        },
        "version": TRUTH_VERSION,
        "files": names,
        "exposures": [round(e, 6) for e, _ in results],
        "defects": sorted(plan.defects, key=lambda d: (d["y"], d["x"])),
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth
