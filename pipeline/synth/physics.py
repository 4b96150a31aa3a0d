"""The camera of a synthetic collection: a 14-bit sensor at any ISO, its exposure program, one raw frame.

Unlike ``sensor`` (one 12-bit camera at a fixed setting, for ``synthesize``), this camera is
used over years at every exposure and ISO, as a real one is, so everything that comes from
charge scales with the analog gain:

- **Levels:** 14-bit RGGB mosaic, black level 512, white level 16383 (clipping).
- **Gain:** ``gain(iso) = 0.25 * iso / 100`` DN per electron (full well 63.5k e- at ISO 100).
  Shot-noise variance in DN is ``gain * signal``.
- **Read noise** grows with ISO as real sensors' does: an input-referred part (3 e-, amplified
  with the gain) and a fixed part after the amplifier (2 DN, the ADC's):
  ``read_noise(iso) = sqrt((3 * gain)^2 + 2^2)``: 2.1 DN at ISO 100, 12 DN at 1600, 48 DN at 6400.
- **Dark current** of healthy sensels: DN per second at ISO 100 (``excess = rate * t * ISO/100``),
  a log-normal around 0.05 DN/s (0.2 e-/s), cut at ``healthy_dark_max`` (0.067 DN/s: one read
  sigma above the body's median, 0.042 DN/s, in the longest frame; see ``build_body``).
- **Fixed pattern:** 0.5 % PRNU, 25 % vignetting in the corners, white balance (2, 1, 1.5).
- **Exposure program** (``program``): fixed f/4; ISO 100 and shorter exposures in bright light;
  at low light the exposure grows to 1/30 s (handheld), then ISO rises to 6400, then the
  exposure grows to 8 s. ISO and exposure are the standard 1/3-stop series, so auto-exposure is
  within about 1/6 stop: the raw signal of a mid-grey scene (green sensels, centre) stays at
  18 % of the range.

``render_frame`` puts a scene (``scene``), this body and a collection's defect plan (``defects``)
together into one raw frame, with in-camera long-exposure noise reduction when asked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from .scene import render_scene
from .sensor import cfa_colour_index, flat_field

if TYPE_CHECKING:
    from .defects import CollectionPlan

# the standard 1/3-stop ISO series of a camera, 100..6400
ISO_SERIES = (100, 125, 160, 200, 250, 320, 400, 500, 640, 800, 1000, 1250, 1600, 2000, 2500, 3200, 4000,
              5000, 6400)
# the standard 1/3-stop shutter speeds, 1/8000 s .. 30 s, as the rationals EXIF stores
SHUTTER_SERIES = tuple(Fraction(1, d) for d in (8000, 6400, 5000, 4000, 3200, 2500, 2000, 1600, 1250, 1000, 800,
                                                640, 500, 400, 320, 250, 200, 160, 125, 100, 80, 60, 50, 40, 30, 25,
                                                20, 15, 13, 10, 8, 6, 5, 4)) + tuple(
    Fraction(v) for v in ("0.3", "0.4", "0.5", "0.6", "0.8", "1", "1.3", "1.6", "2", "2.5", "3.2", "4", "5", "6",
                          "8", "10", "13", "15", "20", "25", "30"))


@dataclass(frozen=True)
class CollectionSensor:
    """Constants of the collection's camera (a 14-bit APS-C body); see the module docstring."""

    black_level: int = 512
    white_level: int = 16383
    gain_iso100: float = 0.25  # DN per electron at ISO 100
    read_noise_e: float = 3.0  # input-referred read noise (e-), amplified by the ISO gain
    adc_noise: float = 2.0  # read noise after the amplifier (DN), the same at every ISO
    dark_rate: float = 0.05  # median of the healthy dark current's log-normal (before its cut), DN/s at ISO 100
    dark_spread: float = 0.5  # sigma of the log of its log-normal (DSNU)
    dark_healthy_sigmas: float = 1.0  # see healthy_dark_max
    prnu: float = 0.005
    vignetting: float = 0.25
    wb: tuple[float, float, float] = (2.0, 1.0, 1.5)
    f_number: float = 4.0  # the exposure program's fixed aperture
    handheld: Fraction = Fraction(1, 30)  # longest handheld exposure before ISO rises
    min_iso: int = 100
    max_iso: int = 6400
    max_exposure: Fraction = Fraction(8)  # longest exposure the program picks for a photo
    max_dark_exposure: Fraction = Fraction(30)  # longest lens-cap dark frame
    mid_grey: float = 0.18  # auto-exposure target: raw signal of a mid-grey scene, fraction of the range

    @property
    def span(self) -> int:
        """DN between black and white: the usable range of the raw signal."""
        return self.white_level - self.black_level

    @property
    def bits(self) -> int:
        return int(self.white_level).bit_length()

    def gain(self, iso: float) -> float:
        """DN per electron at ``iso`` (proportional to ISO)."""
        return self.gain_iso100 * iso / 100

    def read_noise(self, iso: float) -> float:
        """Temporal read noise (DN) at ``iso``: grows with ISO, as the input-referred part is amplified."""
        return math.hypot(self.read_noise_e * self.gain(iso), self.adc_noise)

    def noise_sigma(self, signal_dn: float, iso: float) -> float:
        """Temporal noise (DN) of a sensel at a mean signal above black, at ``iso``."""
        return math.sqrt(self.read_noise(iso) ** 2 + self.gain(iso) * max(signal_dn, 0.0))

    def healthy_dark_max(self) -> float:
        """Largest dark current (DN/s at ISO 100) of a healthy sensel: the DSNU body's cut.

        In the longest frame a collection can hold (``max_dark_exposure`` at ``max_iso``), a
        healthy sensel's dark signal stays within ``dark_healthy_sigmas`` (1) read-noise sigma
        above the body's median (``healthy_dark_median``), so it never looks warm; in any shorter
        or lower-ISO frame far less. The smallest planted dark current (5 DN/s, a population's
        weak hot sensel) is ~75x the cut.
        """
        most = float(self.max_dark_exposure) * self.max_iso / 100
        margin = self.dark_healthy_sigmas * self.read_noise(self.max_iso) / most
        cut = self.dark_rate + margin
        for _ in range(50):  # the cut lowers the median it is measured from: iterate to the fixed point
            cut = self._truncated_median(cut) + margin
        return cut

    def healthy_dark_median(self) -> float:
        """Median dark current (DN/s at ISO 100) of healthy sensels: the log-normal's, lowered by the cut."""
        return self._truncated_median(self.healthy_dark_max())

    def _truncated_median(self, cut: float) -> float:
        normal = NormalDist()
        below = normal.cdf(math.log(cut / self.dark_rate) / self.dark_spread)
        return self.dark_rate * math.exp(self.dark_spread * normal.inv_cdf(below / 2))

    def program(self, ev100: float) -> tuple[Fraction, int, float]:
        """What the camera's program mode picks for a scene of ``ev100`` (EV at ISO 100).

        Returns (exposure time, ISO, actual/metered exposure ratio). The metered exposure at ISO
        100 is ``N^2 / 2^EV``; up to 1/30 s the camera stays at ISO 100, then raises ISO up to
        6400 (at 1/30 s), then lengthens the exposure up to 8 s (darker scenes are under-exposed).
        Whichever of ISO or time the camera sets is rounded to its 1/3-stop series, so the ratio
        is within 1/6 stop of 1 (up to 0.21 where the shutter series' steps are uneven, 1/8 -> 1/6).
        """
        t100 = self.f_number**2 / 2.0**ev100
        hand = float(self.handheld)

        def nearest(series, value: float):
            return min(series, key=lambda s: abs(math.log(float(s) / value)))

        if t100 <= hand:  # bright: base ISO, shorter exposures
            t, iso = nearest([s for s in SHUTTER_SERIES if s <= self.handheld], t100), self.min_iso
        elif t100 <= hand * self.max_iso / self.min_iso:  # dim: handheld limit, ISO rises
            t, iso = self.handheld, nearest(ISO_SERIES, self.min_iso * t100 / hand)
        else:  # dark: top ISO, longer exposures (under-exposed beyond the longest)
            longer = [s for s in SHUTTER_SERIES if self.handheld <= s <= self.max_exposure]
            t, iso = nearest(longer, min(t100 * self.min_iso / self.max_iso, float(self.max_exposure))), self.max_iso
        return t, int(iso), float(t) * iso / 100 / t100


COLLECTION_SENSOR = CollectionSensor()


@dataclass
class Body:
    """Fixed per-sensel properties of the collection's camera body, shared by every frame."""

    cidx: np.ndarray  # CFA colour index per sensel
    response: np.ndarray  # relative response: PRNU * vignetting / white balance (green centre = 1)
    dark_rate: np.ndarray  # dark current, DN/s at ISO 100


def build_body(rng: np.random.Generator, height: int, width: int, sensor: CollectionSensor) -> Body:
    """Vignetting, PRNU, and the dark current of healthy sensels: a truncated log-normal.

    As in ``sensor.build_camera``, the log-normal body is cut (values beyond are drawn again)
    at ``healthy_dark_max``: a healthy sensel must never look like a planted warm or hot one,
    or the truth would miss it. Real sensors look the same way: a narrow body of healthy
    sensels, and hot ones as a separate population (here the planted one).
    """
    cidx = cfa_colour_index(height, width)
    prnu, vign = flat_field(rng, height, width, sensor.vignetting, sensor.prnu)
    response = prnu * vign * (1 / np.asarray(sensor.wb, dtype=np.float32))[cidx]
    cut = sensor.healthy_dark_max()
    rate = sensor.dark_rate * rng.lognormal(0.0, sensor.dark_spread, (height, width))
    while True:  # a truncated log-normal: draw the sensels beyond the cut again
        over = np.flatnonzero(rate > cut)
        if not len(over):
            break
        rate.flat[over] = sensor.dark_rate * rng.lognormal(0.0, sensor.dark_spread, len(over))
    return Body(cidx, response.astype(np.float32), rate.astype(np.float32))


@dataclass(frozen=True)
class Shot:
    """The settings of one frame of a collection, as the camera recorded them."""

    exposure: Fraction  # seconds, as the EXIF rational
    iso: int
    unix: float  # capture time, Unix seconds (UTC)
    dark: bool  # lens-cap dark: no scene
    nr: bool  # in-camera long-exposure noise reduction (a dark frame was subtracted)
    ratio: float = 1.0  # actual / metered exposure (1 for darks): what the JPEG engine compensates


def _read(rng: np.random.Generator, mean: np.ndarray, gain: float, read: float) -> np.ndarray:
    """Mean signal (DN above black) plus shot noise (Gaussian with Poisson's variance) and read noise."""
    sd = np.sqrt(mean * np.float32(gain) + np.float32(read * read))
    return mean + sd * rng.standard_normal(mean.shape, dtype=np.float32)


def _quantise(value: np.ndarray, sensor: CollectionSensor) -> np.ndarray:
    value += np.float32(sensor.black_level)
    np.rint(value, out=value)
    np.clip(value, 0, sensor.white_level, out=value)
    return value


def render_frame(
    rng: np.random.Generator, body: Body, plan: CollectionPlan, frame: int, shot: Shot, sensor: CollectionSensor,
    noise_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One raw frame (uint16 mosaic) of a collection.

    The mean signal is the scene (none for darks) at 18 % mid-grey times the metering error,
    through the body's response, plus the dark signal: healthy and planted dark current
    (``rate * t * ISO/100``, each hot sensel only from its onset), then dead sensels' loss of
    gain. Shot and read noise follow, then fixed offsets (warm sensels, offset lines), then
    quantisation and clipping at black/white.

    Noise reduction (``shot.nr``) is what the camera does: it takes a second frame of the same
    exposure with the shutter closed (its own noise, the same dark signal and offsets) and
    stores ``light - dark + black``, clipped. Dark current and offsets vanish; their noise
    doubles; a sensel that clipped in both frames reads black. Telegraph and Gaussian noisy
    sensels then act on the stored value (their dark-frame state is the normal level), and
    stuck sensels hold their value in every frame.

    ``noise_rng``: the noise (shot, read, the dark frame's, Gaussian flicker) is drawn from it, the
    scene from ``rng``: the same frame with other noise (the JPEG oracle's realisations).
    """
    noise = rng if noise_rng is None else noise_rng
    h, w = body.cidx.shape
    t, iso = float(shot.exposure), float(shot.iso)
    gain, read, k = sensor.gain(iso), sensor.read_noise(iso), t * iso / 100
    dark = body.dark_rate * np.float32(k)
    dflat = dark.reshape(-1)
    active = plan.rate_since <= shot.unix
    dflat[plan.rate_idx[active]] += plan.rate[active] * np.float32(k)
    if shot.dark:
        light = dark.copy()
    else:
        scene = render_scene(rng, body.cidx)
        level = sensor.mid_grey * sensor.span * shot.ratio / max(float(scene.mean()), 1e-3)
        light = scene * (np.float32(level) * body.response)
        light += dark
    lflat = light.reshape(-1)
    lflat[plan.dead_idx] *= plan.dead_gain
    value = _read(noise, light, gain, read)
    value.reshape(-1)[plan.offset_idx] += plan.offset
    _quantise(value, sensor)
    if shot.nr:
        dflat[plan.dead_idx] *= plan.dead_gain
        closed = _read(noise, dark, gain, read)
        closed.reshape(-1)[plan.offset_idx] += plan.offset
        value -= _quantise(closed, sensor)
        value += np.float32(sensor.black_level)
    vflat = value.reshape(-1)
    scale = np.float32(iso / 100)
    vflat[plan.rts_idx] += plan.rts_level[frame] * plan.rts_step * scale
    vflat[plan.gauss_idx] += plan.gauss_sigma * scale * noise.standard_normal(len(plan.gauss_idx), dtype=np.float32)
    np.rint(value, out=value)
    np.clip(value, 0, sensor.white_level, out=value)
    vflat[plan.stuck_idx] = plan.stuck_value
    return value.astype(np.uint16)
